"""A run's messages: valid events and bad messages, with what a correct parser makes of them."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np

from clickstream_spark.schema import EPOCH
from clickstream_spark.tools.generate.bad_messages import BAD_KINDS, BadKind, bad_value
from clickstream_spark.tools.generate.population import Population, User, user
from clickstream_spark.tools.generate.sessions import Plan, default_users, plan_sessions
from clickstream_spark.tools.generate.world import (
    APP,
    OFFSET_MS,
    OFFSET_TEXT,
    URL_JSON,
    URL_P,
    URLS,
    WEB,
)

VALID = "valid"
_CHUNK = 65_536  # messages formatted per vectorised step


class Event(NamedTuple):
    """The typed event a correct parser produces (EVENT_SCHEMA order; timestamp in epoch µs)."""

    row_key: str
    user_id: str
    timestamp_us: int
    url: str
    country: str | None
    city: str | None
    browser: str | None
    os: str | None
    device: str | None


class Message(NamedTuple):
    """One Kafka message as sent, with the generator's own ground truth."""

    key: bytes
    value: bytes | None
    kind: str  # VALID or a BadKind name
    expected_reason: str | None  # None when valid
    event: Event | None  # the intended event when valid
    user: int  # index of the user
    session: int  # global session number (sessions of one user are > SESSION_GAP_MS apart)
    timestamp_ms: int  # event time of the click this message carries (or replaced)


def generate_messages(
    events: int,
    *,
    start: datetime,
    end: datetime,
    users: int | None = None,
    bad_fraction: float = 0.0,
    seed: int = 0,
) -> Iterator[Message]:
    """Yield exactly `events` messages in event-time order, all event times in ``[start, end)``.

    Deterministic: the same arguments give the same messages. The plan (who clicks when) takes
    ~40 bytes per event; the messages themselves are built lazily, chunk by chunk.
    """
    _check_arguments(events, start, end, users, bad_fraction)
    if events == 0:
        return
    run = _Run.draw(
        events, start, end, users or default_users(events, start, end), bad_fraction, seed
    )
    bad_kinds = itertools.cycle(BAD_KINDS)
    for lo in range(0, events, _CHUNK):
        chunk = run.chunk(lo, min(lo + _CHUNK, events))
        for i in range(len(chunk.ts_ms)):
            yield (
                _bad_message(chunk, i, next(bad_kinds))
                if chunk.bad[i]
                else _valid_message(chunk, i)
            )


def _check_arguments(
    events: int, start: datetime, end: datetime, users: int | None, bad_fraction: float
) -> None:
    if events < 0:
        raise ValueError("events must be >= 0")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError("end must be after start")
    if not 0.0 <= bad_fraction <= 1.0:
        raise ValueError("bad_fraction must be within [0, 1]")
    if users is not None and users < 1:
        raise ValueError("users must be >= 1")


@dataclass(frozen=True)
class _RowKeys:
    """UUID-shaped keys (version 4, variant 10): a per-run prefix + a bijection of the number."""

    prefix: str
    salt: int

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _RowKeys:
        bits = int(rng.integers(0, 2**60))
        prefix = f"{bits >> 28:08x}-{(bits >> 12) & 0xFFFF:04x}-4{bits & 0xFFF:03x}-"
        return cls(prefix, int(rng.integers(0, 2**62)))

    def numbered(self, lo: int, hi: int) -> list[str]:
        seq = np.arange(lo, hi).astype(np.uint64)
        # Odd multiplier and xor: a bijection on 62 bits, so keys never repeat within a run.
        mixed = ((seq * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(self.salt)) & np.uint64(
            2**62 - 1
        )
        return [
            f"{self.prefix}{8 | (m >> 60):x}{(m >> 48) & 0xFFF:03x}-{m & 0xFFFFFFFFFFFF:012x}"
            for m in mixed.tolist()
        ]


class _Chunk(NamedTuple):
    """Consecutive messages of a run, each part computed for all of them at once."""

    ts_ms: list[int]
    users: list[int]
    sessions: list[int]
    urls: list[int]  # index in URLS
    bad: list[bool]
    row_keys: list[str]
    who: list[User]
    ts_json: list[str]  # the timestamp as each user's client writes it


@dataclass
class _Run:
    """What a run draws up front: the plan, the users and the row keys."""

    rng: np.random.Generator
    plan: Plan
    population: Population
    row_keys: _RowKeys
    bad_fraction: float
    known: dict[int, User] = field(default_factory=dict)  # users met so far, made on first use

    @classmethod
    def draw(
        cls, events: int, start: datetime, end: datetime, users: int, bad_fraction: float, seed: int
    ) -> _Run:
        rng = np.random.default_rng(seed)
        start_ms, end_ms = round(start.timestamp() * 1000), round(end.timestamp() * 1000)
        plan = plan_sessions(rng, events, users, start_ms, end_ms)
        return cls(rng, plan, Population.draw(rng, users), _RowKeys.draw(rng), bad_fraction)

    def chunk(self, lo: int, hi: int) -> _Chunk:
        """Messages ``lo`` to ``hi`` (excluded); draws their URLs and which ones are bad."""
        ts = self.plan.ts_ms[lo:hi]
        users = self.plan.user[lo:hi].tolist()
        urls = self.rng.choice(len(URLS), hi - lo, p=URL_P).tolist()
        bad = (self.rng.random(hi - lo) < self.bad_fraction).tolist()
        for u in dict.fromkeys(users).keys() - self.known.keys():
            self.known[u] = user(self.population, u)
        who = [self.known[u] for u in users]
        sessions = self.plan.session[lo:hi].tolist()
        row_keys = self.row_keys.numbered(lo, hi)
        return _Chunk(ts.tolist(), users, sessions, urls, bad, row_keys, who, _ts_json(ts, who))


def _ts_json(ts: np.ndarray, who: list[User]) -> list[str]:
    """Each click's time as its client writes it: web UTC "Z", app local time, legacy epoch ms."""
    iso_utc = np.datetime_as_string(ts.astype("datetime64[ms]"), unit="ms").tolist()
    local = ts + OFFSET_MS[[w.country for w in who]]
    iso_local = np.datetime_as_string(local.astype("datetime64[ms]"), unit="ms").tolist()
    out = []
    for w, ms, utc, loc in zip(who, ts.tolist(), iso_utc, iso_local, strict=True):
        if w.flavour == WEB:
            out.append(f'"{utc}Z"')
        elif w.flavour == APP:
            out.append(f'"{loc}{OFFSET_TEXT[w.country]}"')
        else:
            out.append(str(ms))
    return out


def _valid_message(chunk: _Chunk, i: int) -> Message:
    who, url, row_key, ms = chunk.who[i], chunk.urls[i], chunk.row_keys[i], chunk.ts_ms[i]
    value = (
        f'{{"row_key":"{row_key}","user_id":{who.user_id_json},'
        f'"timestamp":{chunk.ts_json[i]},"url":{URL_JSON[url]}{who.tail}}}'
    )
    event = Event(row_key, who.user_id, ms * 1000, URLS[url], *who.expected)
    return Message(
        who.key, value.encode(), VALID, None, event, chunk.users[i], chunk.sessions[i], ms
    )


def _bad_message(chunk: _Chunk, i: int, kind: BadKind) -> Message:
    """A bad message in place of the valid one: same user, same time."""
    who, ms = chunk.who[i], chunk.ts_ms[i]
    fields = [
        ("row_key", f'"{chunk.row_keys[i]}"'),
        ("user_id", who.user_id_json),
        ("timestamp", chunk.ts_json[i]),
        ("url", URL_JSON[chunk.urls[i]]),
        *who.fields,
    ]
    value = bad_value(kind.name, fields, ms)
    return Message(
        who.key, value, kind.name, kind.reason, None, chunk.users[i], chunk.sessions[i], ms
    )


def message_record(seq: int, message: Message) -> dict[str, Any]:
    """The JSON-lines form of a message (``--output``): enough to recompute expected results.

    ``value`` is the message as sent (text, base64 when not UTF-8 per ``value_encoding``, or null
    for a tombstone); ``expected_reason`` is null for a valid message, whose intended typed event
    is ``event`` (timestamp as ISO-8601 UTC with microseconds).
    """
    if message.value is None:
        value, encoding = None, "none"
    else:
        try:
            value, encoding = message.value.decode("utf-8"), "utf8"
        except UnicodeDecodeError:
            value, encoding = base64.b64encode(message.value).decode("ascii"), "base64"
    event = None
    if message.event is not None:
        moment = EPOCH + timedelta(microseconds=message.event.timestamp_us)
        event = message.event._asdict()
        del event["timestamp_us"]
        event["timestamp"] = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {
        "seq": seq,
        "key": message.key.decode(),
        "value": value,
        "value_encoding": encoding,
        "kind": message.kind,
        "expected_reason": message.expected_reason,
        "event": event,
        "user": message.user,
        "session": message.session,
    }
