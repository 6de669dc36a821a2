#!/usr/bin/env python3
"""stackctl: the project's local server stack (Kafka, Cassandra, Elasticsearch) on loopback.

Servers are assembled from registry artifacts (Maven Central through ``mvn``), run as plain
background processes, and keep every file under ``.state/``. Run it with the project's venv:

    .venv/bin/python stack/stackctl.py fetch     # download the servers (once)
    .venv/bin/python stack/stackctl.py up        # start them, wait until ready, bootstrap
    .venv/bin/python stack/stackctl.py up --secure   # the same servers secured (TLS, users)
    .venv/bin/python stack/stackctl.py status
    .venv/bin/python stack/stackctl.py down      # stops either
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from stacklib import StackError, lifecycle, run_command
from stacklib.console import log_tail, report, say, show
from stacklib.fetch import Fetcher
from stacklib.java import Java, find_java
from stacklib.layout import Layout, read_versions
from stacklib.procs import alive
from stacklib.secure import ADMIN, SecureFiles, ensure_secure_files
from stacklib.servers import SERVER_NAMES, Server, make_servers

if TYPE_CHECKING:
    from clickstream_spark.config import Config

PROG = "stackctl"


def environment(secure: bool = False) -> tuple[Layout, dict[str, str], Java]:
    layout = Layout(secure=secure)
    versions = read_versions(layout)
    return layout, versions, find_java(int(versions["JAVA_MAJOR"]))


# --- fetch --------------------------------------------------------------------------------------


def cmd_fetch(args: argparse.Namespace) -> int:
    layout, versions, java = environment()
    fetcher = Fetcher(layout, versions, java)
    names = args.servers or list(SERVER_NAMES)
    pending = [name for name in names if args.force or not fetcher.is_current(name)]
    if not pending:
        fetched = ", ".join(f"{name} {fetcher.version(name)}" for name in names)
        say(f"nothing to do: {fetched} already fetched ({show(layout.state / 'dist')})")
        return 0
    running = [s.name for s in make_servers(pending, layout) if lifecycle.running_pid(s)]
    if running:
        names_text = " ".join(running)
        raise StackError(
            f"{names_text} running: stop it before fetching it again (stackctl down {names_text})"
        )
    started = time.monotonic()
    for name in names:
        version = fetcher.version(name)
        if name not in pending:
            say(f"{name} {version} already fetched")
            continue
        say(f"fetching {name} {version} ...")
        fetch_started = time.monotonic()
        summary = fetcher.fetch(name)
        say(f"  {name} {version}: {summary} in {time.monotonic() - fetch_started:.0f}s")
    say(f"done in {time.monotonic() - started:.0f}s")
    return 0


def require_fetched(servers: Iterable[Server], fetcher: Fetcher) -> None:
    stale = [s.name for s in servers if not fetcher.is_current(s.name)]
    if stale:
        raise StackError(
            f"{' '.join(stale)}: not fetched, or fetched for other versions or POMs: "
            f"run stackctl fetch"
        )


# --- up / bootstrap -----------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    layout, versions, java = environment(args.secure)
    servers = make_servers(args.servers, layout, java)
    running = {s.name: pid for s in servers if (pid := lifecycle.running_pid(s))}
    require_mode(servers, running, args.secure)
    to_start = [s for s in servers if s.name not in running]
    require_fetched(to_start, Fetcher(layout, versions, java))
    for server in to_start:  # every port is checked before anything starts
        lifecycle.check_ports_free(server)
    if args.secure:
        for line in ensure_secure_files(layout, load_stack_config()):
            say(f"secure: made {line}")

    def bring_up(server: Server) -> None:
        timeout_s = args.timeout or server.ready_timeout_s
        if server.name in running:
            pid = running[server.name]
            lifecycle.wait_ready(server, lambda: alive(pid), 0, timeout_s)
            say(f"{server.name}: already up (pid {pid})")
            return
        say(f"{server.name}: starting (log: {show(server.log_file)})")
        launch = lifecycle.launch(server)
        lifecycle.wait_ready(
            server, lambda: launch.process.poll() is None, launch.log_since, timeout_s
        )
        elapsed = time.monotonic() - launch.started_at
        say(f"{server.name}: ready in {elapsed:.1f}s (pid {launch.process.pid})")

    ready = run_concurrently(servers, bring_up)
    if args.bootstrap:
        ready = run_bootstrap(ready, layout)
    return 0 if len(ready) == len(servers) else 1


def require_mode(servers: list[Server], running: dict[str, int], secure: bool) -> None:
    """Servers already running must belong to the stack asked for (plaintext or secure)."""
    wanted = lifecycle.mode_name(secure)
    other = [s.name for s in servers if s.name in running and lifecycle.running_mode(s) != wanted]
    if other:
        names = " ".join(other)
        raise StackError(
            f"{names}: running as the {'plaintext' if secure else 'secure'} stack; "
            f"stop it first (stackctl down {names})"
        )


def cmd_bootstrap(args: argparse.Namespace) -> int:
    servers = make_servers(args.servers, Layout())
    down = [s.name for s in servers if not lifecycle.status(s).up]
    if down:
        raise StackError(f"{' '.join(down)}: not up (stackctl up {' '.join(down)})")
    modes = {lifecycle.running_mode(s) for s in servers}
    if len(modes) > 1:
        raise StackError("some servers run secured and some not: bootstrap them one by one")
    layout = Layout(secure=modes == {"secure"})
    servers = make_servers(args.servers, layout)
    return 0 if len(run_bootstrap(servers, layout)) == len(servers) else 1


def load_stack_config(env: dict[str, str] | None = None) -> Config:
    """The project's config with the local stack's overlay (one node each)."""
    from clickstream_spark.config import LOCAL_STACK_CONFIG_FILE, ConfigError, load_config

    try:
        return load_config(env=env, overlay=LOCAL_STACK_CONFIG_FILE)
    except ConfigError as exc:
        raise StackError(f"config: {exc}") from None


def run_bootstrap(servers: list[Server], layout: Layout) -> list[Server]:
    """Bootstrap each server; the ones that succeeded (failures are reported as they happen).
    The secured stack is bootstrapped as its admin (admin.env)."""
    from stacklib.bootstrap import bootstrap_server

    files = SecureFiles(layout) if layout.secure else None
    env = {**os.environ, **files.user_env(ADMIN)} if files else None
    config = load_stack_config(env)

    def bootstrap(server: Server) -> None:
        for line in bootstrap_server(server.name, config, layout.root, files):
            say(f"{server.name}: {line}")

    return run_concurrently(servers, bootstrap)


def cmd_secure_files(args: argparse.Namespace) -> int:
    layout = Layout(secure=True)
    made = ensure_secure_files(layout, load_stack_config())
    for line in made:
        say(f"made {line}")
    say(f"{show(layout.secure_dir)}: CA, certificates, and the users' env files (admin.env, ...)")
    return 0


def run_concurrently(servers: list[Server], action: Callable[[Server], None]) -> list[Server]:
    """Run ``action`` for every server in parallel; the servers it succeeded for.

    Servers start in 15-35 s each, mostly waiting: in parallel the stack is up in the time of
    the slowest. A failure is reported at once and does not stop the others.
    """

    def attempt(server: Server) -> Server | None:
        try:
            action(server)
            return server
        except StackError as exc:
            report(PROG, exc)
        except OSError as exc:  # a file or folder that cannot be written, a missing program
            report(PROG, StackError(f"{server.name}: {exc}"))
        return None

    pool = ThreadPoolExecutor(max_workers=max(1, len(servers)))
    try:
        results = list(pool.map(attempt, servers))
    except KeyboardInterrupt:
        # The workers only wait on servers; waiting for them to time out would ignore Ctrl-C.
        say("interrupted: servers that were started keep running (stackctl down stops them)")
        os._exit(130)
    pool.shutdown()
    return [server for server in results if server is not None]


# --- down / status / is-up / logs ---------------------------------------------------------------


def cmd_down(args: argparse.Namespace) -> int:
    servers = make_servers(args.servers, Layout())

    def bring_down(server: Server) -> None:
        elapsed = lifecycle.stop(server)
        if elapsed is None:
            say(f"{server.name}: not running")
        else:
            say(f"{server.name}: stopped in {elapsed:.1f}s")

    stopped = run_concurrently(servers, bring_down)
    return 0 if len(stopped) == len(servers) else 1


def cmd_kill(args: argparse.Namespace) -> int:
    for server in make_servers(args.servers, Layout()):
        pid = lifecycle.kill(server)
        say(f"{server.name}: not running" if pid is None else f"{server.name}: killed (pid {pid})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    statuses = [lifecycle.status(s) for s in make_servers(args.servers, Layout())]
    for st in statuses:
        line = status_line(
            st.server.name, st.state, str(st.server.port), st.pid, st.rss_kb, st.peak_rss_kb
        )
        secure = st.pid is not None and lifecycle.running_mode(st.server) == "secure"
        say(f"{line}  secure" if secure else line)
    running = [st for st in statuses if st.pid is not None]
    if len(running) > 1:
        rss, peak = sum(st.rss_kb for st in running), sum(st.peak_rss_kb for st in running)
        say(status_line("total", "", "", None, rss, peak))
    return 0 if all(st.up for st in statuses) else 1


def status_line(
    name: str, state: str, port: str, pid: int | None, rss_kb: int, peak_kb: int
) -> str:
    """``kafka  up  9092  pid 1234  rss 412 MB (peak 420 MB)``, in aligned columns."""
    line = f"{name:<14}{state:<9}{port:<6}"
    line += f"  pid {pid:<8}" if pid is not None else " " * 14
    if rss_kb:
        line += f"  rss {round(rss_kb / 1024):>5} MB  (peak {round(peak_kb / 1024)} MB)"
    return line.rstrip()


def cmd_is_up(args: argparse.Namespace) -> int:
    servers = make_servers(args.servers, Layout())
    up = all(lifecycle.status(s).up for s in servers)
    if up and args.mode is not None:
        up = all(lifecycle.running_mode(s) == args.mode for s in servers)
    return 0 if up else 1


def cmd_logs(args: argparse.Namespace) -> int:
    (server,) = make_servers([args.server], Layout())
    if not server.log_file.exists():
        raise StackError(f"{server.name}: no log yet ({show(server.log_file)})")
    for line in log_tail(server.log_file, args.lines):
        print(line)
    if args.follow:
        follow(server.log_file)
    return 0


def follow(path: Path) -> None:
    """Print what is appended to ``path`` until interrupted (like ``tail -f``)."""
    position = path.stat().st_size if path.exists() else 0
    while True:
        size = path.stat().st_size if path.exists() else 0
        if size < position:  # truncated or replaced
            position = 0
        if size > position:
            with path.open("rb") as log:
                log.seek(position)
                sys.stdout.write(log.read(size - position).decode(errors="replace"))
                sys.stdout.flush()
            position = size
        time.sleep(0.5)


# --- command line -------------------------------------------------------------------------------


def server_name(text: str) -> str:
    if text not in SERVER_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown server {text!r} (one of {', '.join(SERVER_NAMES)})"
        )
    return text


Handler = Callable[[argparse.Namespace], int]

# The commands that act on a selection of servers (all by default), in `--help` order.
SERVER_COMMANDS: tuple[tuple[str, Handler, str], ...] = (
    ("fetch", cmd_fetch, "download the servers into .state/dist (skips what is there)"),
    ("up", cmd_up, "start servers in the background, wait until ready, bootstrap"),
    ("bootstrap", cmd_bootstrap, "create the Kafka topic, apply conf/cassandra/*.cql "
     "and PUT conf/elasticsearch/*.template.json (idempotent)"),
    ("down", cmd_down, "stop servers (SIGTERM, SIGKILL after 30 s)"),
    ("kill", cmd_kill, "SIGKILL servers at once, as in a crash (for fault tests)"),
    ("status", cmd_status, "one line per server; exit 0 only if all are up"),
    ("is-up", cmd_is_up, "print nothing; exit 0 only if all are up"),
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Local Kafka, Cassandra and Elasticsearch for clickstream-spark, on loopback. "
        "Versions come from conf/versions.env, server settings from conf/stack/, "
        "and every file the stack writes goes under .state/.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    subs = {name: command(name, handler, text) for name, handler, text in SERVER_COMMANDS}
    for sub in subs.values():
        # `type` instead of `choices`: argparse rejects an empty `nargs="*"` list with choices.
        sub.add_argument(
            "servers", nargs="*", type=server_name, metavar="SERVER",
            help=f"any of {', '.join(SERVER_NAMES)} (default: all)",
        )  # fmt: skip
    subs["fetch"].add_argument(
        "--force", action="store_true", help="download again even if present"
    )
    subs["up"].add_argument(
        "--timeout", type=float, metavar="S", help="readiness timeout per server"
    )
    subs["up"].add_argument(
        "--no-bootstrap", dest="bootstrap", action="store_false",
        help="do not create the topic, schema and index templates",
    )  # fmt: skip
    subs["up"].add_argument(
        "--secure", action="store_true",
        help="the secured stack: TLS, SCRAM/password users, ACLs and grants; env files "
        "for each user in .state/secure/",
    )  # fmt: skip
    subs["is-up"].add_argument(
        "--mode", choices=("plaintext", "secure"), help="and running as this stack"
    )
    command(
        "secure-files", cmd_secure_files,
        "make the secured stack's CA, certificates, passwords and env files (.state/secure/)",
    )  # fmt: skip

    sub = command("logs", cmd_logs, "print the end of a server's log")
    sub.add_argument("server", choices=SERVER_NAMES, metavar="SERVER", help=", ".join(SERVER_NAMES))
    sub.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="lines (default 50)")
    sub.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv), lambda error: report(PROG, error))


if __name__ == "__main__":
    sys.exit(main())
