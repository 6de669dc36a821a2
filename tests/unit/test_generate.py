"""The clickstream generator: deterministic, realistic, and labelled exactly like the parser."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from clickstream_spark.config import Config
from clickstream_spark.ingest.contract import classify
from clickstream_spark.schema import EPOCH
from clickstream_spark.tools.generate import (
    BAD_KINDS,
    SESSION_GAP_MS,
    URLS,
    VALID,
    Message,
    cli,
    generate_messages,
    main,
    message_record,
    sending,
)

START = datetime(2024, 5, 1, tzinfo=UTC)
END = START + timedelta(days=1)
START_MS = int(START.timestamp() * 1000)
END_MS = int(END.timestamp() * 1000)


def messages(events: int = 3000, **kwargs: object) -> list[Message]:
    args: dict[str, object] = {"start": START, "end": END, "seed": 1} | kwargs
    return list(generate_messages(events, **args))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clean() -> list[Message]:
    return messages(20_000, seed=42)


@pytest.fixture(scope="module")
def mixed() -> list[Message]:
    return messages(3000, bad_fraction=0.2, seed=7)


def test_same_seed_same_messages_other_seed_other_messages() -> None:
    assert messages(2000, bad_fraction=0.1) == messages(2000, bad_fraction=0.1)
    assert [m.value for m in messages(200, seed=2)] != [m.value for m in messages(200, seed=3)]


def test_exactly_n_messages_in_time_order_within_the_period(clean: list[Message]) -> None:
    assert len(clean) == 20_000
    times = [m.timestamp_ms for m in clean]
    assert times == sorted(times)
    assert times[0] >= START_MS and times[-1] < END_MS
    # spread over the whole period, not bunched at its start
    assert times[0] - START_MS < 3_600_000 and END_MS - times[-1] < 3_600_000


@pytest.mark.parametrize(
    ("events", "period"), [(1, timedelta(days=1)), (300, timedelta(minutes=5))]
)
def test_small_and_short_runs_still_fit_the_period(events: int, period: timedelta) -> None:
    got = list(generate_messages(events, start=START, end=START + period, seed=5))
    assert len(got) == events
    assert all(
        START_MS <= m.timestamp_ms < START_MS + period / timedelta(milliseconds=1) for m in got
    )


def test_sessions_are_separated_by_more_than_the_inactivity_gap(clean: list[Message]) -> None:
    last: dict[int, Message] = {}
    owner: dict[int, int] = {}
    inside, between = [], []
    for m in clean:
        assert owner.setdefault(m.session, m.user) == m.user  # a session has one user
        if m.user in last:
            gap = m.timestamp_ms - last[m.user].timestamp_ms
            (inside if m.session == last[m.user].session else between).append(gap)
        last[m.user] = m
    # a sessionizer using "> 30 min" or ">= 30 min" finds exactly the generator's sessions
    assert max(inside) < SESSION_GAP_MS < min(between)
    assert len(between) > 1000  # users do come back
    # dwell: mostly tens of seconds, a long tail of minutes (log-normal)
    inside.sort()
    assert 10_000 < inside[len(inside) // 2] < 120_000
    assert inside[int(len(inside) * 0.99)] > 5 * 60_000


def test_users_keep_their_attributes_and_sessions_have_several_pages(clean: list[Message]) -> None:
    seen: dict[int, tuple[object, ...]] = {}
    for m in clean:
        assert m.event is not None
        profile = (m.event.user_id, m.event.country, m.event.city, m.event.os, m.event.device)
        assert seen.setdefault(m.user, profile) == profile
    pages = Counter(m.session for m in clean)
    assert 3 < len(clean) / len(pages) < 7  # ~5 pages per session
    assert sum(1 for n in pages.values() if n == 1) > 0.1 * len(pages)  # bounces


def test_urls_follow_a_zipf_law(clean: list[Message]) -> None:
    counts = Counter(m.event.url for m in clean if m.event)
    ranked = [counts[u] for u in URLS]
    assert ranked[0] == max(ranked)
    assert ranked[0] > 5 * ranked[20] > 0
    assert len(counts) > 150  # a long tail is visited too


def test_country_mix_with_some_events_without_country(clean: list[Message]) -> None:
    countries = Counter(m.event.country for m in clean if m.event)
    assert countries.most_common(1)[0][0] == "US"
    assert len(countries) > 10
    assert 0.01 < countries[None] / len(clean) < 0.1
    # missing, null and "" all occur on the wire
    wire = [json.loads(m.value) for m in clean if m.event and m.event.country is None]
    assert {"country" in w and w["country"] for w in wire} >= {False, None, ""}


def test_timestamps_come_in_every_accepted_form(clean: list[Message]) -> None:
    forms = Counter()
    for m in clean[:2000]:
        ts = json.loads(m.value)["timestamp"]  # type: ignore[arg-type]
        forms["epoch" if isinstance(ts, int) else "Z" if ts.endswith("Z") else "offset"] += 1
    assert forms["Z"] > forms["epoch"] > 0 and forms["offset"] > 0


def test_row_keys_are_unique_uuids(clean: list[Message]) -> None:
    keys = [m.event.row_key for m in clean if m.event]
    assert len(set(keys)) == len(keys)
    uuid4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert all(uuid4.fullmatch(k) for k in keys)


def test_kafka_key_is_the_user(clean: list[Message]) -> None:
    assert all(m.key == m.event.user_id.encode() for m in clean if m.event)


def test_bad_fraction_contains_every_kind(mixed: list[Message]) -> None:
    kinds = Counter(m.kind for m in mixed)
    assert set(kinds) == {VALID} | {k.name for k in BAD_KINDS}
    bad = len(mixed) - kinds[VALID]
    assert 0.17 < bad / len(mixed) < 0.23
    assert max(kinds[k.name] for k in BAD_KINDS) - min(kinds[k.name] for k in BAD_KINDS) <= 1
    assert all(k == VALID for k in Counter(m.kind for m in messages(500)))


def test_every_message_is_classified_as_intended(mixed: list[Message]) -> None:
    # The generator's label and the parser's verdict are computed independently.
    for m in mixed:
        v = classify(m.value, END)  # read as the generated day ends
        assert v.reason == m.expected_reason, (m.kind, m.value)
        if m.event is not None:
            assert tuple(v[1:10]) == tuple(m.event)


def test_bad_events_replace_a_click_of_the_same_user(mixed: list[Message]) -> None:
    bad = [m for m in mixed if m.kind == "country_not_string"]
    assert all(m.key for m in bad)
    assert all(json.loads(m.value)["country"] == 250 for m in bad)  # type: ignore[arg-type]


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="timezone"):
        messages(10, start=datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="after"):
        messages(10, end=START)
    with pytest.raises(ValueError, match="bad_fraction"):
        messages(10, bad_fraction=1.5)
    with pytest.raises(ValueError, match="too few users"):
        messages(200, users=1, end=START + timedelta(hours=1))
    assert messages(0) == []


# --- the JSON-lines file and the command line -----------------------------------------------------


def decode_value(record: dict[str, object]) -> bytes | None:
    value, encoding = record["value"], record["value_encoding"]
    if encoding == "none":
        return None
    return base64.b64decode(value) if encoding == "base64" else str(value).encode()  # type: ignore[arg-type]


def test_record_round_trips_the_raw_message(mixed: list[Message]) -> None:
    for seq, m in enumerate(mixed):
        record = json.loads(json.dumps(message_record(seq, m)))
        assert decode_value(record) == m.value
        assert record["expected_reason"] == m.expected_reason
        if m.event is not None:
            ts = datetime.fromisoformat(record["event"]["timestamp"])
            assert ts == EPOCH + timedelta(microseconds=m.event.timestamp_us)
            assert ts.tzinfo is not None and record["event"]["row_key"] == m.event.row_key


def run_cli(tmp_path: Path, name: str, *extra: str) -> tuple[int, Path]:
    out = tmp_path / name
    argv = ["--no-kafka", "--output", str(out), "--events", "400", "--day", "2024-05-01"]
    code = main([*argv, "--bad-fraction", "0.1", "--seed", "3", "--no-progress", *extra])
    return code, out


def test_cli_writes_a_file_from_which_the_expected_result_follows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(tmp_path, "a.jsonl")
    assert code == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 400
    for record in records:  # what a test of the pipeline would do with the file
        v = classify(decode_value(record), END)
        assert v.reason == record["expected_reason"]
        if record["event"] is not None:
            assert v.row_key == record["event"]["row_key"]
            assert v.timestamp == datetime.fromisoformat(record["event"]["timestamp"])
    summary = capsys.readouterr().out
    assert "sent 400 events" in summary and "2024-05-01" in summary and "tombstone" in summary
    assert run_cli(tmp_path, "b.jsonl")[1].read_bytes() == out.read_bytes()  # deterministic


def test_cli_needs_somewhere_to_send() -> None:
    with pytest.raises(SystemExit):
        main(["--no-kafka", "--events", "10"])


class FakeSink:
    """Stands in for the Kafka producer: records what is produced, fails on demand."""

    instances: ClassVar[list[FakeSink]] = []

    def __init__(self, config: Config, stats: object) -> None:
        self.bootstrap_servers, self.topic = config.kafka.bootstrap_servers, config.kafka.topic
        self.stats = stats
        self.access_error = None
        self.produced: list[tuple[bytes, bytes | None]] = []
        self.unacknowledged = 0
        FakeSink.instances.append(self)

    def produce(self, key: bytes, value: bytes | None) -> None:
        self.produced.append((key, value))

    def poll(self) -> None:
        pass

    def flush(self, timeout: float) -> int:
        return self.unacknowledged


def test_cli_produces_every_message_with_config_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeSink.instances.clear()
    monkeypatch.setattr(cli, "KafkaSink", FakeSink)
    argv = ["--events", "250", "--day", "2024-05-01", "--bad-fraction", "0.2", "--no-progress"]
    assert main([*argv, "--topic", "t2", "--bootstrap-servers", "h:1"]) == 0
    sink = FakeSink.instances[0]
    assert (sink.bootstrap_servers, sink.topic) == ("h:1", "t2")
    expected = list(generate_messages(250, start=START, end=END, bad_fraction=0.2, seed=0))
    assert sink.produced == [(m.key, m.value) for m in expected]


def test_cli_fails_when_deliveries_fail(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Unacknowledged(FakeSink):
        def flush(self, timeout: float) -> int:
            self.stats.delivery_failed("broker down")  # type: ignore[attr-defined]
            return 3

    monkeypatch.setattr(cli, "KafkaSink", Unacknowledged)
    assert main(["--events", "50", "--day", "2024-05-01", "--no-progress"]) == 1
    assert "FAILED deliveries: 4" in capsys.readouterr().err


def test_rate_paces_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(sending.time, "sleep", slept.append)
    stats = sending.Stats()
    progress = type("P", (), {"update": lambda self, n: None})()
    sending.send(messages(100), sink=None, out=None, rate=20.0, progress=progress, stats=stats)
    assert stats.sent == 100 and sum(slept) > 3  # 100 events at 20/s: ~5 s of pacing


def test_per_user_sessions_partition_the_stream(clean: list[Message]) -> None:
    by_session: dict[int, list[int]] = defaultdict(list)
    for m in clean:
        by_session[m.session].append(m.timestamp_ms)
    spans = [max(t) - min(t) for t in by_session.values()]
    assert max(spans) < 24 * 3_600_000 and sorted(spans)[len(spans) // 2] < 30 * 60_000
