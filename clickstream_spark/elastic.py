"""The one way to build the Python Elasticsearch client (index creation, alias swaps, reads)."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from clickstream_spark.config import ElasticsearchConfig


def es_client(es: ElasticsearchConfig, request_timeout: float = 60) -> Elasticsearch:
    """A client of the first configured node, with the configured credentials (user and
    password, or API key) and CA; certificates and host names are always verified."""
    auth = (es.username, es.password or "") if es.username else None
    return Elasticsearch(
        es.url,
        basic_auth=auth,
        api_key=es.api_key,
        ca_certs=es.ssl_ca if es.uses_tls else None,
        request_timeout=request_timeout,
    )
