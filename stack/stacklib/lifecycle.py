"""Starting, waiting for, stopping and inspecting the servers' processes.

Each server runs in its own session (process group), so that stopping it reaches every process
it forked (Elasticsearch's launcher starts the actual server JVM as a child). Its pid goes to
.state/run/<server>.pid; a pid is trusted only while that process still runs this checkout's copy
of the server, so a stale pidfile or a recycled pid is never mistaken for a running server.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from stacklib import StackError
from stacklib.console import log_tail
from stacklib.procs import (
    Process,
    all_processes,
    memory_kb,
    pid_from_file,
    port_accepts,
    port_holder,
    port_is_free,
    signal_group,
    signal_process,
    terminate,
    wait_for,
    wait_gone,
    working_dir,
)
from stacklib.servers import Server

STOP_TIMEOUT_S = 30
KILL_TIMEOUT_S = 10
LOG_TAIL_LINES = 20
POLL_INTERVAL_S = 0.5


# --- finding running servers --------------------------------------------------------------------


def running_pid(server: Server) -> int | None:
    """The pid in the server's pidfile if that process is alive and is this server."""
    return pid_from_file(server.layout.pid_file(server.name), server.owns)


def server_processes(server: Server) -> list[Process]:
    """Every live java process of this server, whether or not a pidfile knows it."""
    pid = running_pid(server)
    return [
        process
        for process in all_processes()
        if process.alive and (process.pgrp == pid or (_is_java(process) and server.owns(process)))
    ]


def _is_java(process: Process) -> bool:
    program = process.cmdline.split(" ", 1)[0]
    return program.endswith("/java") or program == "java"


# --- starting -----------------------------------------------------------------------------------


def check_ports_free(server: Server) -> None:
    """Fail with one line naming the port, and its holder when /proc shows it, if one is taken."""
    for port in server.ports:
        if port_is_free(port):
            continue
        holder = port_holder(port)
        raise StackError(
            f"{server.name}: port {port} is already in use{_describe_holder(server, holder)}"
        )


def _describe_holder(server: Server, holder: Process | None) -> str:
    if holder is None:  # another user's process: /proc hides its file descriptors
        return ""
    details = [_shorten(holder.cmdline)]
    where = working_dir(holder.pid)
    if where:
        details.append(f"in {where}")
    text = f": held by pid {holder.pid} ({', '.join(details)})"
    if server.owns(holder):
        text += "; a leftover of this stack: run stackctl down"
    return text


@dataclass
class Launch:
    server: Server
    process: subprocess.Popen[bytes]
    log_since: int  # offset in the log file where this start's output begins
    started_at: float


def launch(server: Server) -> Launch:
    """Prepare and start ``server`` in the background, logging to .state/logs/<server>.log."""
    started_at = time.monotonic()  # time to ready includes preparing (Kafka formats its storage)
    server.log_file.parent.mkdir(parents=True, exist_ok=True)
    server.prepare()
    command = server.command()
    account = server.account()
    with server.log_file.open("ab") as log:
        log.write(
            f"\n=== stackctl: starting {server.name} at {datetime.now():%F %T} ===\n".encode()
        )
        log.flush()
        log_since = log.tell()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=server.working_dir(),
            env=server.environment(),
            start_new_session=True,  # own process group; survives the terminal closing
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=[] if account else None,
        )
    pid_file = server.layout.pid_file(server.name)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{process.pid}\n")
    server.layout.mode_file(server.name).write_text(mode_name(server.layout.secure) + "\n")
    return Launch(server, process, log_since, started_at)


def mode_name(secure: bool) -> str:
    return "secure" if secure else "plaintext"


def running_mode(server: Server) -> str:
    """Which stack the running ``server`` belongs to: "secure" or "plaintext"."""
    try:
        return server.layout.mode_file(server.name).read_text().strip() or "plaintext"
    except FileNotFoundError:
        return "plaintext"


def wait_ready(
    server: Server,
    is_alive: Callable[[], bool],
    log_since: int,
    timeout_s: float,
) -> None:
    """Return once ``server`` is ready; fail if its process dies or ``timeout_s`` passes."""
    wait_for(
        lambda: server.is_ready(log_since),
        is_alive,
        timeout_s,
        exited=lambda: StackError(
            f"{server.name} exited while starting; last lines of {server.log_file}:",
            details=log_tail(server.log_file, LOG_TAIL_LINES, since=log_since),
        ),
        timed_out=lambda: StackError(
            f"{server.name} not ready after {timeout_s:.0f} s (still running, "
            f"see {server.log_file}; stackctl down {server.name} stops it)"
        ),
        poll_s=POLL_INTERVAL_S,
    )


# --- stopping -----------------------------------------------------------------------------------


def stop(server: Server) -> float | None:
    """Stop ``server``; the seconds it took, or None if nothing of it was running.

    SIGTERM goes to the process that was started (not its whole group): Elasticsearch's launcher
    then shuts its server JVM down in order, where a SIGTERM to both makes the launcher report a
    crash. Whatever still runs after STOP_TIMEOUT_S gets SIGKILL, the whole group included.
    """
    pid = running_pid(server)
    processes = server_processes(server)
    if pid is None and not processes:
        return None
    started = time.monotonic()
    # The started process, and each process of this server that runs outside its group (found
    # through /proc, e.g. after its pidfile was deleted).
    targets = {p.pid for p in processes if pid is None or p.pgrp != pid}
    if pid is not None:
        targets.add(pid)
    terminate(server.name, pid, targets, {p.pid for p in processes}, STOP_TIMEOUT_S, KILL_TIMEOUT_S)
    server.layout.pid_file(server.name).unlink(missing_ok=True)
    server.layout.mode_file(server.name).unlink(missing_ok=True)
    return time.monotonic() - started


def kill(server: Server) -> int | None:
    """SIGKILL ``server`` at once, as a crash would (fault tests): no shutdown, no flush.

    Its whole process group and any stray process of it; the pid that was killed, or None if it
    was not running. ``up`` starts it again from its data, as after a real crash.
    """
    pid = running_pid(server)
    processes = server_processes(server)
    if pid is None and not processes:
        return None
    if pid is not None:
        signal_group(pid, signal.SIGKILL)
    for process in processes:
        signal_process(process.pid, signal.SIGKILL)
    survivors = wait_gone([p.pid for p in processes] + ([pid] if pid else []), KILL_TIMEOUT_S)
    if survivors:
        raise StackError(f"{server.name}: pid(s) {', '.join(map(str, survivors))} survive SIGKILL")
    server.layout.pid_file(server.name).unlink(missing_ok=True)
    return pid if pid is not None else processes[0].pid


# --- inspecting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    server: Server
    state: str  # "up", "starting" (process alive, port closed), "down"
    pid: int | None
    rss_kb: int
    peak_rss_kb: int

    @property
    def up(self) -> bool:
        return self.state == "up"


def status(server: Server) -> Status:
    pid = running_pid(server)
    processes = server_processes(server)
    if pid is None and not processes:
        return Status(server, "down", None, 0, 0)
    rss = peak = 0
    for process in processes:
        current, high = memory_kb(process.pid)
        rss, peak = rss + current, peak + high
    state = "up" if port_accepts(server.port) else "starting"
    if pid is None:
        state = "stray"  # running without a pidfile: `down` stops it
    return Status(server, state, pid or processes[0].pid, rss, peak)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
