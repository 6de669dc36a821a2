#!/usr/bin/env python3
"""cluster: a Spark standalone cluster on loopback, from the Spark that the pyspark wheel ships.

One master (spark://127.0.0.1:7077, web UI :8080) and one worker (2 cores, 2g, web UI :8081),
run as background processes like the servers of stackctl, with every file under ``.state/``:

    .venv/bin/python stack/cluster.py up        # start, wait until the worker is registered
    .venv/bin/python stack/cluster.py status
    .venv/bin/python stack/cluster.py down

Then: ./spark-submit.sh --master spark://127.0.0.1:7077 jobs/stream.py --available-now

    .state/logs/spark-master.log, spark-worker.log   the daemons' output (INFO)
    .state/run/spark-master.pid, spark-worker.pid    their pids
    .state/data/spark-worker/<app-id>/<executor>/     executors' stdout/stderr, fetched jars
    .state/tmp/spark-worker/                          executors' scratch (shuffle), per app
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from stacklib import run_command
from stacklib.console import report, say, show
from stacklib.procs import alive
from stacklib.spark_cluster import (
    HOST,
    MASTER_UI_PORT,
    MASTER_URL,
    READY_TIMEOUT_S,
    WORKER_CORES,
    WORKER_MEMORY,
    Cluster,
    Daemon,
    check_ports_free,
    daemon_line,
    daemon_state,
    launch,
    make_cluster,
    master_answers,
    master_state,
    our_worker_alive,
    prune_work_dir,
    running_pid,
    stop_daemon,
    wait_until,
)

PROG = "cluster"


# --- starting -----------------------------------------------------------------------------------


def start_daemon(
    cluster: Cluster, daemon: Daemon, ready: Callable[[], bool], what: str, timeout_s: float
) -> None:
    say(f"{daemon.name}: starting (log: {show(cluster.log_file(daemon))})")
    started = launch(cluster, daemon)
    wait_until(
        cluster,
        daemon,
        ready,
        lambda: started.process.poll() is None,
        what,
        timeout_s,
        started.log_since,
    )
    elapsed = time.monotonic() - started.started_at
    say(f"{daemon.name}: {what} in {elapsed:.1f}s (pid {started.process.pid})")


def bring_up(
    cluster: Cluster,
    daemon: Daemon,
    pid: int | None,
    ready: Callable[[], bool],
    what: str,
    timeout_s: float,
) -> None:
    """Start ``daemon`` if it is not running (``pid`` None), else wait until it is ``what``."""
    if pid is None:
        start_daemon(cluster, daemon, ready, what, timeout_s)
        return
    wait_until(cluster, daemon, ready, lambda: alive(pid), what, timeout_s)
    say(f"{daemon.name}: already up (pid {pid})")


def worker_registered() -> bool:
    return our_worker_alive(master_state())


def cmd_up(args: argparse.Namespace) -> int:
    cluster = make_cluster()
    started = time.monotonic()
    master_pid = running_pid(cluster, cluster.master)
    worker_pid = running_pid(cluster, cluster.worker)
    if master_pid and worker_pid and our_worker_alive(master_state()):
        pids = f"master pid {master_pid}, worker pid {worker_pid}"
        say(f"cluster: already up at {MASTER_URL} ({pids})")
        return 0
    if master_pid is None and worker_pid is not None:
        # A worker whose master is gone waits out its reconnection back-off (tens of seconds);
        # starting it afresh with the new master is quicker and predictable.
        say("spark-worker: running without a master; restarting it")
        stop_daemon(cluster, cluster.worker)
        worker_pid = None

    for daemon, pid in ((cluster.master, master_pid), (cluster.worker, worker_pid)):
        if pid is None:  # every port is checked before anything starts
            check_ports_free(cluster, daemon)

    bring_up(cluster, cluster.master, master_pid, master_answers, "ready", args.timeout)
    # The worker starts once the master answers: a worker that finds no master retries only
    # after 5-15 s, which would make most starts slower.
    if worker_pid is None:
        prune_work_dir(cluster)
    registered = "registered with the master"
    bring_up(cluster, cluster.worker, worker_pid, worker_registered, registered, args.timeout)
    elapsed = time.monotonic() - started
    say(
        f"cluster: up at {MASTER_URL} in {elapsed:.1f}s "
        f"(UI http://{HOST}:{MASTER_UI_PORT}, worker {WORKER_CORES} cores {WORKER_MEMORY})"
    )
    return 0


# --- stopping and status ------------------------------------------------------------------------


def cmd_down(_args: argparse.Namespace) -> int:
    cluster = make_cluster()
    # Worker first: a worker that loses its master keeps trying to reconnect.
    for daemon in (cluster.worker, cluster.master):
        elapsed = stop_daemon(cluster, daemon)
        if elapsed is None:
            say(f"{daemon.name}: not running")
        else:
            say(f"{daemon.name}: stopped in {elapsed:.1f}s")
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    cluster = make_cluster()
    state = master_state()
    answers = {
        cluster.master: state is not None and state.get("status") == "ALIVE",
        cluster.worker: our_worker_alive(state),
    }
    states = {daemon: daemon_state(cluster, daemon, up) for daemon, up in answers.items()}
    for daemon, st in states.items():
        say(daemon_line(daemon, st))
    if state is not None:
        say(
            f"{'':<14}{MASTER_URL}  workers {state.get('aliveworkers', 0)}  "
            f"cores {state.get('coresused', 0)}/{state.get('cores', 0)}  "
            f"apps running {len(state.get('activeapps', []))} "
            f"finished {len(state.get('completedapps', []))}"
        )
    return 0 if all(st.state == "up" for st in states.values()) else 1


# --- command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cluster.py",
        description=f"A Spark standalone cluster on loopback ({MASTER_URL}, one worker with "
        f"{WORKER_CORES} cores and {WORKER_MEMORY}), from the Spark in the pyspark wheel. "
        "Logs in .state/logs/spark-{master,worker}.log, pids in .state/run/.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="start master and worker; wait until the worker registered")
    up.add_argument(
        "--timeout", type=float, default=READY_TIMEOUT_S, metavar="S",
        help=f"readiness timeout per daemon (default {READY_TIMEOUT_S})",
    )  # fmt: skip
    up.set_defaults(handler=cmd_up)
    down = commands.add_parser("down", help="stop worker (and its executors) and master")
    down.set_defaults(handler=cmd_down)
    status = commands.add_parser("status", help="one line per daemon; exit 0 only if both are up")
    status.set_defaults(handler=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv), lambda error: report(PROG, error))


if __name__ == "__main__":
    sys.exit(main())
