"""Benchmark: the stream and the aggregation on the plaintext stack vs the secured one, same events.

    .venv/bin/python -m bench.secure                   # 100k events
    .venv/bin/python -m bench.secure --events 20000

The two stacks share their ports, so each mode restarts the local stack (``stackctl down``, then
``up`` or ``up --secure``; the time to ready is printed). In each mode: a fresh topic, keyspace and
alias, made as the admin (on the secured stack the jobs' permissions are granted on them, as
bootstrap grants them on the configured ones), the same generated day of messages, then the stream
(``--available-now``) and the aggregation, each as its own user on the secured stack and timed as
a whole ``spark-submit`` process. The stack is left as it was found (up in the same mode, or down).
The last line is ``secure/plaintext: stream X.XX aggregate Y.YY``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "stack"))  # stacklib

from stacklib import lifecycle
from stacklib.layout import Layout
from stacklib.secure import (
    ADMIN,
    AGGREGATE,
    GENERATE,
    STREAM,
    USERS,
    SecureFiles,
    User,
)
from stacklib.secure_bootstrap import grant_jobs
from stacklib.servers import make_servers

from bench.lib.console import say
from clickstream_spark.cassandra_schema import statements
from clickstream_spark.config import LOCAL_STACK_CONFIG_FILE, PROJECT_ROOT, Config, load_config
from clickstream_spark.cql import cassandra_cluster
from clickstream_spark.elastic import es_client
from clickstream_spark.kafka_clients import librdkafka_config

STACKCTL = [sys.executable, "stack/stackctl.py"]
MODES = ("plaintext", "secure")
DAY = "2026-03-14"
JOB_TIMEOUT_S = 1800


@dataclasses.dataclass
class Timings:
    up: float = 0.0
    stream: float = 0.0
    aggregate: float = 0.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = f"bench_secure_{uuid.uuid4().hex[:8]}"
    found = stack_mode()
    load = os.getloadavg()
    say(f"bench {run}: {args.events:,} events, stack found {found}, load {load[0]:.2f}")
    results: dict[str, Timings] = {}
    try:
        for mode in MODES:
            results[mode] = run_mode(mode, run, args)
    finally:
        restore(found)
    say(f"load at the end {os.getloadavg()[0]:.2f} (started at {load[0]:.2f})")
    for mode, t in results.items():
        print(
            f"{mode:>9}: up {t.up:6.1f} s  stream {t.stream:6.1f} s  aggregate {t.aggregate:6.1f} s"
        )
    plain, secure = results["plaintext"], results["secure"]
    print(
        f"secure/plaintext: stream {secure.stream / plain.stream:.2f} "
        f"aggregate {secure.aggregate / plain.aggregate:.2f}"
    )
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=100_000, help="messages per mode (100000)")
    p.add_argument("--seed", type=int, default=7, help="generator seed (7)")
    return p.parse_args(argv)


def stack_mode() -> str:
    """plaintext, secure, or down (also when the servers are not all up in one mode)."""
    servers = make_servers([], Layout())
    if not all(lifecycle.status(s).up for s in servers):
        return "down"
    modes = {lifecycle.running_mode(s) for s in servers}
    return modes.pop() if len(modes) == 1 else "down"


def stackctl(*args: str) -> float:
    started = time.monotonic()
    subprocess.run([*STACKCTL, *args], cwd=PROJECT_ROOT, check=True, timeout=900)
    return time.monotonic() - started


def restore(found: str) -> None:
    stackctl("down")
    if found != "down":
        stackctl("up", *(["--secure"] if found == "secure" else []))


def run_mode(mode: str, run: str, args: argparse.Namespace) -> Timings:
    secure = mode == "secure"
    timings = Timings()
    stackctl("down")
    timings.up = stackctl("up", *(["--secure"] if secure else []))
    say(f"{mode}: stack ready in {timings.up:.1f} s")
    env = {**os.environ, **user_env(ADMIN)} if secure else None
    admin = load_config(env=env, overlay=LOCAL_STACK_CONFIG_FILE)  # the local stack: one node each
    work = PROJECT_ROOT / ".state" / "bench" / f"{run}_{mode}"
    names = {
        "CLICKSTREAM_KAFKA_TOPIC": f"{run}_{mode}",
        "CLICKSTREAM_CASSANDRA_KEYSPACE": f"{run}_{mode}",
        "CLICKSTREAM_ELASTICSEARCH_INDEX": f"{admin.elasticsearch.index}_{run}_{mode}",
        "CLICKSTREAM_STREAM_CHECKPOINT": str(work / "checkpoint"),
        "CLICKSTREAM_SPARK_EVENT_LOG_DIR": str(work / "spark-events"),
    }
    (work / "spark-events").mkdir(parents=True, exist_ok=True)
    with resources(admin, names, secure):

        def program(user: User, *command: str) -> float:
            env = job_env(names, user if secure else None)
            started = time.monotonic()
            subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True, timeout=JOB_TIMEOUT_S)
            return time.monotonic() - started

        python = sys.executable
        program(
            GENERATE, python, "-m", "clickstream_spark.tools.generate", "--day", DAY,
            "--events", str(args.events), "--seed", str(args.seed), "--bad-fraction", "0.005",
        )  # fmt: skip
        timings.stream = program(STREAM, "./spark-submit.sh", "jobs/stream.py", "--available-now")
        say(f"{mode}: stream {timings.stream:.1f} s")
        timings.aggregate = program(AGGREGATE, "./spark-submit.sh", "jobs/aggregate.py")
        say(f"{mode}: aggregate {timings.aggregate:.1f} s")
    shutil.rmtree(work, ignore_errors=True)
    return timings


def user_env(user: User) -> dict[str, str]:
    return SecureFiles(Layout(secure=True)).user_env(user)


def job_env(names: dict[str, str], user: User | None) -> dict[str, str]:
    """The environment without any credential, then the bench's names and ``user``'s variables."""
    files = SecureFiles(Layout(secure=True))
    credentials = {name for u in USERS if files.env_file(u).exists() for name in user_env(u)}
    env = {k: v for k, v in os.environ.items() if k not in credentials}
    return {**env, **names, **(user_env(user) if user else {})}


@contextmanager
def resources(admin: Config, names: dict[str, str], secure: bool) -> Iterator[None]:
    """The mode's topic, keyspace and (at the end) alias, made and removed as the admin."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topic, keyspace = names["CLICKSTREAM_KAFKA_TOPIC"], names["CLICKSTREAM_CASSANDRA_KEYSPACE"]
    kafka = AdminClient(librdkafka_config(admin.kafka))
    kafka.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result()
    session = cassandra_cluster(admin.cassandra, connect_timeout=10).connect()
    for statement in statements(keyspace):
        session.execute(statement, timeout=120)
    if secure:
        grant_jobs(admin, session, topic, keyspace)
    try:
        yield
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=300)
        session.cluster.shutdown()
        kafka.delete_topics([topic])[topic].result()
        with es_client(admin.elasticsearch) as es:
            alias = names["CLICKSTREAM_ELASTICSEARCH_INDEX"]
            for index in es.indices.get(index=f"{alias}*", expand_wildcards="all"):
                es.indices.delete(index=index)


if __name__ == "__main__":
    sys.exit(main())
