"""Downloading the servers from Maven Central with ``mvn`` and the small POMs in stack/maven/.

Each server lands in ``.state/dist/<server>/`` with a marker file that records its version and a
digest of the files that shaped it (POMs, the Elasticsearch root module's source). A fetch whose
marker matches is skipped, so a second ``stackctl fetch`` returns at once. A fetch is built in a
``.partial`` folder and renamed into place at the end: an interrupted fetch never looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from stacklib import StackError
from stacklib.accounts import give_tree, service_account
from stacklib.java import Java, require_javac
from stacklib.layout import Layout, render_template

MARKER = ".stack-fetched.json"
MAVEN_TIMEOUT_S = 900
ES_MODULE_NAME = "clickstream-rest-root"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Fetcher:
    """Fetches the servers named in ``VERSION_KEYS`` into the layout's dist folders."""

    VERSION_KEYS: ClassVar[dict[str, str]] = {
        "kafka": "KAFKA_VERSION",
        "cassandra": "CASSANDRA_VERSION",
        "elasticsearch": "ELASTICSEARCH_VERSION",
    }

    def __init__(self, layout: Layout, versions: dict[str, str], java: Java) -> None:
        self.layout = layout
        self.versions = versions
        self.java = java

    def version(self, server: str) -> str:
        return self.versions[self.VERSION_KEYS[server]]

    def is_current(self, server: str) -> bool:
        """True if ``.state/dist/<server>`` holds exactly what a fetch would produce now."""
        try:
            marker = json.loads((self.layout.dist(server) / MARKER).read_text())
        except (FileNotFoundError, ValueError):
            return False
        return marker == self._marker(server)

    def fetch(self, server: str) -> str:
        """Download ``server``; a one-line summary of what was fetched."""
        builders: dict[str, Callable[[Path], None]] = {
            "kafka": self._fetch_kafka,
            "cassandra": self._fetch_cassandra,
            "elasticsearch": self._fetch_elasticsearch,
        }
        final = self.layout.dist(server)
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            builders[server](partial)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        (partial / MARKER).write_text(json.dumps(self._marker(server), indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        if server == "elasticsearch":
            give_tree(final, service_account("elasticsearch"))
        return _describe(final)

    # --- one method per server --------------------------------------------------------------

    def _fetch_kafka(self, target: Path) -> None:
        lib = target / "lib"
        self._maven("kafka", lib, {"kafka.version": self.version("kafka")})
        # The SLF4J binding follows the log4j version that Kafka's own POMs chose.
        log4j = _jar_version(lib, "log4j-core")
        self._maven("kafka-logging", lib, {"log4j.version": log4j})

    def _fetch_cassandra(self, target: Path) -> None:
        lib = target / "lib"
        self._maven("cassandra", lib, {"cassandra.version": self.version("cassandra")})
        _jar_version(lib, "jamm")  # the -javaagent; fail now rather than at start

    def _fetch_elasticsearch(self, target: Path) -> None:
        version = self.version("elasticsearch")
        with tempfile.TemporaryDirectory(dir=target.parent) as download:
            self._maven("elasticsearch", Path(download), {"elasticsearch.version": version})
            _unzip_stripping_top_folder(Path(download) / f"elasticsearch-{version}.zip", target)
        self._install_root_module(target)

    def _install_root_module(self, es_home: Path) -> None:
        """Compile stack/elasticsearch-root-module against this Elasticsearch and install it."""
        require_javac(self.java)
        source = self.layout.es_module_source
        module = es_home / "modules" / ES_MODULE_NAME
        module.mkdir(parents=True)
        with tempfile.TemporaryDirectory(dir=es_home.parent) as classes:
            sources = sorted(str(p) for p in (source / "src").rglob("*.java"))
            _run(
                [self.java.javac, "--release", str(self.java.major), "-nowarn",
                 "-cp", str(es_home / "lib" / "*"), "-d", classes, *sources],
                what="javac (Elasticsearch root module)",
            )  # fmt: skip
            _write_jar(Path(classes), module / f"{ES_MODULE_NAME}.jar")
        render_template(
            source / "plugin-descriptor.properties",
            module / "plugin-descriptor.properties",
            {
                "ELASTICSEARCH_VERSION": self.version("elasticsearch"),
                "JAVA_MAJOR": self.java.major,
            },
        )

    # --- helpers ----------------------------------------------------------------------------

    def _maven(self, pom: str, output: Path, properties: dict[str, str]) -> None:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError("mvn not found: install Maven (apt-get install maven)")
        command = [
            mvn, "-B", "-q", "--no-transfer-progress", "-f", str(self.layout.maven_pom(pom)),
            "dependency:copy-dependencies", f"-DoutputDirectory={output}",
            *(f"-D{key}={value}" for key, value in properties.items()),
        ]  # fmt: skip
        environment = {**os.environ, "JAVA_HOME": str(self.java.home)}
        _run(command, what=f"mvn ({pom})", env=environment, timeout_s=MAVEN_TIMEOUT_S)

    def _marker(self, server: str) -> dict[str, str]:
        inputs = [self.layout.maven / "pom.xml"]
        inputs += {
            "kafka": [self.layout.maven_pom("kafka"), self.layout.maven_pom("kafka-logging")],
            "cassandra": [self.layout.maven_pom("cassandra")],
            "elasticsearch": [
                self.layout.maven_pom("elasticsearch"),
                *sorted(p for p in self.layout.es_module_source.rglob("*") if p.is_file()),
            ],
        }[server]
        marker = {
            "server": server,
            "version": self.version(server),
            "inputs": _digest(self.layout.root, inputs),
        }
        if server == "elasticsearch":  # the root module is compiled for this Java
            marker["java_major"] = str(self.java.major)
        return marker


def _run(
    command: list[str], what: str, env: dict[str, str] | None = None, timeout_s: float = 300
) -> None:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise StackError(f"{what} did not finish within {timeout_s:.0f} s") from None
    if result.returncode != 0:
        raise StackError(f"{what} failed: {_first_error(result.stdout + result.stderr)}")


def _first_error(output: str) -> str:
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith("[ERROR]") or "error:" in line]
    return (errors or lines or ["no output"])[0]


def _jar_version(lib: Path, artifact: str) -> str:
    """The version of ``<artifact>-<version>.jar`` in ``lib``, which must hold exactly one."""
    pattern = re.compile(rf"{re.escape(artifact)}-(\d[^-]*(?:-[A-Za-z0-9.]+)?)\.jar")
    versions = [m.group(1) for p in lib.iterdir() if (m := pattern.fullmatch(p.name))]
    if len(versions) != 1:
        raise StackError(f"expected one {artifact} jar in {lib}, found {len(versions)}")
    return versions[0]


def _unzip_stripping_top_folder(archive: Path, target: Path) -> None:
    """Unpack ``archive`` (one top folder) into ``target``, keeping the files' Unix modes."""
    with zipfile.ZipFile(archive) as zipped:
        for entry in zipped.infolist():
            relative = Path(*Path(entry.filename).parts[1:])
            if not relative.parts:
                continue
            destination = (target / relative).resolve()
            if not destination.is_relative_to(target.resolve()):
                raise StackError(f"{archive.name}: entry {entry.filename!r} leaves the folder")
            if entry.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(entry) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            mode = entry.external_attr >> 16  # Unix permissions, as zipped on Unix
            if mode & 0o777:
                destination.chmod(mode & 0o777)


def _write_jar(classes: Path, jar: Path) -> None:
    """A jar is a zip; Elasticsearch needs no manifest in a module's jar."""
    with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(classes.rglob("*.class")):
            archive.write(path, path.relative_to(classes).as_posix())


def _digest(root: Path, paths: list[Path]) -> str:
    """Changes to any of ``paths`` (names or contents) change the digest."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _describe(folder: Path) -> str:
    files = [p for p in folder.rglob("*") if p.is_file()]
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    return f"{len(files)} files, {size_mb:.0f} MB"
