"""Benchmark: the stream job vs a plain Python consumer vs the sink's ceiling, same events.

    .venv/bin/python -m bench.ingest                       # 1M events (~5 minutes)
    .venv/bin/python -m bench.ingest --events 100000 --plain-events 10000
    .venv/bin/python -m bench.ingest --repeats 3 --wait-quiet 1200   # medians, quiet machine

What each phase runs and how its rate is timed: bench/README.md. The parts live in bench/lib/.
The last line is ``stream/plain: X.XX stream/ceiling: Y.YY``.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from dataclasses import dataclass

import psutil

from bench.lib.console import say
from bench.lib.cpu import CpuAccount, listener_pid, wait_quiet, wait_settled
from bench.lib.plain_consumer import ASYNC_CONCURRENCY, run_plain
from bench.lib.resources import Bench, produce
from bench.lib.spark_phases import (
    STREAM_JOB,
    YARDSTICKS,
    StreamPhase,
    StreamResult,
    run_ceiling,
    run_stream,
)
from bench.lib.summary import Results, print_summary
from clickstream_spark.config import PROJECT_ROOT, load_config
from clickstream_spark.tools.generate import VALID

PHASES = ("stream", "ceiling", "plain", *YARDSTICKS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config()
    run = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    bench = Bench(config, run, PROJECT_ROOT / ".state" / "bench" / run, args.keep)
    load_start = os.getloadavg()
    say(
        f"bench {run}: {args.events:,} events, plain prefix {args.plain_events:,}, "
        f"bad fraction {args.bad_fraction}, seed {args.seed}, master {args.master}, "
        f"{psutil.cpu_count() or 1} cores, "
        f"load {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}"
    )
    runner = _Runner(
        bench,
        args,
        cassandra_pid=listener_pid(config.cassandra.port),
        kafka_pid=listener_pid(int(config.kafka.bootstrap_servers.rsplit(":", 1)[-1])),
    )
    try:
        bench.connect()
        bench.create_topic()
        valid = produce(bench, args.events, args.bad_fraction, args.seed)[VALID]
        wait_quiet(args.wait_quiet, args.quiet_load)
        runner.streams(valid)
        runner.ceilings()
        runner.plain()
    finally:
        bench.close()
    print_summary(args, runner.results, load_start)
    return 0


@dataclass
class _Runner:
    """Runs the chosen phases, each repeat into a fresh keyspace, and collects their results."""

    bench: Bench
    args: argparse.Namespace
    cassandra_pid: int | None
    kafka_pid: int | None

    def __post_init__(self) -> None:
        self.results = Results()
        self.spark_args = ["--master", self.args.master, "--conf", "spark.ui.enabled=false"]
        for setting in self.args.conf:
            self.spark_args += ["--conf", setting]

    def _settled(self, what: str, i: int, keyspace: str) -> None:
        waited = wait_settled(self.cassandra_pid)
        say(
            f"{what} run {i + 1}/{self.args.repeats} into {keyspace} "
            f"(Cassandra settled after {waited:.0f}s)"
        )

    def _cpu(self) -> CpuAccount:
        return CpuAccount(self.cassandra_pid, self.kafka_pid)

    def streams(self, valid: int) -> None:
        """The stream and the yardsticks: the same harness and the same checks."""
        args = self.args
        harnessed = [("stream", args.job, ())] if "stream" in args.phases else []
        harnessed += [(p, *YARDSTICKS[p]) for p in YARDSTICKS if p in args.phases]
        for name, job, job_args in harnessed:
            for i in range(args.repeats):
                keyspace = self.bench.new_keyspace(f"{name}{i}")
                self._settled(name, i, keyspace)
                phase = StreamPhase(f"{name}{i}", job, job_args, args.max_offsets_per_trigger)
                result = run_stream(
                    self.bench, keyspace, phase, self.spark_args, args.timeout, self._cpu()
                )
                self.bench.release_keyspace(keyspace)
                self._check_and_say(name, result, valid)
                if name == "stream":
                    self.results.streams.append(result)
                else:
                    self.results.yardsticks.setdefault(name, []).append(result.rate)

    def _check_and_say(self, name: str, result: StreamResult, valid: int) -> None:
        if result.messages != self.args.events:
            say(f"WARNING: {name} read {result.messages} messages, not {self.args.events}")
        if result.valid != valid:
            say(f"WARNING: {result.valid} valid, the generator made {valid}")
        say(
            f"  {name}: {result.messages:,} messages in {result.sustained_s:.1f}s = "
            f"{result.rate:,.0f}/s; {len(result.batches)} batches, load {result.load:.2f}"
        )
        say(f"  {result.cpu_line}")

    def ceilings(self) -> None:
        for i in range(self.args.repeats if "ceiling" in self.args.phases else 0):
            keyspace = self.bench.new_keyspace(f"ceiling{i}")
            self._settled("ceiling", i, keyspace)
            ceiling = run_ceiling(
                self.bench, keyspace, self.spark_args, self.args.timeout, self._cpu()
            )
            self.results.ceilings.append(ceiling)
            self.bench.release_keyspace(keyspace)
            say(f"  {ceiling.cpu_line}")

    def plain(self) -> None:
        if "plain" not in self.args.phases:
            return
        keyspace = self.bench.new_keyspace("plain")
        for i in range(self.args.repeats):
            self._settled("plain consumer", i, keyspace)
            limit = self.args.plain_events
            self.results.plain_rates.append(run_plain(self.bench, keyspace, limit, 1))
            if not self.args.no_async:
                rate = run_plain(self.bench, keyspace, limit, ASYNC_CONCURRENCY)
                self.results.async_rates.append(rate)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.events < 1 or not 1 <= args.plain_events <= args.events:
        parser.error("need 1 <= --plain-events <= --events")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not args.phases or set(args.phases) - set(PHASES):
        parser.error(f"--phases: choose from {','.join(PHASES)}")
    if any("=" not in c for c in args.conf):
        parser.error("--conf takes KEY=VALUE")
    return args


def _parser() -> argparse.ArgumentParser:  # long only because it declares fifteen flags
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=(
            "Stream job (Kafka -> Cassandra, end to end) vs a plain Python consumer vs the "
            "Cassandra sink's ceiling, on the same events and the same Cassandra. Last line: "
            "'stream/plain: X.XX stream/ceiling: Y.YY'."
        ),
    )
    add = parser.add_argument
    add("--events", type=int, default=1_000_000, help="messages to produce (1M)")
    add(
        "--plain-events",
        type=int,
        default=50_000,
        help="prefix of the topic the plain consumer processes (50000)",
    )
    add(
        "--max-offsets-per-trigger",
        type=int,
        metavar="N",
        help="passed to the stream job (default: the job's own, conf/clickstream.toml)",
    )
    add("--bad-fraction", type=float, default=0.01, help="bad messages (0.01)")
    add("--seed", type=int, default=7, help="generator seed (7)")
    add("--repeats", type=int, default=1, help="runs of each phase; medians (1)")
    add("--master", default="local[2]", help="Spark master (local[2])")
    add(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark setting for both Spark jobs (stream and ceiling), e.g. to try a "
        "connector setting; repeatable",
    )
    add(
        "--job",
        default=STREAM_JOB,
        help=f"stream entry point to run ({STREAM_JOB}); another one only to measure a variant "
        "of it with the same harness (it must log the same batch lines)",
    )
    add(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (all); the last line's ratios need "
        "stream, ceiling and plain; bare and parse are yardsticks for the summary",
    )
    add("--no-async", action="store_true", help="skip the extra 64-concurrent plain variant")
    add(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before the timed phases, wait up to this long for the 1-min load to drop",
    )
    add("--quiet-load", type=float, default=1.5, help="the load to wait for")
    add("--timeout", type=float, default=1800, help="per Spark job, s (1800)")
    add("--keep", action="store_true", help="keep topic, keyspaces and files")
    return parser


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
