"""A Spark standalone cluster on loopback (one master, one worker) from the pyspark wheel's Spark:
how each daemon is started and recognised, and what its state is. ``stack/cluster.py`` is the CLI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from stacklib import StackError
from stacklib.console import log_tail, show
from stacklib.layout import Layout
from stacklib.procs import (
    Process,
    all_processes,
    memory_kb,
    pid_from_file,
    port_holder,
    port_is_free,
    terminate,
    wait_for,
)

HOST = "127.0.0.1"
MASTER_PORT = 7077
MASTER_UI_PORT = 8080
WORKER_UI_PORT = 8081
WORKER_CORES = 2
WORKER_MEMORY = "2g"
MASTER_URL = f"spark://{HOST}:{MASTER_PORT}"
MASTER_JSON_URL = f"http://{HOST}:{MASTER_UI_PORT}/json"

# Each application's executor folder holds its stdout/stderr and a copy of every connector jar
# (~76 MB). Finished applications' folders go after 4 hours, checked every 15 minutes: time to
# read an executor's log after a failure, while hourly runs and test runs do not fill the disk.
APP_DATA_TTL_S = 4 * 3600
WORKER_CLEANUP = {
    "spark.worker.cleanup.enabled": "true",
    "spark.worker.cleanup.interval": "900",
    "spark.worker.cleanup.appDataTtl": str(APP_DATA_TTL_S),
}

READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
KILL_TIMEOUT_S = 10
LOG_TAIL_LINES = 20
POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Daemon:
    """The master or the worker: how it is started and how its process is recognised."""

    name: str  # spark-master | spark-worker: the names of its log and pid files
    main_class: str
    arguments: tuple[str, ...]
    ports: tuple[int, ...]
    extra_env: tuple[tuple[str, str], ...] = ()
    folders: tuple[Path, ...] = ()  # created before it starts


@dataclass(frozen=True)
class Cluster:
    layout: Layout
    spark_home: Path
    master: Daemon
    worker: Daemon

    @property
    def spark_class(self) -> Path:
        return self.layout.root / ".venv" / "bin" / "spark-class"

    def owns(self, daemon: Daemon, process: Process) -> bool:
        """True if ``process`` is ``daemon`` run from this checkout's pyspark.

        That is its JVM, or, during its first second, the spark-class script that builds the
        JVM's command line and then execs it (same pid). A shell or an editor whose command line
        merely mentions the class never qualifies, so it is never stopped.
        """
        words = process.cmdline.split(" ")
        cmdline = f"{process.cmdline} "
        if f" {daemon.main_class} " not in cmdline:
            return False
        if words[0].endswith("/java"):
            return f"{self.spark_home}/jars/" in cmdline
        return words[1:3] == [str(self.spark_class), daemon.main_class]

    def log_file(self, daemon: Daemon) -> Path:
        return self.layout.log_file(daemon.name)

    def pid_file(self, daemon: Daemon) -> Path:
        return self.layout.pid_file(daemon.name)


def make_cluster(layout: Layout | None = None) -> Cluster:
    layout = layout or Layout()
    venv = layout.root / ".venv"
    master = Daemon(
        name="spark-master",
        main_class="org.apache.spark.deploy.master.Master",
        arguments=("--host", HOST, "--port", str(MASTER_PORT), "--webui-port", str(MASTER_UI_PORT)),
        ports=(MASTER_PORT, MASTER_UI_PORT),
    )
    worker_opts = " ".join(f"-D{key}={value}" for key, value in WORKER_CLEANUP.items())
    worker_arguments = (
        "--host", HOST, "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY,
        "--webui-port", str(WORKER_UI_PORT),
        "--work-dir", str(layout.data("spark-worker")),
        MASTER_URL,
    )  # fmt: skip
    worker = Daemon(
        name="spark-worker",
        main_class="org.apache.spark.deploy.worker.Worker",
        arguments=worker_arguments,
        ports=(WORKER_UI_PORT,),
        extra_env=(
            ("SPARK_WORKER_OPTS", worker_opts),
            # Executors inherit the worker's environment. The driver already names the Python of
            # its Python workers (spark-submit.sh exports PYSPARK_PYTHON); this is the fallback
            # for an application that does not, so executors never pick a Python without pandas.
            ("PYSPARK_PYTHON", str(venv / "bin" / "python")),
            # Executors' scratch space (shuffle, spilled blocks) under .state/, removed by the
            # worker when the application ends.
            ("SPARK_LOCAL_DIRS", str(layout.tmp("spark-worker"))),
            ("TZ", "UTC"),
        ),
        folders=(layout.data("spark-worker"), layout.tmp("spark-worker")),
    )
    return Cluster(layout, find_spark_home(), master, worker)


def find_spark_home() -> Path:
    """The Spark inside the pyspark wheel of this venv (bin/spark-class, jars/)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise StackError("pyspark is not installed in this Python; run 'make setup' first")
    return Path(spec.origin).parent


def daemon_environment(cluster: Cluster, daemon: Daemon) -> dict[str, str]:
    env = dict(os.environ)
    # The jobs' conf/spark (WARN-only logging, job settings) is not the daemons': without a conf
    # folder they log at INFO, which is what tells why a worker did not register.
    env.pop("SPARK_CONF_DIR", None)
    env["SPARK_HOME"] = str(cluster.spark_home)
    # Bind the RPC endpoints and web UIs to loopback only.
    env["SPARK_LOCAL_IP"] = HOST
    env.update(daemon.extra_env)
    return env


# --- finding running daemons --------------------------------------------------------------------


def running_pid(cluster: Cluster, daemon: Daemon) -> int | None:
    """The pid in the daemon's pidfile if that process is alive and is this daemon."""
    return pid_from_file(cluster.pid_file(daemon), lambda process: cluster.owns(daemon, process))


def daemon_processes(cluster: Cluster, daemon: Daemon) -> list[Process]:
    """Live processes of the daemon, with or without a pidfile, and their process groups.

    The worker's group holds its executors (they are its children), so stopping it by group
    leaves no executor behind.
    """
    pid = running_pid(cluster, daemon)
    return [p for p in all_processes() if p.alive and (p.pgrp == pid or cluster.owns(daemon, p))]


def master_state(timeout_s: float = 2.0) -> dict | None:
    """The master's JSON (workers, apps, status), or None when it does not answer."""
    try:
        with urllib.request.urlopen(MASTER_JSON_URL, timeout=timeout_s) as response:
            return json.load(response)
    except (OSError, ValueError):  # refused, timed out, or not (yet) JSON
        return None


def our_worker_alive(state: dict | None) -> bool:
    """True if the master lists this cluster's worker (known by its web UI port) as ALIVE."""
    if not state:
        return False
    return any(
        w.get("state") == "ALIVE" and w.get("webuiaddress", "").endswith(f":{WORKER_UI_PORT}")
        for w in state.get("workers", [])
    )


# --- starting -----------------------------------------------------------------------------------


def check_ports_free(cluster: Cluster, daemon: Daemon) -> None:
    """Fail with one line naming the port and its holder (when /proc shows it) if one is taken."""
    for port in daemon.ports:
        if port_is_free(port, HOST):
            continue
        holder = port_holder(port)
        by = f": held by pid {holder.pid} ({holder.cmdline[:80]})" if holder else ""
        if holder is not None and cluster.owns(daemon, holder):
            by += "; a leftover of this cluster without a pidfile: cluster.py down stops it"
        raise StackError(f"{daemon.name}: port {port} is already in use{by}")


@dataclass
class Launch:
    daemon: Daemon
    process: subprocess.Popen[bytes]
    log_since: int  # offset in the log where this start's output begins
    started_at: float


def launch(cluster: Cluster, daemon: Daemon) -> Launch:
    """Start ``daemon`` in the background (own session), logging to .state/logs/<name>.log."""
    log_file = cluster.log_file(daemon)
    for folder in (log_file.parent, cluster.pid_file(daemon).parent, *daemon.folders):
        folder.mkdir(parents=True, exist_ok=True)
    started_at = time.monotonic()
    with log_file.open("ab") as log:
        log.write(f"\n=== cluster: starting {daemon.name} at {datetime.now():%F %T} ===\n".encode())
        log.flush()
        log_since = log.tell()
        # spark-class execs the JVM, so the pid is the daemon's own.
        process = subprocess.Popen(
            [str(cluster.spark_class), daemon.main_class, *daemon.arguments],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cluster.layout.root,
            env=daemon_environment(cluster, daemon),
            start_new_session=True,  # own process group; survives the terminal closing
        )
    cluster.pid_file(daemon).write_text(f"{process.pid}\n")
    return Launch(daemon, process, log_since, started_at)


def wait_until(
    cluster: Cluster,
    daemon: Daemon,
    ready: Callable[[], bool],
    is_running: Callable[[], bool],
    what: str,
    timeout_s: float,
    log_since: int = 0,
) -> None:
    """Poll ``ready`` until true; a one-line error with the log's tail if the daemon exits or
    ``timeout_s`` passes."""
    log_file = cluster.log_file(daemon)
    wait_for(
        ready,
        is_running,
        timeout_s,
        exited=lambda: StackError(
            f"{daemon.name} exited before {what}; last lines of {show(log_file)}:",
            details=log_tail(log_file, LOG_TAIL_LINES, since=log_since),
        ),
        timed_out=lambda: StackError(
            f"{daemon.name}: not {what} after {timeout_s:.0f} s (still running; "
            f"cluster.py down stops it); last lines of {show(log_file)}:",
            details=log_tail(log_file, LOG_TAIL_LINES, since=log_since),
        ),
        poll_s=POLL_INTERVAL_S,
    )


def master_answers() -> bool:
    state = master_state()
    return state is not None and state.get("status") == "ALIVE"


def prune_work_dir(cluster: Cluster) -> None:
    """Remove application folders older than the TTL from the worker's work dir.

    The worker's own cleanup runs only while it is up, first after a full interval: a cluster
    started for one test run and stopped again would never clean up. With the worker down, no
    application is running, so an old folder is a finished one.
    """
    work_dir = cluster.layout.data("spark-worker")
    if not work_dir.is_dir():
        return
    oldest_kept = time.time() - APP_DATA_TTL_S
    for app_dir in work_dir.glob("app-*"):
        if app_dir.is_dir() and app_dir.stat().st_mtime < oldest_kept:
            shutil.rmtree(app_dir, ignore_errors=True)


# --- stopping -----------------------------------------------------------------------------------


def stop_daemon(cluster: Cluster, daemon: Daemon) -> float | None:
    """Stop ``daemon``: SIGTERM, then SIGKILL to its group after STOP_TIMEOUT_S.

    SIGTERM lets the worker's shutdown hook kill its executors and lets the master end cleanly.
    Returns the seconds it took, or None if it was not running.
    """
    pid = running_pid(cluster, daemon)
    processes = daemon_processes(cluster, daemon)
    if pid is None and not processes:
        return None
    started = time.monotonic()
    # The started process, and any copy of the daemon found through /proc (no pidfile).
    targets = {p.pid for p in processes if cluster.owns(daemon, p)}
    if pid is not None:
        targets.add(pid)
    terminate(daemon.name, pid, targets, {p.pid for p in processes}, STOP_TIMEOUT_S, KILL_TIMEOUT_S)
    cluster.pid_file(daemon).unlink(missing_ok=True)
    return time.monotonic() - started


@dataclass(frozen=True)
class DaemonState:
    state: str  # up | starting (running, not yet answering) | stray (no pidfile) | down
    pid: int | None
    rss_kb: int
    peak_rss_kb: int


def daemon_state(cluster: Cluster, daemon: Daemon, answers: bool) -> DaemonState:
    """What the daemon's processes are doing; ``answers``: the master's JSON says it is alive."""
    pid = running_pid(cluster, daemon)
    processes = daemon_processes(cluster, daemon)
    if not processes:
        return DaemonState("down", None, 0, 0)
    rss = peak = 0
    for process in processes:  # the worker's executors count too
        current, high = memory_kb(process.pid)
        rss, peak = rss + current, peak + high
    if pid is None:
        return DaemonState("stray", processes[0].pid, rss, peak)  # `down` stops it
    return DaemonState("up" if answers else "starting", pid, rss, peak)


def daemon_line(daemon: Daemon, st: DaemonState) -> str:
    """``spark-master  up  7077  pid 1234  rss 312 MB (peak 320 MB)``, stackctl's columns."""
    line = f"{daemon.name:<14}{st.state:<9}{daemon.ports[0]:<6}"
    if st.pid is not None:
        line += f"  pid {st.pid:<8}  rss {round(st.rss_kb / 1024):>5} MB"
        line += f"  (peak {round(st.peak_rss_kb / 1024)} MB)"
    return line.rstrip()
