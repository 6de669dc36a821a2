"""Realistic clickstream for ``clickstream_topic``: sessions, Zipf URLs, a country mix, bad events.

Two halves, kept apart on purpose:

* :func:`generate_messages` is pure and seedable: an iterator of :class:`Message` (the Kafka key
  and value as sent, plus what a correct parser must make of them). Tests and benchmarks use it
  without Kafka.
* :func:`main` (``clickstream-generate``, ``python -m clickstream_spark.tools.generate``) sends
  those messages with confluent-kafka and/or writes them as JSON lines (``--output``).

The model. Users have a fixed country/city/device/os/browser and one of three client flavours
(web: ISO-8601 ``Z`` timestamps; app: ISO-8601 with the country's UTC offset and ``browser: null``;
legacy: integer user ids, epoch-millisecond timestamps, ``device: ""`` and an extra field). Each
user has sessions placed in ``[start, end)``: inside a session consecutive clicks are at most
:data:`SESSION_GAP_MS` apart (log-normal dwell, median ~40 s), between sessions more than that. URLs
follow a Zipf law over a shop-like URL set. ~4 % of users have no country (field missing, null or
empty, all meaning null). Row keys are UUID-shaped, derived from the seed and the message number
through a bijection: unique within a run and identical when re-run with the same arguments, so a
re-run is an idempotent upsert downstream.

Bad events (``--bad-fraction``) replace valid ones (same user, same time) and cycle through every
kind in :data:`BAD_KINDS`, so any run with at least ``len(BAD_KINDS)`` bad events covers each kind.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import itertools
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import numpy as np

from clickstream_spark.ingest.contract import MAX_MESSAGE_BYTES, Reason
from clickstream_spark.windows import MAX_GAP_S

# The inactivity gap that ends a session: the 30 minutes past which a click is an exit.
SESSION_GAP_MS = MAX_GAP_S * 1000
# Clicks of one session are at most SESSION_GAP_MS - 1 s apart, sessions of one user at least
# SESSION_GAP_MS + 1 s apart: sessionizing with "> 30 min" or with ">= 30 min" finds the same ones.
_MAX_INTRA_GAP_MS = SESSION_GAP_MS - 1000
_MIN_INTER_GAP_MS = SESSION_GAP_MS + 1000
MEAN_PAGES_PER_SESSION = 5.0  # geometric: ~20 % of sessions are single-page bounces
DWELL_MEDIAN_S = 40.0
DWELL_SIGMA = 1.3  # log-normal: p90 ~ 3.5 min, p99 ~ 14 min, a tail past 30 min
ZIPF_EXPONENT = 1.1
NO_COUNTRY_SHARE = 0.04
_CHUNK = 65_536  # events formatted per vectorised step

# --- the world ---------------------------------------------------------------------------------

_SITE = "https://shop.example.com"
_CATEGORIES = (
    "shoes", "running", "outdoor", "electronics", "laptops", "phones", "audio", "home",
    "kitchen", "garden", "toys", "books", "beauty", "sports", "fashion", "kids",
)  # fmt: skip
_ADJECTIVES = ("classic", "ultra", "pro", "lite", "eco", "smart", "urban", "trail", "max", "mini")
_NOUNS = (
    "sneaker", "jacket", "headphones", "backpack", "kettle", "lamp", "watch", "speaker",
    "blender", "tent", "charger", "keyboard", "mug", "bottle", "chair", "drone",
)  # fmt: skip
_BLOG = (
    "how-to-choose-running-shoes", "best-laptops-2024", "spring-garden-guide", "coffee-at-home",
    "camping-checklist", "smart-home-basics", "gift-ideas", "size-guide", "care-instructions",
    "sustainability-report",
)  # fmt: skip
_HELP = ("shipping", "returns", "payment", "warranty", "contact", "faq", "track-order")


def _url_set() -> tuple[str, ...]:
    """~330 URLs, most popular first (the Zipf rank is the position)."""
    head = ["/", "/deals", "/search?q=shoes", "/cart", "/category/shoes", "/products"]
    head += ["/search?q=headphones", "/account", "/checkout", "/login", "/search?q=laptop"]
    products = [
        f"/products/{adj}-{noun}-{n}" for adj in _ADJECTIVES for noun in _NOUNS for n in (1, 2)
    ]
    rest = (
        [f"/category/{c}" for c in _CATEGORIES if c != "shoes"]
        + products
        + [f"/blog/{b}" for b in _BLOG]
        + [f"/help/{h}" for h in _HELP]
        + ["/checkout/payment", "/checkout/confirmation", "/account/orders", "/wishlist"]
    )
    # A fixed shuffle (not the run's seed): the site's popularity order is part of the model.
    order = np.random.default_rng(20240501).permutation(len(rest))
    return tuple(_SITE + path for path in head + [rest[i] for i in order])


URLS = _url_set()


class _Country(NamedTuple):
    code: str
    weight: float
    utc_offset: str  # one representative offset (DST ignored: any valid offset is an instant)
    cities: tuple[tuple[str, float], ...]


# Latin-1-encodable names on purpose (the invalid_utf8 kind re-encodes a message as Latin-1).
COUNTRIES = (
    _Country("US", 0.28, "-05:00", (("New York", 4), ("Los Angeles", 3), ("Chicago", 2),
                                    ("Houston", 1.5), ("Seattle", 1))),
    _Country("IN", 0.12, "+05:30", (("Mumbai", 3), ("Delhi", 3), ("Bengaluru", 2.5))),
    _Country("GB", 0.08, "+00:00", (("London", 5), ("Manchester", 1.5), ("Edinburgh", 1))),
    _Country("DE", 0.08, "+01:00", (("Berlin", 3), ("München", 2), ("Köln", 1.5),
                                    ("Hamburg", 1.5))),
    _Country("FR", 0.06, "+01:00", (("Paris", 5), ("Lyon", 1.5), ("Marseille", 1.2))),
    _Country("BR", 0.06, "-03:00", (("São Paulo", 4), ("Rio de Janeiro", 2.5),
                                    ("Belo Horizonte", 1))),
    _Country("JP", 0.05, "+09:00", (("Tokyo", 5), ("Osaka", 2), ("Sapporo", 1))),
    _Country("CA", 0.04, "-05:00", (("Toronto", 3), ("Montréal", 2), ("Vancouver", 2))),
    _Country("ES", 0.04, "+01:00", (("Madrid", 3), ("Barcelona", 3), ("Málaga", 1))),
    _Country("IT", 0.04, "+01:00", (("Roma", 3), ("Milano", 3), ("Napoli", 1.5))),
    _Country("MX", 0.04, "-06:00", (("Ciudad de México", 4), ("Guadalajara", 1.5),
                                    ("Monterrey", 1.5))),
    _Country("AU", 0.03, "+10:00", (("Sydney", 3), ("Melbourne", 3), ("Brisbane", 1.5))),
    _Country("NL", 0.03, "+01:00", (("Amsterdam", 3), ("Rotterdam", 1.5), ("Utrecht", 1))),
    _Country("PL", 0.02, "+01:00", (("Warszawa", 3), ("Kraków", 2), ("Katowice", 1))),
    _Country("SE", 0.02, "+01:00", (("Stockholm", 3), ("Göteborg", 1.5), ("Malmö", 1))),
    _Country("CH", 0.02, "+01:00", (("Zürich", 2), ("Genève", 1.5), ("Basel", 1))),
)  # fmt: skip

# device → os → browser, each with weights.
DEVICES = {
    "desktop": (0.45, {"Windows": (0.70, {"Chrome": 0.65, "Edge": 0.25, "Firefox": 0.10}),
                       "macOS": (0.25, {"Safari": 0.50, "Chrome": 0.45, "Firefox": 0.05}),
                       "Linux": (0.05, {"Chrome": 0.60, "Firefox": 0.40})}),
    "mobile": (0.48, {"Android": (0.70, {"Chrome": 0.80, "Samsung Internet": 0.15,
                                         "Firefox": 0.05}),
                      "iOS": (0.30, {"Safari": 0.90, "Chrome": 0.10})}),
    "tablet": (0.07, {"iPadOS": (0.60, {"Safari": 0.85, "Chrome": 0.15}),
                      "Android": (0.40, {"Chrome": 0.90, "Samsung Internet": 0.10})}),
}  # fmt: skip

# Client flavours and their share of users.
WEB, APP, LEGACY = 0, 1, 2
_FLAVOUR_SHARE = (0.75, 0.15, 0.10)


class BadKind(NamedTuple):
    name: str
    reason: str  # what parse.classify must answer


BAD_KINDS: tuple[BadKind, ...] = (
    BadKind("tombstone", Reason.EMPTY_VALUE.value),
    BadKind("empty_value", Reason.EMPTY_VALUE.value),
    BadKind("too_large", Reason.TOO_LARGE.value),
    BadKind("invalid_utf8", Reason.INVALID_UTF8.value),
    BadKind("not_json", Reason.MALFORMED_JSON.value),
    BadKind("truncated_json", Reason.MALFORMED_JSON.value),
    BadKind("nan_literal", Reason.MALFORMED_JSON.value),
    BadKind("deep_nesting", Reason.MALFORMED_JSON.value),
    BadKind("not_an_object", Reason.NOT_AN_OBJECT.value),
    BadKind("duplicate_key", Reason.DUPLICATE_KEY.value),
    BadKind("missing_row_key", Reason.MISSING_OR_BAD_ROW_KEY.value),
    BadKind("bool_row_key", Reason.MISSING_OR_BAD_ROW_KEY.value),
    BadKind("float_user_id", Reason.MISSING_OR_BAD_USER_ID.value),
    BadKind("blank_user_id", Reason.MISSING_OR_BAD_USER_ID.value),
    BadKind("missing_timestamp", Reason.MISSING_OR_BAD_TIMESTAMP.value),
    BadKind("timestamp_no_zone", Reason.MISSING_OR_BAD_TIMESTAMP.value),
    BadKind("timestamp_unparseable", Reason.MISSING_OR_BAD_TIMESTAMP.value),
    BadKind("timestamp_overflow", Reason.MISSING_OR_BAD_TIMESTAMP.value),
    BadKind("empty_url", Reason.MISSING_OR_BAD_URL.value),
    BadKind("country_not_string", Reason.MISSING_OR_BAD_COUNTRY.value),
    BadKind("city_object", Reason.MISSING_OR_BAD_CITY.value),
    BadKind("browser_array", Reason.MISSING_OR_BAD_BROWSER.value),
    BadKind("os_boolean", Reason.MISSING_OR_BAD_OS.value),
    BadKind("device_number", Reason.MISSING_OR_BAD_DEVICE.value),
)
VALID = "valid"


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


# --- planning: who clicks when (vectorised) ----------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    ts_ms: np.ndarray  # int64, sorted
    user: np.ndarray  # int64
    session: np.ndarray  # int64


def default_users(events: int, start: datetime, end: datetime) -> int:
    """Enough users that the busiest one still fits its sessions (30 min apart) in the period."""
    period_s = (end - start).total_seconds()
    # A heavy user has up to ~5x the mean sessions; a session plus its gap takes ~35 minutes.
    sessions_per_user = max(0.2, min(1.6, period_s / (5 * 35 * 60)))
    return max(1, math.ceil(events / (MEAN_PAGES_PER_SESSION * sessions_per_user)))


def _dwell_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gaps between clicks of one session: log-normal, redrawn above the session gap."""
    mu = math.log(DWELL_MEDIAN_S * 1000)
    gaps = rng.lognormal(mu, DWELL_SIGMA, n)
    for _ in range(8):
        long = gaps > _MAX_INTRA_GAP_MS
        if not long.any():
            break
        gaps[long] = rng.lognormal(mu, DWELL_SIGMA, int(long.sum()))
    return np.clip(gaps.astype(np.int64), 1, _MAX_INTRA_GAP_MS)  # ≥ 1 ms: strictly ordered


def _segment_starts(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(sizes)[:-1]))


def _segment_cumsum(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each segment (segments given by their sizes)."""
    total = np.cumsum(values)
    before = np.repeat(total[_segment_starts(sizes)] - values[_segment_starts(sizes)], sizes)
    return total - before


def _plan(rng: np.random.Generator, events: int, users: int, start_ms: int, end_ms: int) -> _Plan:
    period = end_ms - start_ms
    # 1. Session sizes (1 + geometric) adding up to exactly `events`.
    sizes = rng.geometric(1 / MEAN_PAGES_PER_SESSION, events // 4 + 16)
    while sizes.sum() < events:
        sizes = np.concatenate((sizes, rng.geometric(1 / MEAN_PAGES_PER_SESSION, events // 4 + 16)))
    cut = int(np.searchsorted(np.cumsum(sizes), events))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] -= int(sizes.sum()) - events
    n_sessions = len(sizes)

    # 2. Clicks inside sessions: gap before each click (0 for the first one of a session).
    gaps = _dwell_ms(rng, events)
    gaps[_segment_starts(sizes)] = 0
    durations = np.add.reduceat(gaps, _segment_starts(sizes))
    # A very short period (minutes) cannot hold a long session: squeeze its clicks to fit.
    squeeze = np.minimum(1.0, (period - 1) / np.maximum(durations, 1))
    if (squeeze < 1.0).any():
        gaps = np.floor(gaps * np.repeat(squeeze, sizes)).astype(np.int64)
        durations = np.add.reduceat(gaps, _segment_starts(sizes))
    offsets = _segment_cumsum(gaps, sizes)

    # 3. Sessions to users: log-normal activity (capped), then load balancing so that every user's
    # sessions fit in the period with more than SESSION_GAP_MS between them.
    activity = np.minimum(rng.lognormal(0.0, 0.6, users), 3.0)
    owner = rng.choice(users, n_sessions, p=activity / activity.sum())
    owner = _fit_users(owner, durations, users, period)

    # 4. Place each user's sessions: required time, then the slack split at random (Dirichlet)
    # between the gap before each session and the time after the last one.
    order = np.lexsort((np.arange(n_sessions), owner))  # sessions grouped by user
    per_user = np.bincount(owner, minlength=users)
    busy = np.bincount(owner, weights=durations, minlength=users).astype(np.int64)
    min_gaps = np.maximum(per_user - 1, 0) * _MIN_INTER_GAP_MS
    # ≥ 0 after _fit_users; 1 ms per session kept back so that float rounding in the split
    # below can never push a user's last click onto `end`.
    slack = np.maximum(period - 1 - busy - min_gaps - per_user, 0)
    weights = rng.exponential(1.0, n_sessions)
    tail = rng.exponential(1.0, users)
    sorted_owner = owner[order]
    share = weights[order] / (np.bincount(sorted_owner, weights=weights[order], minlength=users)
                              + tail)[sorted_owner]  # fmt: skip
    extra = np.floor(share * slack[sorted_owner]).astype(np.int64)
    counts = per_user[per_user > 0]
    first = np.zeros(n_sessions, dtype=bool)
    first[_segment_starts(counts)] = True
    step = extra + np.where(first, 0, _MIN_INTER_GAP_MS)
    # Each session starts after the previous one's end: previous durations + gaps so far.
    prev_duration = np.where(first, 0, np.roll(durations[order], 1))
    starts_sorted = start_ms + _segment_cumsum(step + prev_duration, counts)
    session_start = np.empty(n_sessions, dtype=np.int64)
    session_start[order] = starts_sorted

    session_of_click = np.repeat(np.arange(n_sessions), sizes)
    ts = session_start[session_of_click] + offsets
    by_time = np.argsort(ts, kind="stable")
    return _Plan(
        ts_ms=ts[by_time],
        user=owner[session_of_click][by_time],
        session=session_of_click[by_time],
    )


def _fit_users(owner: np.ndarray, durations: np.ndarray, users: int, period: int) -> np.ndarray:
    """Move sessions away from users who cannot fit them, to the least loaded users."""
    owner = owner.copy()
    cost = durations + _MIN_INTER_GAP_MS  # a session and the gap that precedes it
    # A user's load: their sessions and the gaps between them (negative: no session yet).
    load = np.bincount(owner, weights=cost, minlength=users) - _MIN_INTER_GAP_MS
    capacity = period - 1
    over = np.flatnonzero(load > capacity)
    if len(over) == 0:
        return owner
    moved = []
    for user in over.tolist():
        mine = np.flatnonzero(owner == user).tolist()
        while load[user] > capacity:
            session = mine.pop()
            load[user] -= cost[session]
            moved.append(session)
    least_loaded = [(float(load[u]), u) for u in range(users)]
    heapq.heapify(least_loaded)
    for session in moved:
        user_load, user = heapq.heappop(least_loaded)
        user_load = durations[session] if user_load < 0 else user_load + cost[session]
        if user_load > capacity:
            raise ValueError(
                "too few users for this many events in this period (a user leaves 30 minutes "
                "between sessions): raise --users or widen the period"
            )
        owner[session] = user
        heapq.heappush(least_loaded, (float(user_load), user))
    return owner


# --- users -------------------------------------------------------------------------------------

# Joint (country, city) and (device, os, browser) tables: one vectorised draw per user attribute.
_PLACES = tuple(
    (ci, city, c.weight * w / sum(cw for _, cw in c.cities))
    for ci, c in enumerate(COUNTRIES)
    for city, w in c.cities
)
_PLACE_P = np.array([w for *_, w in _PLACES]) / sum(w for *_, w in _PLACES)
_AGENTS = tuple(
    (device, os_name, browser, dw * ow * bw)
    for device, (dw, oses) in DEVICES.items()
    for os_name, (ow, browsers) in oses.items()
    for browser, bw in browsers.items()
)
_AGENT_P_WEB = np.array([w for *_, w in _AGENTS])
_AGENT_P_WEB /= _AGENT_P_WEB.sum()
# App and legacy SDKs run on phones (85 %) and tablets: same os/browser mix within a device.
_AGENT_P_SDK = np.array(
    [w / DEVICES[d][0] * {"mobile": 0.85, "tablet": 0.15}.get(d, 0.0) for d, _, _, w in _AGENTS]
)
_AGENT_P_SDK /= _AGENT_P_SDK.sum()


@dataclass(frozen=True)
class _Population:
    """Every user's attributes, drawn at once; the strings are made on first use (_user)."""

    flavour: np.ndarray
    place: np.ndarray  # index in _PLACES, -1: no country
    agent: np.ndarray  # index in _AGENTS
    id_salt: int

    @classmethod
    def draw(cls, rng: np.random.Generator, users: int) -> _Population:
        flavour = rng.choice(3, users, p=_FLAVOUR_SHARE)
        place = rng.choice(len(_PLACES), users, p=_PLACE_P)
        place[rng.random(users) < NO_COUNTRY_SHARE] = -1
        agent = np.where(
            flavour == WEB,
            rng.choice(len(_AGENTS), users, p=_AGENT_P_WEB),
            rng.choice(len(_AGENTS), users, p=_AGENT_P_SDK),
        )
        return cls(flavour, place, agent, int(rng.integers(0, 2**32)))


class _User(NamedTuple):
    key: bytes
    flavour: int
    user_id_json: str
    user_id: str
    country: int  # index in COUNTRIES, -1 for none
    fields: tuple[tuple[str, str], ...]  # optional fields as sent: (name, JSON fragment)
    tail: str  # the same, joined: ',"country":"US",...'
    expected: tuple[str | None, ...]  # country, city, browser, os, device as a parser sees them


def _frag(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # raw UTF-8, as browsers send it


def _user(population: _Population, index: int) -> _User:
    flavour = int(population.flavour[index])
    place = int(population.place[index])
    device, os_name, browser, _ = _AGENTS[int(population.agent[index])]
    country, city = (-1, None) if place < 0 else _PLACES[place][:2]
    if flavour == LEGACY:
        user_id = str(1_000_000 + index)
        user_id_json = user_id  # a JSON integer
    else:  # a bijection of the index: distinct users, distinct ids
        user_id = f"u-{((index * 0x9E3779B1) ^ population.id_salt) & 0xFFFFFFFF:08x}"
        user_id_json = f'"{user_id}"'
    sent: list[tuple[str, str]] = []
    if country >= 0:
        sent += [("country", _frag(COUNTRIES[country].code)), ("city", _frag(city))]
    elif flavour != WEB:  # no country: web omits the fields, app sends null, legacy ""
        empty = "null" if flavour == APP else '""'
        sent += [("country", empty), ("city", empty)]
    sent.append(("browser", "null" if flavour == APP else _frag(browser)))
    sent.append(("os", _frag(os_name)))
    sent.append(("device", '""' if flavour == LEGACY else _frag(device)))
    if flavour == LEGACY:
        sent.append(("sdk_version", "3"))  # an unknown field: ignored by the parser
    return _User(
        key=user_id.encode(),
        flavour=flavour,
        user_id_json=user_id_json,
        user_id=user_id,
        country=country,
        fields=tuple(sent),
        tail="".join(f',"{name}":{value}' for name, value in sent),
        expected=(
            COUNTRIES[country].code if country >= 0 else None,
            city,
            None if flavour == APP else browser,
            os_name,
            None if flavour == LEGACY else device,
        ),
    )


_URL_P = 1.0 / np.arange(1, len(URLS) + 1) ** ZIPF_EXPONENT
_URL_P /= _URL_P.sum()
_URL_JSON = tuple(json.dumps(u) for u in URLS)
# UTC offset per country (last entry: no country → +00:00), for the app flavour's local times.
_OFFSET_TEXT = (*(c.utc_offset for c in COUNTRIES), "+00:00")
_OFFSET_MS = np.array(
    [(-1 if t[0] == "-" else 1) * (int(t[1:3]) * 60 + int(t[4:6])) * 60_000 for t in _OFFSET_TEXT]
)


# --- bad events --------------------------------------------------------------------------------


def _join(fields: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'"{name}":{value}' for name, value in fields) + "}"


def _replace(fields: list[tuple[str, str]], name: str, value: str | None) -> list[tuple[str, str]]:
    """Set (or, with None, drop) one field, keeping the order producers send."""
    if value is None:
        return [(n, v) for n, v in fields if n != name]
    if any(n == name for n, _ in fields):
        return [(n, value if n == name else v) for n, v in fields]
    return [*fields, (name, value)]


def _bad_value(kind: str, fields: list[tuple[str, str]], ts_ms: int) -> bytes | None:
    """The payload of a bad event of `kind`, built from the valid event's fields."""
    text = _join(fields)
    match kind:
        case "tombstone":
            return None
        case "empty_value":
            return b""
        case "too_large":
            return _join([*fields, ("debug", json.dumps("x" * MAX_MESSAGE_BYTES))]).encode()
        case "invalid_utf8":  # a client that encodes Latin-1
            return _join(_replace(fields, "city", '"Montréal"')).encode("latin-1", "replace")
        case "not_json":
            return "&".join(n + "=" + v.strip('"') for n, v in fields).encode()  # a form post
        case "truncated_json":
            return text[: len(text) // 2].encode()
        case "nan_literal":
            return _join([*fields, ("load_time", "NaN")]).encode()
        case "deep_nesting":
            return _join([*fields, ("ctx", "[" * 5000 + "]" * 5000)]).encode()
        case "not_an_object":
            return f"[{text}]".encode()
        case "duplicate_key":
            return _join([*fields, ("url", json.dumps(_SITE + "/other"))]).encode()
        case "missing_row_key":
            return _join(_replace(fields, "row_key", None)).encode()
        case "bool_row_key":
            return _join(_replace(fields, "row_key", "true")).encode()
        case "float_user_id":
            return _join(_replace(fields, "user_id", "12345.0")).encode()
        case "blank_user_id":
            return _join(_replace(fields, "user_id", '"  "')).encode()
        case "missing_timestamp":
            return _join(_replace(fields, "timestamp", None)).encode()
        case "timestamp_no_zone":
            naive = datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            return _join(_replace(fields, "timestamp", f'"{naive}"')).encode()
        case "timestamp_unparseable":
            day = datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%d/%m/%Y %H:%M")
            return _join(_replace(fields, "timestamp", f'"{day}"')).encode()
        case "timestamp_overflow":  # epoch nanoseconds in a milliseconds field
            return _join(_replace(fields, "timestamp", str(ts_ms * 1_000_000))).encode()
        case "empty_url":
            return _join(_replace(fields, "url", '""')).encode()
        case "country_not_string":
            return _join(_replace(fields, "country", "250")).encode()
        case "city_object":
            return _join(_replace(fields, "city", '{"name":"Paris"}')).encode()
        case "browser_array":
            return _join(_replace(fields, "browser", '["Chrome","124.0"]')).encode()
        case "os_boolean":
            return _join(_replace(fields, "os", "true")).encode()
        case "device_number":
            return _join(_replace(fields, "device", "1")).encode()
    raise ValueError(f"unknown bad kind {kind!r}")


# --- the generator -----------------------------------------------------------------------------


def _row_keys(seq: np.ndarray, prefix: str, salt: int) -> list[str]:
    """UUID-shaped keys (version 4, variant 10): per-run prefix + a bijection of the number."""
    mixed = ((seq.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(salt)) & np.uint64(
        2**62 - 1
    )  # odd multiplier and xor: a bijection on 62 bits, so keys never repeat within a run
    return [
        f"{prefix}{8 | (m >> 60):x}{(m >> 48) & 0xFFF:03x}-{m & 0xFFFFFFFFFFFF:012x}"
        for m in mixed.tolist()
    ]


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
    if events == 0:
        return
    users = users or default_users(events, start, end)
    rng = np.random.default_rng(seed)
    start_ms = round(start.timestamp() * 1000)
    end_ms = round(end.timestamp() * 1000)
    plan = _plan(rng, events, users, start_ms, end_ms)
    population = _Population.draw(rng, users)
    prefix_bits = int(rng.integers(0, 2**60))
    key_prefix = (
        f"{prefix_bits >> 28:08x}-{(prefix_bits >> 12) & 0xFFFF:04x}-4{prefix_bits & 0xFFF:03x}-"
    )
    key_salt = int(rng.integers(0, 2**62))
    known: dict[int, _User] = {}
    bad_seen = 0

    for lo in range(0, events, _CHUNK):
        hi = min(lo + _CHUNK, events)
        ts = plan.ts_ms[lo:hi]
        user_idx = plan.user[lo:hi].tolist()
        sessions = plan.session[lo:hi].tolist()
        urls = rng.choice(len(URLS), hi - lo, p=_URL_P).tolist()
        bad = (rng.random(hi - lo) < bad_fraction).tolist()
        row_keys = _row_keys(np.arange(lo, hi), key_prefix, key_salt)
        for u in dict.fromkeys(user_idx).keys() - known.keys():
            known[u] = _user(population, u)
        who_all = [known[u] for u in user_idx]
        iso_utc = np.datetime_as_string(ts.astype("datetime64[ms]"), unit="ms").tolist()
        local = ts + _OFFSET_MS[[w.country for w in who_all]]
        iso_local = np.datetime_as_string(local.astype("datetime64[ms]"), unit="ms").tolist()

        for i, ms in enumerate(ts.tolist()):
            who = who_all[i]
            if who.flavour == WEB:
                ts_json = f'"{iso_utc[i]}Z"'
            elif who.flavour == APP:
                ts_json = f'"{iso_local[i]}{_OFFSET_TEXT[who.country]}"'
            else:
                ts_json = str(ms)
            url = urls[i]
            if not bad[i]:
                value = (
                    f'{{"row_key":"{row_keys[i]}","user_id":{who.user_id_json},'
                    f'"timestamp":{ts_json},"url":{_URL_JSON[url]}{who.tail}}}'
                )
                event = Event(row_keys[i], who.user_id, ms * 1000, URLS[url], *who.expected)
                yield Message(who.key, value.encode(), VALID, None, event, user_idx[i],
                              sessions[i], ms)  # fmt: skip
                continue
            kind = BAD_KINDS[bad_seen % len(BAD_KINDS)]
            bad_seen += 1
            fields = [
                ("row_key", f'"{row_keys[i]}"'),
                ("user_id", who.user_id_json),
                ("timestamp", ts_json),
                ("url", _URL_JSON[url]),
                *who.fields,
            ]
            yield Message(who.key, _bad_value(kind.name, fields, ms), kind.name, kind.reason,
                          None, user_idx[i], sessions[i], ms)  # fmt: skip


# --- output ------------------------------------------------------------------------------------


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
        moment = _EPOCH + timedelta(microseconds=message.event.timestamp_us)
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- Kafka ------------------------------------------------------------------------------------


@dataclass
class _Stats:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # the first few, for the summary
    by_kind: Counter[str] = field(default_factory=Counter)
    first_ts: int | None = None
    last_ts: int | None = None

    def delivery_failed(self, error: object) -> None:
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(str(error))


class _KafkaSink:
    """confluent-kafka producer tuned for throughput; only failures call back into Python."""

    def __init__(self, bootstrap_servers: str, topic: str, stats: _Stats) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                # Batch up to 20 ms / 10k messages, lz4 (cheap, good on JSON), deep local queue.
                "linger.ms": 20,
                "batch.num.messages": 10_000,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 1_000_000,
                # Exactly what was generated: no duplicates or reordering on retries.
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": 120_000,
                # No per-message Python callback for successes: that is most of the cost.
                "delivery.report.only.error": True,
                "on_delivery": lambda err, _msg: stats.delivery_failed(err) if err else None,
                "error_cb": lambda err: print(f"kafka: {err}", file=sys.stderr),
            }
        )

    def produce(self, key: bytes, value: bytes | None) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key)
                return
            except BufferError:  # local queue full: serve delivery reports, let it drain
                self._producer.poll(0.05)

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout: float) -> int:
        """Wait for outstanding messages; returns how many were never acknowledged."""
        return self._producer.flush(timeout)


def _send(
    messages: Iterable[Message],
    *,
    sink: _KafkaSink | None,
    out: TextIO | None,
    rate: float | None,
    progress: Any,
    stats: _Stats,
) -> None:
    # Housekeeping (progress, poll, pacing) every `step` messages, not per message.
    step = max(1, min(4096, int(rate / 20))) if rate else 4096
    started = time.monotonic()
    for seq, message in enumerate(messages):
        if sink is not None:
            sink.produce(message.key, message.value)
        if out is not None:
            out.write(json.dumps(message_record(seq, message), ensure_ascii=False) + "\n")
        stats.by_kind[message.kind] += 1
        if stats.first_ts is None:
            stats.first_ts = message.timestamp_ms
        stats.last_ts = message.timestamp_ms  # messages come in event-time order
        stats.sent += 1
        if stats.sent % step == 0:
            progress.update(step)
            if sink is not None:
                sink.poll()
            if rate:
                ahead = stats.sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    progress.update(stats.sent % step)


# --- command line -----------------------------------------------------------------------------


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


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from clickstream_spark.config import ConfigError, load_config, with_overrides

    args = _parser().parse_args(argv)
    if args.no_kafka and args.output is None:
        raise SystemExit("--no-kafka needs --output")
    start, end = _period(args)
    try:
        messages = generate_messages(
            args.events,
            start=start,
            end=end,
            users=args.users,
            bad_fraction=args.bad_fraction,
            seed=args.seed,
        )
        first = next(messages, None)  # validates the arguments and plans before connecting
    except ValueError as exc:
        raise SystemExit(f"clickstream-generate: {exc}") from None
    stats = _Stats()
    sink = None
    if not args.no_kafka:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            raise SystemExit(f"config: {exc}") from None
        kafka = with_overrides(
            config, "kafka", bootstrap_servers=args.bootstrap_servers, topic=args.topic
        ).kafka
        sink = _KafkaSink(kafka.bootstrap_servers, kafka.topic, stats)

    started = time.monotonic()
    bar = tqdm(total=args.events, unit="ev", unit_scale=True, disable=args.no_progress)
    out = args.output.open("w", encoding="utf-8") if args.output else None
    try:
        everything = itertools.chain([first] if first else [], messages)
        _send(everything, sink=sink, out=out, rate=args.rate, progress=bar, stats=stats)
    except KeyboardInterrupt:
        print("interrupted: flushing what was produced", file=sys.stderr)
    finally:
        bar.close()
        if out is not None:
            out.close()
        if sink is not None:
            # flush() runs the failure callbacks (stats.failed += 1): read the count after it.
            unacknowledged = sink.flush(120)
            stats.failed += unacknowledged
    _summary(stats, time.monotonic() - started, start, end, sink, args)
    return 1 if stats.failed else 0


def _summary(
    stats: _Stats,
    elapsed: float,
    start: datetime,
    end: datetime,
    sink: _KafkaSink | None,
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


if __name__ == "__main__":
    sys.exit(main())
