"""``clickstream-generate``: send a generated clickstream to Kafka and/or a JSON-lines file."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from clickstream_spark.tools.generate.bad_messages import BAD_KINDS
from clickstream_spark.tools.generate.messages import VALID, Message, generate_messages
from clickstream_spark.tools.generate.sending import KafkaAccessError, KafkaSink, Stats, send


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    args = _parser().parse_args(argv)
    if args.no_kafka and args.output is None:
        raise SystemExit("--no-kafka needs --output")
    start, end = _period(args)
    messages = _checked_messages(args, start, end)
    stats = Stats()
    sink = None if args.no_kafka else _kafka_sink(args, stats)
    started = time.monotonic()
    bar = tqdm(total=args.events, unit="ev", unit_scale=True, disable=args.no_progress)
    out = args.output.open("w", encoding="utf-8") if args.output else None
    try:
        send(messages, sink=sink, out=out, rate=args.rate, progress=bar, stats=stats)
    except KeyboardInterrupt:
        print("interrupted: flushing what was produced", file=sys.stderr)
    except KafkaAccessError:
        pass  # reported below, once flush() returned
    finally:
        bar.close()
        if out is not None:
            out.close()
        if sink is not None:
            # flush() runs the failure callbacks (stats.failed += 1): read the count after it.
            unacknowledged = sink.flush(120)
            stats.failed += unacknowledged
    if sink is not None and sink.access_error is not None:
        print(f"clickstream-generate: error: {sink.refusal()}", file=sys.stderr)
        return 1
    _summary(stats, time.monotonic() - started, start, end, sink, args)
    return 1 if stats.failed else 0


def _checked_messages(
    args: argparse.Namespace, start: datetime, end: datetime
) -> Iterator[Message]:
    """The messages, with the arguments validated and the plan drawn before anything connects."""
    try:
        messages = generate_messages(
            args.events,
            start=start,
            end=end,
            users=args.users,
            bad_fraction=args.bad_fraction,
            seed=args.seed,
        )
        first = next(messages, None)
    except ValueError as exc:
        raise SystemExit(f"clickstream-generate: {exc}") from None
    return itertools.chain([first] if first else [], messages)


def _kafka_sink(args: argparse.Namespace, stats: Stats) -> KafkaSink:
    from clickstream_spark.config import ConfigError, load_config, with_overrides

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise SystemExit(f"config: {exc}") from None
    config = with_overrides(
        config, "kafka", bootstrap_servers=args.bootstrap_servers, topic=args.topic
    )
    return KafkaSink(config, stats)


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a zone (e.g. 2024-05-01T00:00:00Z)")
    return moment


def _period(args: argparse.Namespace) -> tuple[datetime, datetime]:
    """--day, or --start/--end (one of them defaults to a day from the other), or yesterday."""
    if args.day is not None:
        if args.start or args.end:
            raise SystemExit("--day excludes --start/--end")
        start = datetime.combine(args.day, datetime.min.time(), UTC)
        return start, start + timedelta(days=1)
    if args.start is not None:
        return args.start, args.end or args.start + timedelta(days=1)
    if args.end is not None:
        return args.end - timedelta(days=1), args.end
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1), today  # the last complete UTC day


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clickstream-generate",
        description="Send a realistic, reproducible clickstream to Kafka (and/or a file).",
    )
    p.add_argument("--config", help="config file (default: $CLICKSTREAM_CONFIG, conf/...)")
    p.add_argument("--bootstrap-servers", help="override kafka.bootstrap_servers")
    p.add_argument("--topic", help="override kafka.topic")
    p.add_argument("--events", type=int, default=100_000, help="messages to send (100000)")
    p.add_argument("--rate", type=float, help="pace at this many events/s (default: flat out)")
    p.add_argument("--users", type=int, help="number of users (default: sized to the period)")
    p.add_argument("--start", type=_instant, help="period start, ISO-8601 with zone")
    p.add_argument("--end", type=_instant, help="period end (exclusive), ISO-8601 with zone")
    p.add_argument("--day", type=date.fromisoformat, help="the period is this UTC day")
    p.add_argument("--bad-fraction", type=float, default=0.0, help="share of bad events (0)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--output", type=Path, help="also write the messages as JSON lines here")
    p.add_argument("--no-kafka", action="store_true", help="only write --output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _summary(
    stats: Stats,
    elapsed: float,
    start: datetime,
    end: datetime,
    sink: KafkaSink | None,
    args: argparse.Namespace,
) -> None:
    valid = stats.by_kind[VALID]
    where = f"to topic {sink.topic}" if sink else "(no Kafka)"
    rate = stats.sent / max(elapsed, 1e-9)
    lines = [
        f"sent {stats.sent} events {where} in {elapsed:.1f} s: {rate:,.0f} events/s",
        f"period [{start.isoformat()}, {end.isoformat()}), seed {args.seed}",
        f"valid {valid}, bad {stats.sent - valid}",
    ]
    if stats.first_ts is not None and stats.last_ts is not None:
        first = datetime.fromtimestamp(stats.first_ts / 1000, UTC).isoformat()
        last = datetime.fromtimestamp(stats.last_ts / 1000, UTC).isoformat()
        lines.append(f"event times {first} .. {last}")
    lines += [
        f"  {kind.name:<22} {stats.by_kind[kind.name]:>8}  -> {kind.reason}"
        for kind in BAD_KINDS
        if stats.by_kind[kind.name]
    ]
    if args.output:
        lines.append(f"wrote {args.output}")
    if stats.failed:
        lines.append(f"FAILED deliveries: {stats.failed} (first errors: {stats.errors})")
    print("\n".join(lines), file=sys.stderr if stats.failed else sys.stdout)
