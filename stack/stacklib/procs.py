"""Processes and ports, read straight from /proc (Linux) so that no extra package is needed."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    pid: int
    pgrp: int
    state: str
    cmdline: str

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")  # a zombie has exited and only waits to be reaped


def read_process(pid: int) -> Process | None:
    """The process ``pid``, or None if it does not exist (anymore)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        raw_cmdline = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name, field 2, is in parentheses and may itself contain spaces or parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    cmdline = raw_cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return Process(pid=pid, pgrp=int(fields[2]), state=fields[0], cmdline=cmdline)


def working_dir(pid: int) -> str | None:
    """The working directory of ``pid``: tells apart two copies of the same program."""
    try:
        return os.readlink(PROC / str(pid) / "cwd")
    except OSError:
        return None


def all_processes() -> list[Process]:
    processes = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            process = read_process(int(entry.name))
            if process is not None:
                processes.append(process)
    return processes


def group_members(pgrp: int) -> list[Process]:
    """Live processes of a process group (a server started in its own session, its children)."""
    return [p for p in all_processes() if p.pgrp == pgrp and p.alive]


def memory_kb(pid: int) -> tuple[int, int]:
    """Resident set size and its peak (VmRSS, VmHWM) of ``pid`` in KiB; zeros if it is gone."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return values["VmRSS"], values["VmHWM"]


def signal_group(pgrp: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgrp, sig)


def signal_process(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout_s: float) -> list[int]:
    """Wait until none of ``pids`` is alive or ``timeout_s`` passed; the pids still alive."""
    deadline = time.monotonic() + timeout_s
    remaining = list(pids)
    while True:
        remaining = [pid for pid in remaining if alive(pid)]
        if not remaining or time.monotonic() >= deadline:
            return remaining
        time.sleep(0.2)


def alive(pid: int) -> bool:
    process = read_process(pid)
    return process is not None and process.alive


def pid_from_file(pid_file: Path, owns: Callable[[Process], bool]) -> int | None:
    """The pid in ``pid_file`` if that process is alive and ``owns`` it; a stale file (the
    process died or its pid was recycled) is removed."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    process = read_process(pid)
    if process is not None and process.alive and owns(process):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def wait_for(
    ready: Callable[[], bool],
    is_running: Callable[[], bool],
    timeout_s: float,
    exited: Callable[[], Exception],
    timed_out: Callable[[], Exception],
    poll_s: float = 0.5,
) -> None:
    """Poll ``ready`` until true; raise ``exited()`` once the process stops running, or
    ``timed_out()`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if not is_running():
            raise exited()
        if time.monotonic() >= deadline:
            raise timed_out()
        time.sleep(poll_s)


# --- ports -------------------------------------------------------------------------------------


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a server could listen on ``host:port`` now (bind test, like the server's own)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as servers use it: sockets in TIME_WAIT do not count as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_holder(port: int) -> Process | None:
    """The process listening on ``port`` (any address), if /proc lets us see it."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    sockets = {f"socket:[{inode}]" for inode in inodes}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and not sockets.isdisjoint(_fd_targets(entry)):
            return read_process(int(entry.name))
    return None


def _fd_targets(process_dir: Path) -> set[str]:
    """What the open file descriptors of a process point to (empty if we may not look)."""
    targets = set()
    try:
        descriptors = list((process_dir / "fd").iterdir())
    except (FileNotFoundError, PermissionError, ProcessLookupError, NotADirectoryError):
        return targets
    for descriptor in descriptors:
        try:
            targets.add(os.readlink(descriptor))
        except OSError:  # closed meanwhile (the listing's own descriptor, for one)
            continue
    return targets


_TCP_LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == _TCP_LISTEN:
                inodes.add(fields[9])
    return inodes


def terminate(
    name: str,
    leader: int | None,
    targets: set[int],
    watched: set[int],
    stop_timeout_s: float,
    kill_timeout_s: float,
) -> None:
    """SIGTERM ``targets``; if any of ``watched`` outlives ``stop_timeout_s``, SIGKILL the
    leader's process group and the survivors. Raises StackError if something survives that too.
    """
    from stacklib import StackError

    for target in targets:
        signal_process(target, signal.SIGTERM)
    survivors = wait_gone(sorted(targets | watched), stop_timeout_s)
    if survivors:
        if leader is not None:
            signal_group(leader, signal.SIGKILL)
        for survivor in survivors:
            signal_process(survivor, signal.SIGKILL)
        survivors = wait_gone(survivors, kill_timeout_s)
    if survivors:
        raise StackError(f"{name}: pid(s) {', '.join(map(str, survivors))} survive SIGKILL")
