"""The site and its visitors' world: URLs by popularity, countries and cities, devices, clients."""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np

ZIPF_EXPONENT = 1.1
NO_COUNTRY_SHARE = 0.04  # such users send the field missing, null or empty: all mean null

SITE = "https://shop.example.com"
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
    return tuple(SITE + path for path in head + [rest[i] for i in order])


URLS = _url_set()
URL_P = 1.0 / np.arange(1, len(URLS) + 1) ** ZIPF_EXPONENT
URL_P /= URL_P.sum()
URL_JSON = tuple(json.dumps(u) for u in URLS)


class Country(NamedTuple):
    code: str
    weight: float
    utc_offset: str  # one representative offset (DST ignored: any valid offset is an instant)
    cities: tuple[tuple[str, float], ...]


# Latin-1-encodable names on purpose (the invalid_utf8 kind re-encodes a message as Latin-1).
COUNTRIES = (
    Country("US", 0.28, "-05:00", (("New York", 4), ("Los Angeles", 3), ("Chicago", 2),
                                   ("Houston", 1.5), ("Seattle", 1))),
    Country("IN", 0.12, "+05:30", (("Mumbai", 3), ("Delhi", 3), ("Bengaluru", 2.5))),
    Country("GB", 0.08, "+00:00", (("London", 5), ("Manchester", 1.5), ("Edinburgh", 1))),
    Country("DE", 0.08, "+01:00", (("Berlin", 3), ("München", 2), ("Köln", 1.5),
                                   ("Hamburg", 1.5))),
    Country("FR", 0.06, "+01:00", (("Paris", 5), ("Lyon", 1.5), ("Marseille", 1.2))),
    Country("BR", 0.06, "-03:00", (("São Paulo", 4), ("Rio de Janeiro", 2.5),
                                   ("Belo Horizonte", 1))),
    Country("JP", 0.05, "+09:00", (("Tokyo", 5), ("Osaka", 2), ("Sapporo", 1))),
    Country("CA", 0.04, "-05:00", (("Toronto", 3), ("Montréal", 2), ("Vancouver", 2))),
    Country("ES", 0.04, "+01:00", (("Madrid", 3), ("Barcelona", 3), ("Málaga", 1))),
    Country("IT", 0.04, "+01:00", (("Roma", 3), ("Milano", 3), ("Napoli", 1.5))),
    Country("MX", 0.04, "-06:00", (("Ciudad de México", 4), ("Guadalajara", 1.5),
                                   ("Monterrey", 1.5))),
    Country("AU", 0.03, "+10:00", (("Sydney", 3), ("Melbourne", 3), ("Brisbane", 1.5))),
    Country("NL", 0.03, "+01:00", (("Amsterdam", 3), ("Rotterdam", 1.5), ("Utrecht", 1))),
    Country("PL", 0.02, "+01:00", (("Warszawa", 3), ("Kraków", 2), ("Katowice", 1))),
    Country("SE", 0.02, "+01:00", (("Stockholm", 3), ("Göteborg", 1.5), ("Malmö", 1))),
    Country("CH", 0.02, "+01:00", (("Zürich", 2), ("Genève", 1.5), ("Basel", 1))),
)  # fmt: skip

# UTC offset per country (last entry: no country → +00:00), for the app flavour's local times.
OFFSET_TEXT = (*(c.utc_offset for c in COUNTRIES), "+00:00")
OFFSET_MS = np.array(
    [(-1 if t[0] == "-" else 1) * (int(t[1:3]) * 60 + int(t[4:6])) * 60_000 for t in OFFSET_TEXT]
)

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

# Client flavours and their share of users. Web sends ISO-8601 "Z" timestamps; app the country's
# UTC offset and browser null; legacy integer user ids, epoch milliseconds, device "" and an
# unknown field.
WEB, APP, LEGACY = 0, 1, 2
FLAVOUR_SHARE = (0.75, 0.15, 0.10)
