"""Users: each has a fixed place, device/os/browser and client flavour, drawn once per run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from clickstream_spark.tools.generate.world import (
    APP,
    COUNTRIES,
    DEVICES,
    FLAVOUR_SHARE,
    LEGACY,
    NO_COUNTRY_SHARE,
    WEB,
)

# Joint (country, city) and (device, os, browser) tables: one vectorised draw per user attribute.
PLACES = tuple(
    (ci, city, c.weight * w / sum(cw for _, cw in c.cities))
    for ci, c in enumerate(COUNTRIES)
    for city, w in c.cities
)
_PLACE_P = np.array([w for *_, w in PLACES]) / sum(w for *_, w in PLACES)
AGENTS = tuple(
    (device, os_name, browser, dw * ow * bw)
    for device, (dw, oses) in DEVICES.items()
    for os_name, (ow, browsers) in oses.items()
    for browser, bw in browsers.items()
)
_AGENT_P_WEB = np.array([w for *_, w in AGENTS])
_AGENT_P_WEB /= _AGENT_P_WEB.sum()
# App and legacy SDKs run on phones (85 %) and tablets: same os/browser mix within a device.
_AGENT_P_SDK = np.array(
    [w / DEVICES[d][0] * {"mobile": 0.85, "tablet": 0.15}.get(d, 0.0) for d, _, _, w in AGENTS]
)
_AGENT_P_SDK /= _AGENT_P_SDK.sum()


@dataclass(frozen=True)
class Population:
    """Every user's attributes, drawn at once; the strings are made on first use (``user``)."""

    flavour: np.ndarray
    place: np.ndarray  # index in PLACES, -1: no country
    agent: np.ndarray  # index in AGENTS
    id_salt: int

    @classmethod
    def draw(cls, rng: np.random.Generator, users: int) -> Population:
        flavour = rng.choice(3, users, p=FLAVOUR_SHARE)
        place = rng.choice(len(PLACES), users, p=_PLACE_P)
        place[rng.random(users) < NO_COUNTRY_SHARE] = -1
        agent = np.where(
            flavour == WEB,
            rng.choice(len(AGENTS), users, p=_AGENT_P_WEB),
            rng.choice(len(AGENTS), users, p=_AGENT_P_SDK),
        )
        return cls(flavour, place, agent, int(rng.integers(0, 2**32)))


class User(NamedTuple):
    key: bytes
    flavour: int
    user_id_json: str
    user_id: str
    country: int  # index in COUNTRIES, -1 for none
    fields: tuple[tuple[str, str], ...]  # optional fields as sent: (name, JSON fragment)
    tail: str  # the same, joined: ',"country":"US",...'
    expected: tuple[str | None, ...]  # country, city, browser, os, device as a parser sees them


def _fragment(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # raw UTF-8, as browsers send it


def _user_id(population: Population, index: int, flavour: int) -> tuple[str, str]:
    """The user id and its JSON form: an integer for legacy clients, else a string."""
    if flavour == LEGACY:
        user_id = str(1_000_000 + index)
        return user_id, user_id
    # A bijection of the index: distinct users, distinct ids.
    user_id = f"u-{((index * 0x9E3779B1) ^ population.id_salt) & 0xFFFFFFFF:08x}"
    return user_id, f'"{user_id}"'


def _optional_fields(
    flavour: int, country: int, city: str | None, agent: tuple[str, str, str]
) -> list[tuple[str, str]]:
    """The optional fields as this user's client sends them: (name, JSON fragment)."""
    device, os_name, browser = agent
    sent: list[tuple[str, str]] = []
    if country >= 0:
        sent += [("country", _fragment(COUNTRIES[country].code)), ("city", _fragment(city))]
    elif flavour != WEB:  # no country: web omits the fields, app sends null, legacy ""
        empty = "null" if flavour == APP else '""'
        sent += [("country", empty), ("city", empty)]
    sent.append(("browser", "null" if flavour == APP else _fragment(browser)))
    sent.append(("os", _fragment(os_name)))
    sent.append(("device", '""' if flavour == LEGACY else _fragment(device)))
    if flavour == LEGACY:
        sent.append(("sdk_version", "3"))  # an unknown field: ignored by the parser
    return sent


def user(population: Population, index: int) -> User:
    flavour = int(population.flavour[index])
    place = int(population.place[index])
    device, os_name, browser, _ = AGENTS[int(population.agent[index])]
    country, city = (-1, None) if place < 0 else PLACES[place][:2]
    user_id, user_id_json = _user_id(population, index, flavour)
    sent = _optional_fields(flavour, country, city, (device, os_name, browser))
    return User(
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
