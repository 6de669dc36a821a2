"""The closing summary of bench/ingest.py: medians of each phase, then the ratios' line."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.lib.console import say
from bench.lib.plain_consumer import ASYNC_CONCURRENCY
from bench.lib.spark_phases import STREAM_JOB, YARDSTICKS, CeilingResult, StreamResult


@dataclass
class Results:
    streams: list[StreamResult] = field(default_factory=list)
    ceilings: list[CeilingResult] = field(default_factory=list)
    plain_rates: list[float] = field(default_factory=list)
    async_rates: list[float] = field(default_factory=list)
    yardsticks: dict[str, list[float]] = field(default_factory=dict)  # phase -> rates


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _spread(values: Sequence[float]) -> str:
    if len(values) < 2:
        return ""
    return f" (median of {len(values)}: {', '.join(f'{v:,.0f}' for v in values)})"


def print_summary(
    args: argparse.Namespace, results: Results, load_start: tuple[float, float, float]
) -> None:
    say("")
    say("=" * 100)
    say(
        f"N = {args.events:,} messages, bad fraction {args.bad_fraction}, seed {args.seed}, "
        f"master {args.master}, maxOffsetsPerTrigger "
        f"{args.max_offsets_per_trigger or 'job default'}"
        + (f", extra conf {' '.join(args.conf)}" if args.conf else "")
        + (f", job {args.job}" if args.job != STREAM_JOB else "")
        + f"; load at start {load_start[0]:.2f}"
    )
    stream_rate = _say_streams(results.streams) if results.streams else None
    ceiling_rate = _say_ceilings(results.ceilings) if results.ceilings else None
    plain_rate = _say_plain(results, args.plain_events)
    _say_yardsticks(results.yardsticks, stream_rate, ceiling_rate)
    if results.streams:
        for line in _middle(results.streams).profile:
            say(line)

    def ratio(other: float | None) -> str:
        return f"{stream_rate / other:.2f}" if stream_rate and other else "n/a"

    say(f"stream/plain: {ratio(plain_rate)} stream/ceiling: {ratio(ceiling_rate)}")


def _middle(streams: list[StreamResult]) -> StreamResult:
    return sorted(streams, key=lambda s: s.rate)[len(streams) // 2]


def _say_streams(streams: list[StreamResult]) -> float:
    """The stream's lines; returns its median sustained rate."""
    rate = _median([s.rate for s in streams])
    middle = _middle(streams)
    say(
        f"stream: {middle.valid:,} valid, {middle.quarantined:,} quarantined, "
        f"{len(middle.batches)} micro-batches; mean 1-min load during the runs "
        f"{_median([s.load for s in streams]):.2f}"
    )
    say("  start-up (not in the rate), s:")
    for name in middle.startup:
        say(f"    {name:<44}{_median([s.startup[name] for s in streams]):7.1f}")
    say(
        f"  sustained rate (first batch start -> query finished): {rate:,.0f} "
        f"messages/s{_spread([s.rate for s in streams])}"
    )
    steady = [r for s in streams if (r := s.steady_rate) is not None]
    from_query_start = _median([s.messages / s.query_s for s in streams])
    say(
        f"  for reference: from query start {from_query_start:,.0f}/s"
        f"; write_batch times only {_median([s.batch_rate for s in streams]):,.0f}/s"
        + (f"; batches after the first {_median(steady):,.0f}/s" if steady else "")
    )
    say(
        f"  peak RSS of the job's process tree: {_mb(_median([s.peak_rss for s in streams]))} "
        f"(at that peak: JVM {_mb(middle.peak_jvm)}, Python {_mb(middle.peak_python)})"
    )
    say(
        "  "
        + "; ".join(
            f"batch {b['id']} {b['rows'] / 1000:,.0f}k in {b['seconds']:.1f}s"
            for b in middle.batches
        )
    )
    return rate


def _say_ceilings(ceilings: list[CeilingResult]) -> float:
    """The ceiling's lines; returns its median write rate."""
    rates = [c.rows / c.write_s[0] for c in ceilings]
    ceiling = sorted(ceilings, key=lambda c: c.rows / c.write_s[0])[len(ceilings) // 2]
    say(
        f"ceiling, Spark batch write of {ceiling.rows:,} parsed events: {_median(rates):,.0f} "
        f"rows/s{_spread(rates)}; mean 1-min load {_median([c.load for c in ceilings]):.2f}"
    )
    say(
        f"  (its write {ceiling.write_s[0]:.1f}s; parse + cache {ceiling.materialise_s:.1f}s "
        f"not counted; cache {_mb(ceiling.cache_mem)} in memory, "
        f"{_mb(ceiling.cache_disk)} on disk, {ceiling.partitions} partitions)"
    )
    return _median(rates)


def _say_plain(results: Results, plain_events: int) -> float | None:
    """The plain consumer's lines; returns its median synchronous rate, if it ran."""
    plain_rate = None
    if results.plain_rates:
        plain_rate = _median(results.plain_rates)
        say(
            f"plain consumer, one synchronous insert per message, first {plain_events:,}: "
            f"{plain_rate:,.0f} messages/s{_spread(results.plain_rates)}"
        )
    if results.async_rates:
        say(
            f"  extra: {ASYNC_CONCURRENCY} concurrent async inserts: "
            f"{_median(results.async_rates):,.0f} messages/s{_spread(results.async_rates)}"
        )
    return plain_rate


def _say_yardsticks(
    yardsticks: dict[str, list[float]], stream_rate: float | None, ceiling_rate: float | None
) -> None:
    bare, parse = (_median(yardsticks[p]) if p in yardsticks else None for p in YARDSTICKS)
    if bare:
        say(
            f"yardstick, bare query (parse, valid events to Cassandra; no cache, quarantine or "
            f"windows): {bare:,.0f} messages/s{_spread(yardsticks['bare'])}"
            + (f"; stream/bare {stream_rate / bare:.2f}" if stream_rate else "")
            + (f"; bare/ceiling {bare / ceiling_rate:.2f}" if ceiling_rate else "")
        )
    if parse:
        say(
            f"yardstick, Kafka read and parser alone (noop sink): {parse:,.0f} messages/s"
            f"{_spread(yardsticks['parse'])}"
            + (
                # Parser and sink share the cores: at best 1/(1/parse + 1/ceiling) per second.
                f"; bound for stream/ceiling, parse/(parse + ceiling): "
                f"{parse / (parse + ceiling_rate):.2f}"
                if ceiling_rate
                else ""
            )
        )
