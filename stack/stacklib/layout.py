"""Where the stack's files live, all derived from the project root (this file's location).

Everything the stack downloads or writes is under ``.state/`` (git-ignored)::

    .state/dist/<server>/        downloaded artifacts (jars, the unpacked Elasticsearch)
    .state/conf/<server>/        configuration rendered from conf/stack/<server>/
    .state/data/<server>/        the servers' data
    .state/logs/<server>.log     each server's console output
    .state/run/<server>.pid      the pid of each running server
    .state/secure/               the secured stack: CA, certificates, users' environment files,
                                 and its own conf/ and data/ (see stacklib.secure)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from stacklib import StackError

PROJECT_ROOT = Path(__file__).resolve().parents[2]

_TOKEN = re.compile(r"@[A-Z][A-Z0-9_]*@")

REQUIRED_VERSIONS = ("JAVA_MAJOR", "KAFKA_VERSION", "CASSANDRA_VERSION", "ELASTICSEARCH_VERSION")


@dataclass(frozen=True)
class Layout:
    root: Path = PROJECT_ROOT
    # The secured stack keeps its configuration and data apart: the two never share a data
    # folder (a broker formatted without SCRAM users, a node without roles).
    secure: bool = False

    @property
    def state(self) -> Path:
        return self.root / ".state"

    @property
    def secure_dir(self) -> Path:
        return self.state / "secure"

    @property
    def _mode_root(self) -> Path:
        return self.secure_dir if self.secure else self.state

    @property
    def versions_file(self) -> Path:
        return self.root / "conf" / "versions.env"

    def dist(self, server: str) -> Path:
        return self.state / "dist" / server

    def rendered_conf(self, server: str) -> Path:
        return self._mode_root / "conf" / server

    def data(self, server: str) -> Path:
        return self._mode_root / "data" / server

    def tmp(self, server: str) -> Path:
        return self.state / "tmp" / server

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    def log_file(self, server: str) -> Path:
        return self.logs / f"{server}.log"

    def pid_file(self, server: str) -> Path:
        return self.state / "run" / f"{server}.pid"

    def mode_file(self, server: str) -> Path:
        """Which stack (plaintext or secure) the running server belongs to."""
        return self.state / "run" / f"{server}.mode"

    def conf_template(self, server: str, name: str) -> Path:
        return self.root / "conf" / "stack" / server / name

    @property
    def maven(self) -> Path:
        return self.root / "stack" / "maven"

    def maven_pom(self, name: str) -> Path:
        return self.maven / name / "pom.xml"

    @property
    def es_module_source(self) -> Path:
        return self.root / "stack" / "elasticsearch-root-module"


def read_versions(layout: Layout) -> dict[str, str]:
    """``KEY=VALUE`` lines of conf/versions.env (the only place versions are written)."""
    path = layout.versions_file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StackError(f"{path} not found") from None
    versions: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip().strip("\"'")
    missing = [key for key in REQUIRED_VERSIONS if not versions.get(key)]
    if missing:
        raise StackError(f"{path}: missing {', '.join(missing)}")
    return versions


def render_text(template: Path, values: dict[str, object]) -> str:
    """The text of ``template`` with each ``@NAME@`` replaced by ``values[NAME]``."""
    text = template.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace(f"@{name}@", str(value))
    leftover = set(_TOKEN.findall(text))
    if leftover:
        raise StackError(f"{template}: unknown token(s) {', '.join(sorted(leftover))}")
    return text


def render_template(
    template: Path, destination: Path, values: dict[str, object], append: bool = False
) -> None:
    """Copy ``template`` to ``destination`` (or append it), replacing each ``@NAME@``."""
    text = render_text(template, values)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with destination.open("a" if append else "w", encoding="utf-8") as out:
        out.write(text)
