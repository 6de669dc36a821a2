"""Breaking and restoring the local stack's servers from tests, through the stack's own code.

The stack starts each server in its own process group and writes the group leader's pid to
``.state/run/<server>.pid`` (:mod:`stacklib.lifecycle`). Killing that group with SIGKILL is what
a crash or the OOM killer does to the server: no shutdown hook, no flush, open connections reset.
Restoring is ``stackctl up <server>``, which waits until the server is ready and bootstraps it
again (idempotently), exactly as an operator would.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cassandra.cluster import Session
from stacklib import lifecycle
from stacklib.layout import Layout
from stacklib.secure import ADMIN, SecureFiles
from stacklib.servers import make_servers

from clickstream_spark.config import PROJECT_ROOT

STACKCTL = [sys.executable, "stack/stackctl.py"]
# Elasticsearch is ready in 24-34 s on a quiet machine; the machine is shared and noisy.
UP_TIMEOUT_S = 240


@dataclass(frozen=True)
class Killed:
    server: str
    pids: list[int]  # every process of the server that was alive and got SIGKILL
    at: float  # time.monotonic() of the kill


def server_pids(name: str) -> list[int]:
    """The live processes of ``name`` of this checkout (group leader first), from .state/run."""
    (server,) = make_servers([name], Layout())
    leader = lifecycle.running_pid(server)
    assert leader is not None, f"{name} is not running (.state/run/{name}.pid): run `make up`"
    others = sorted(p.pid for p in lifecycle.server_processes(server) if p.pid != leader)
    return [leader, *others]


def kill_server(name: str) -> Killed:
    """SIGKILL the whole process group of ``name`` (launcher and server JVM) and wait it out,
    as ``stackctl kill`` does (the same :func:`stacklib.lifecycle.kill`)."""
    pids = server_pids(name)
    (server,) = make_servers([name], Layout())
    at = time.monotonic()
    lifecycle.kill(server)  # raises if a process survives
    return Killed(name, pids, at)


def is_up(name: str) -> bool:
    done = subprocess.run(
        [*STACKCTL, "is-up", name], cwd=PROJECT_ROOT, capture_output=True, timeout=60, check=False
    )
    return done.returncode == 0


def start_server(name: str) -> float:
    """``stackctl up <name>`` (ready and bootstrapped); the seconds it took."""
    started = time.monotonic()
    done = subprocess.run(
        [*STACKCTL, "up", "--timeout", str(UP_TIMEOUT_S), name],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=UP_TIMEOUT_S + 120,  # + bootstrap
        check=False,
    )
    assert done.returncode == 0, f"stackctl up {name} failed:\n{done.stdout}{done.stderr}"
    return time.monotonic() - started


def wait_for_cassandra(session: Session, timeout_s: float = 120) -> None:
    """Wait until ``session`` runs queries again (the driver reconnects on its own schedule)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            session.execute("SELECT release_version FROM system.local", timeout=10)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@contextmanager
def restored(name: str, cassandra: Session | None = None) -> Iterator[None]:
    """Whatever a test does to server ``name``, it is up (and bootstrapped) again afterwards, so
    that the tests after it find the stack as they expect it; with ``cassandra``, that session
    runs queries again too."""
    try:
        yield
    finally:
        if not is_up(name):
            start_server(name)
        if cassandra is not None:
            wait_for_cassandra(cassandra)


def stack_is_secure() -> bool:
    """True if every server runs as the secured stack (``stackctl up --secure``)."""
    servers = make_servers([], Layout())
    return all(
        lifecycle.running_pid(s) is not None and lifecycle.running_mode(s) == "secure"
        for s in servers
    )


def admin_env() -> dict[str, str]:
    """The secured stack admin's variables (.state/secure/admin.env)."""
    return SecureFiles(Layout(secure=True)).user_env(ADMIN)
