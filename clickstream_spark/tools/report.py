"""Read the published results back from Elasticsearch, as a reader of the index would."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from elasticsearch import Elasticsearch

from clickstream_spark.config import load_config
from clickstream_spark.elastic import es_client
from clickstream_spark.windows import WINDOW_KINDS, WindowKind


def latest_window_start(es: Elasticsearch, alias: str, kind: WindowKind) -> str | None:
    """The newest window_start of ``kind`` in the alias, as Elasticsearch returns it."""
    found = es.search(
        index=alias,
        size=1,
        query={"term": {"window": kind}},
        sort=[{"window_start": "desc"}],
        source=["window_start"],
    )["hits"]["hits"]
    return found[0]["_source"]["window_start"] if found else None


def top_urls_per_country(
    es: Elasticsearch, alias: str, kind: WindowKind, start: str, per_country: int = 3
) -> dict[str, list[tuple[str, int]]]:
    """country -> its ``per_country`` URLs with the most clicks in one window."""
    hits = es.search(
        index=alias,
        size=10_000,
        query={"bool": {"filter": [{"term": {"window": kind}}, {"term": {"window_start": start}}]}},
        sort=[{"clicks": "desc"}, {"url": "asc"}],
        source=["country", "url", "clicks"],
    )["hits"]["hits"]
    top: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for hit in hits:
        doc = hit["_source"]
        if len(top[doc["country"]]) < per_country:
            top[doc["country"]].append((doc["url"], doc["clicks"]))
    return dict(top)


def top_landing_pages(
    es: Elasticsearch, alias: str, kind: WindowKind, start: str, size: int = 10
) -> list[tuple[str, int, float | None]]:
    """(url, entrances, bounce rate) of the ``size`` URLs where most visits of one window began,
    all countries together: the bounce rate is the URL's bounces / its entrances."""
    window = {"bool": {"filter": [{"term": {"window": kind}}, {"term": {"window_start": start}}]}}
    found = es.search(
        index=alias,
        size=0,
        query=window,
        aggs={
            "urls": {
                "terms": {
                    "field": "url",
                    "size": size,
                    "order": [{"entrances": "desc"}, {"_key": "asc"}],
                },
                "aggs": {
                    "entrances": {"sum": {"field": "entrances"}},
                    "bounces": {"sum": {"field": "bounces"}},
                },
            }
        },
    )["aggregations"]["urls"]["buckets"]
    pages = []
    for bucket in found:
        entrances, bounces = int(bucket["entrances"]["value"]), int(bucket["bounces"]["value"])
        if entrances:
            pages.append((bucket["key"], entrances, bounces / entrances))
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clickstream_spark.tools.report",
        description=(
            "Print the top URLs per country of the latest window in clickstream_index, and its top "
            "landing pages by entrances with their bounce rate."
        ),
    )
    parser.add_argument("--window", dest="kind", choices=WINDOW_KINDS, default="day")
    parser.add_argument("--per-country", type=int, default=3)
    parser.add_argument("--countries", type=int, default=8, help="how many countries to show")
    parser.add_argument(
        "--landing-pages", type=int, default=10, help="how many landing pages to show"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    config = load_config()
    alias = config.elasticsearch.index
    with es_client(config.elasticsearch, request_timeout=30) as es:
        start = latest_window_start(es, alias, args.kind)
        if start is None:
            print(f"{alias}: no {args.kind} results yet")
            return 1
        top = top_urls_per_country(es, alias, args.kind, start, args.per_country)
        landing = top_landing_pages(es, alias, args.kind, start, args.landing_pages)
    print(f"top URLs per country, {args.kind} window starting {start} (from {alias}):")
    by_traffic = sorted(top.items(), key=lambda item: -sum(c for _, c in item[1]))
    for country, urls in by_traffic[: args.countries]:
        print(f"  {country}")
        for url, clicks in urls:
            print(f"    {clicks:>8}  {url}")
    print(
        f"top {len(landing)} landing pages by entrances (visits that began there), all countries:"
    )
    print(f"  {'entrances':>10}  {'bounce rate':>11}  url")
    for url, entrances, bounce_rate in landing:
        print(f"  {entrances:>10}  {bounce_rate:>11.1%}  {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
