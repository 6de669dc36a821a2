"""Benchmark: what erasure costs the stream (the ``user_id`` index) and what one erasure costs.

    .venv/bin/python -m bench.erase                      # 1M events, 3 runs of each stream
    .venv/bin/python -m bench.erase --events 200000 --repeats 1

1. The stream job over the same topic, into keyspaces with and without the Storage-Attached
   Index on ``events.user_id`` (conf/cassandra/50-erasure.cql), alternated, with the ingest
   bench's harness: medians and their ratio.
2. On the last keyspace with the index (all events stored), an aggregation publishes everything;
   then ``jobs/erase.py`` erases one user: wall time, events found through the index, quarantine
   rows scanned, rows the re-publishing read, windows re-published.

The last line is ``stream with/without index: X.XX; one erasure: S.S s``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter

from bench.lib.console import say
from bench.lib.cpu import CpuAccount, listener_pid, wait_settled
from bench.lib.resources import Bench, produce
from bench.lib.spark_phases import STREAM_JOB, StreamPhase, run_stream
from clickstream_spark.config import PROJECT_ROOT, load_config
from clickstream_spark.elastic import es_client

VARIANTS = ("no_index", "index")  # the last keyspace, with the index, is the one erased in


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config()
    run = f"bench_erase_{uuid.uuid4().hex[:8]}"
    bench = Bench(config, run, PROJECT_ROOT / ".state" / "bench" / run, keep=False)
    cassandra_pid = listener_pid(config.cassandra.port)
    kafka_pid = listener_pid(int(config.kafka.bootstrap_servers.rsplit(":", 1)[-1]))
    spark_args = ["--master", args.master, "--conf", "spark.ui.enabled=false"]
    rates: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    alias = f"{config.elasticsearch.index}_{run}"
    try:
        bench.connect()
        bench.create_topic()
        produce(bench, args.events, 0.01, args.seed)
        keyspace = ""
        for i in range(args.repeats):
            for variant in VARIANTS:
                if keyspace:
                    bench.release_keyspace(keyspace)
                keyspace = bench.new_keyspace(f"{variant}{i}")
                if variant == "no_index":
                    bench.session.execute(f"DROP INDEX {keyspace}.events_user_id", timeout=120)
                waited = wait_settled(cassandra_pid)
                say(f"stream {variant} run {i + 1}/{args.repeats} (settled after {waited:.0f}s)")
                phase = StreamPhase(f"{variant}{i}", STREAM_JOB)
                cpu = CpuAccount(cassandra_pid, kafka_pid)
                result = run_stream(bench, keyspace, phase, spark_args, args.timeout, cpu)
                rates[variant].append(result.rate)
                say(f"  {variant}: {result.messages:,} in {result.sustained_s:.1f}s "
                    f"= {result.rate:,.0f}/s")  # fmt: skip
        seconds = erase_one(bench, keyspace, alias, spark_args, args.timeout)
    finally:
        bench.close()
        with es_client(config.elasticsearch) as es:
            created = es.indices.get(index=f"{alias}-*", expand_wildcards="open,closed")
            if created:
                es.indices.delete(index=",".join(created))
    without, with_index = (statistics.median(rates[v]) for v in VARIANTS)
    say(f"stream with index: median {with_index:,.0f}/s of {[round(r) for r in rates['index']]}")
    say(f"stream without: median {without:,.0f}/s of {[round(r) for r in rates['no_index']]}")
    print(f"stream with/without index: {with_index / without:.2f}; one erasure: {seconds:.1f} s")
    return 0


def erase_one(
    bench: Bench, keyspace: str, alias: str, spark_args: list[str], timeout: float
) -> float:
    """Publish the keyspace's events, then erase the user with the most stored events; the
    erasure's wall time."""
    env = {
        **bench.env(keyspace, bench.work / "checkpoint-erase"),
        "CLICKSTREAM_ELASTICSEARCH_INDEX": alias,
        "CLICKSTREAM_AGGREGATE_RUN_SUMMARY_FILE": str(bench.work / "runs.jsonl"),
    }
    started = time.monotonic()
    _job([*spark_args, "jobs/aggregate.py"], env, timeout)
    say(f"aggregation of everything: {time.monotonic() - started:.1f}s")
    sample = bench.session.execute(f"SELECT user_id FROM {keyspace}.events LIMIT 20000")
    user, _ = Counter(row.user_id for row in sample).most_common(1)[0]
    quarantine = bench.session.execute(f"SELECT count(*) FROM {keyspace}.quarantine").one()[0]
    stored = bench.session.execute(f"SELECT count(*) FROM {keyspace}.events", timeout=300).one()[0]
    started = time.monotonic()
    output = _job([*spark_args, "jobs/erase.py", "--user-id", user], env, timeout)
    seconds = time.monotonic() - started
    for line in output.splitlines():  # its own lines (the log's carry a level)
        if line.startswith(("erasure ", "hour windows", "day windows")):
            say(f"  erase.py: {line}")
    deleted = re.search(
        r"deleted (\d+) events and (\d+) quarantined messages; (\d+) windows", output
    )
    rows_in = sum(
        int(n) for n in re.findall(r"rows in \(windows, look-back and look-ahead\): (\d+)", output)
    )
    if deleted is None:
        raise SystemExit(f"erase.py printed no summary:\n{output[-3000:]}")
    events, messages, windows = (int(n) for n in deleted.groups())
    say(
        f"one erasure of {stored:,} stored events: {seconds:.1f}s wall (Spark start included); "
        f"rows read: {events} events through the index, {quarantine:,} quarantine rows scanned, "
        f"{rows_in:,} events re-aggregated for {windows} windows; deleted {events} events and "
        f"{messages} quarantined messages"
    )
    return seconds


def _job(args: list[str], env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        ["./spark-submit.sh", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise SystemExit(f"{args[-1]} exited {done.returncode}:\n{output[-3000:]}")
    return output


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.erase", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="messages (1M)")
    parser.add_argument("--repeats", type=int, default=3, help="stream runs of each kind (3)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (7)")
    parser.add_argument("--master", default="local[2]", help="Spark master (local[2])")
    parser.add_argument("--timeout", type=float, default=1800, help="per Spark job, s (1800)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
