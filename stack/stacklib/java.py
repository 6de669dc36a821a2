"""Finding the Java the servers run on, and refusing any other major version.

Cassandra 5.0 breaks on JDK 24+ and the whole stack is tested on one major version
(``JAVA_MAJOR`` in conf/versions.env), so a different ``java`` is an error, not a warning.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stacklib import StackError

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


@dataclass(frozen=True)
class Java:
    home: Path
    major: int

    @property
    def java(self) -> str:
        return str(self.home / "bin" / "java")

    @property
    def javac(self) -> str:
        return str(self.home / "bin" / "javac")


def find_java(required_major: int) -> Java:
    """The ``java`` of ``$JAVA_HOME``, else the one on ``PATH``; it must be ``required_major``."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not candidate or not Path(candidate).exists():
        where = f"JAVA_HOME={java_home}" if java_home else "PATH"
        raise StackError(
            f"java {required_major} not found on {where}: "
            f"install openjdk-{required_major}-jdk-headless or set JAVA_HOME"
        )
    binary = Path(candidate).resolve()  # through /etc/alternatives to the real JDK
    major = _major_version(binary)
    if major != required_major:
        raise StackError(
            f"java {required_major} required (conf/versions.env JAVA_MAJOR), found java {major} "
            f"at {binary}: set JAVA_HOME to a Java {required_major}"
        )
    return Java(home=binary.parent.parent, major=major)


def require_javac(java: Java) -> None:
    """Building the Elasticsearch root module needs the JDK, not only a JRE."""
    if not Path(java.javac).exists():
        raise StackError(
            f"javac not found in {java.home}: install openjdk-{java.major}-jdk-headless"
        )


def _major_version(binary: Path) -> int:
    try:
        result = subprocess.run(
            [str(binary), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"cannot run {binary} -version: {exc}") from None
    match = _VERSION.search(result.stderr + result.stdout)
    if not match:
        raise StackError(f"cannot read the version printed by {binary} -version")
    first, second = int(match.group(1)), match.group(2)
    return int(second) if first == 1 and second else first  # "1.8.0" is Java 8
