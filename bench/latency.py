"""Benchmark: how long until an event is visible, from its Kafka append to its micro-batch's commit.

    .venv/bin/python -m bench.latency                     # rate: half the stream's maximum
    .venv/bin/python -m bench.latency --rate 5000 --trigger-interval "2 seconds"

1. Unless ``--rate`` is given, the stream drains ``--measure-events`` messages (``--available-now``,
   timed as ``bench/ingest.py`` times it) and half its rate becomes the producer's.
2. The stream job runs as in production: processing-time trigger (the config's, or
   ``--trigger-interval``), a new checkpoint starting at the topic's end, a fresh keyspace. A
   producer sends generated messages (1% bad) at a steady rate for ``--warmup`` + ``--seconds``.
3. Each message's latency runs from its Kafka timestamp (the topic keeps the broker's append
   time, ``LogAppendTime``) to the moment the stream printed the batch line of the micro-batch
   whose offset ranges hold it: that line comes after the batch's events, quarantine, window marks
   and history row are written. Messages sent during the warm-up are left out.

The last line is ``latency p95: X.XX s at R events/s``.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import signal
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field

from bench.lib.console import say
from bench.lib.cpu import CpuAccount, listener_pid
from bench.lib.jobs import BATCH_LINE, QUERY_STARTED
from bench.lib.resources import PERIOD_END, PERIOD_START, Bench, produce
from bench.lib.sampling import TreeSampler
from bench.lib.spark_phases import STREAM_JOB, StreamPhase, run_stream
from clickstream_spark.config import PROJECT_ROOT, load_config
from clickstream_spark.tools.generate import generate_messages

BAD_FRACTION = 0.01


@dataclass
class Batch:
    id: int
    ranges: dict[int, tuple[int, int]]  # partition -> (first, last) offset
    rows: int
    seconds: float
    at: float  # wall clock (epoch seconds) when its line arrived


@dataclass
class LiveStream:
    """The stream job running in the background; its batch lines as they arrive."""

    process: subprocess.Popen[str]
    sampler: TreeSampler
    batches: list[Batch] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))

    @classmethod
    def start(cls, args: list[str], env: dict[str, str]) -> LiveStream:
        process = subprocess.Popen(
            ["./spark-submit.sh", *args], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True,
        )  # fmt: skip
        live = cls(process, TreeSampler(process.pid))
        live.sampler.start()
        threading.Thread(target=live._read, daemon=True).start()
        return live

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            at, line = time.time(), raw.rstrip("\n")
            self.tail.append(line)
            if QUERY_STARTED.search(line):
                self.started.set()
            if match := BATCH_LINE.search(line):
                ranges = {}
                for part in match["offsets"].split():
                    if part != "none":
                        partition, span = part[1:].split(":")
                        first, last = span.split("-")
                        ranges[int(partition)] = (int(first), int(last))
                self.batches.append(
                    Batch(int(match["id"]), ranges, int(match["rows"]), float(match["seconds"]), at)
                )

    def committed_through(self) -> dict[int, int]:
        """partition -> the last offset a printed batch line covers."""
        last: dict[int, int] = {}
        for batch in list(self.batches):
            for partition, (_, end) in batch.ranges.items():
                last[partition] = max(end, last.get(partition, -1))
        return last

    def stop(self) -> None:
        """SIGINT, as an operator stops it; SIGKILL if it is not gone within a minute."""
        try:
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        finally:
            self.sampler.stop()


@dataclass
class Sent:
    partition: int
    offset: int
    appended: float  # the broker's append time, epoch seconds


def produce_steadily(bench: Bench, rate: float, seconds: float, seed: int) -> list[Sent]:
    """Generated messages at ``rate``/s for ``seconds``; each with its partition, offset and
    append time (from the delivery reports)."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Producer

    sent: list[Sent] = []
    failures: list[str] = []
    other_timestamps = 0

    def delivered(err: object, msg: object) -> None:
        nonlocal other_timestamps
        if err:
            failures.append(str(err))
            return
        kind, ms = msg.timestamp()  # type: ignore[attr-defined]
        other_timestamps += kind != TIMESTAMP_LOG_APPEND_TIME
        sent.append(Sent(msg.partition(), msg.offset(), ms / 1000))  # type: ignore[attr-defined]

    producer = Producer(
        {
            "bootstrap.servers": bench.config.kafka.bootstrap_servers,
            "linger.ms": 5,  # a producer that sends what it has every few milliseconds
            "enable.idempotence": True,
        }
    )
    total = int(rate * seconds)
    messages = generate_messages(
        total, start=PERIOD_START, end=PERIOD_END, bad_fraction=BAD_FRACTION, seed=seed
    )
    began = time.monotonic()
    done = 0
    next_report = began + 30
    while done < total:
        now = time.monotonic()
        due = min(total, int((now - began) * rate))
        while done < due:
            message = next(messages)
            producer.produce(
                bench.topic, value=message.value, key=message.key, on_delivery=delivered
            )
            done += 1
        producer.poll(0)
        if now >= next_report:
            say(f"  produced {done:,} of {total:,} ({done / (now - began):,.0f}/s)")
            next_report += 30
        time.sleep(0.005)
    if producer.flush(60) or failures:
        raise SystemExit(f"produce: unacknowledged messages, failures {failures[:3]}")
    achieved = total / (time.monotonic() - began)
    say(f"produced {total:,} messages at {achieved:,.0f}/s (asked {rate:,.0f}/s)")
    if other_timestamps:
        raise SystemExit(f"{other_timestamps} messages lack the broker's append time")
    return sent


def latencies(sent: list[Sent], batches: list[Batch], since: float) -> tuple[list[float], int]:
    """Seconds from append to commit of each message appended at or after ``since``, and how many
    such messages no batch line covers."""
    spans: dict[int, list[tuple[int, int, float]]] = {}
    for batch in batches:
        for partition, (first, last) in batch.ranges.items():
            spans.setdefault(partition, []).append((first, last, batch.at))
    for partition_spans in spans.values():
        partition_spans.sort()
    starts = {p: [first for first, _, _ in s] for p, s in spans.items()}
    found: list[float] = []
    missing = 0
    for message in sent:
        if message.appended < since:
            continue
        i = bisect.bisect_right(starts.get(message.partition, []), message.offset) - 1
        span = spans[message.partition][i] if i >= 0 else None
        if span is None or message.offset > span[1]:
            missing += 1
            continue
        found.append(span[2] - message.appended)
    return found, missing


def percentiles(values: list[float]) -> dict[int, float]:
    """p50, p95 and p99 of ``values``, from one sort."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {q: cuts[q - 1] for q in (50, 95, 99)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config()
    run = f"bench_latency_{uuid.uuid4().hex[:8]}"
    bench = Bench(config, run, PROJECT_ROOT / ".state" / "bench" / run, keep=False)
    spark_args = ["--master", args.master, "--conf", "spark.ui.enabled=false"]
    trigger = args.trigger_interval or config.stream.trigger_interval
    cpu = CpuAccount(
        listener_pid(config.cassandra.port),
        listener_pid(int(config.kafka.bootstrap_servers.rsplit(":", 1)[-1])),
    )
    try:
        bench.connect()
        bench.create_topic({"message.timestamp.type": "LogAppendTime"})
        rate = args.rate
        if rate is None:
            produce(bench, args.measure_events, BAD_FRACTION, args.seed)
            keyspace = bench.new_keyspace("max")
            phase = StreamPhase("max", STREAM_JOB)
            result = run_stream(bench, keyspace, phase, spark_args, 1800, cpu)
            bench.release_keyspace(keyspace)
            rate = round(result.rate / 2)
            say(f"the stream's maximum: {result.rate:,.0f}/s; producing at half: {rate:,}/s")
        keyspace = bench.new_keyspace("latency")
        env = bench.env(keyspace, bench.work / "checkpoint-latency")
        stream_args = ["--starting-offsets", "latest", "--trigger-interval", trigger]
        say(f"stream with trigger {trigger!r}; producing {rate:,}/s for "
            f"{args.warmup:.0f}s warm-up + {args.seconds:.0f}s")  # fmt: skip
        cpu.begin()
        live = LiveStream.start([*spark_args, STREAM_JOB, *stream_args], env)
        try:
            if not live.started.wait(300) or live.process.poll() is not None:
                raise SystemExit("the stream did not start:\n" + "\n".join(live.tail))
            time.sleep(2)  # its first (empty) batch fixes the start offsets at the topic's end
            began = time.time()
            sent = produce_steadily(bench, rate, args.warmup + args.seconds, args.seed + 1)
            last = {}
            for message in sent:
                last[message.partition] = max(message.offset, last.get(message.partition, -1))
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and live.process.poll() is None:
                through = live.committed_through()
                if all(through.get(p, -1) >= offset for p, offset in last.items()):
                    break
                time.sleep(0.5)
        finally:
            live.stop()
        cpu_line = f"{cpu.end(sum(live.sampler.cpu_s.values()))}\n  {live.sampler.breakdown()}"
    finally:
        bench.close()
    found, missing = latencies(sent, live.batches, began + args.warmup)
    if not found:
        raise SystemExit(
            "no message after the warm-up reached a batch line:\n" + "\n".join(live.tail)
        )
    measured = [b for b in live.batches if b.at >= began + args.warmup and b.rows]
    say(f"{len(found):,} messages after the warm-up, {missing} not committed before the stop")
    say(f"micro-batches after the warm-up: {len(measured)}, median "
        f"{statistics.median(b.rows for b in measured):,.0f} rows in "
        f"{statistics.median(b.seconds for b in measured):.2f}s")  # fmt: skip
    say(cpu_line)
    p = percentiles(found)
    say(f"latency: p50 {p[50]:.2f} s, p95 {p[95]:.2f} s, p99 {p[99]:.2f} s, max {max(found):.2f} s")
    print(f"latency p95: {p[95]:.2f} s at {rate:,} events/s")
    return 1 if missing else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rate", type=int, help="events/s (default: half the measured maximum)")
    parser.add_argument(
        "--measure-events", type=int, default=300_000,
        help="messages the maximum is measured on (300000)",
    )  # fmt: skip
    parser.add_argument(
        "--trigger-interval", help="the stream's trigger (default: the config's, conf/)"
    )
    parser.add_argument("--warmup", type=float, default=30, help="seconds left out first (30)")
    parser.add_argument("--seconds", type=float, default=180, help="seconds measured (180)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (7)")
    parser.add_argument("--master", default="local[2]", help="Spark master (local[2])")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main())
