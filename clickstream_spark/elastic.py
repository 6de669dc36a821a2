"""The one way to build the Python Elasticsearch client (index creation, alias swaps, reads)."""

from __future__ import annotations

from collections.abc import Sequence

from elasticsearch import ApiError, Elasticsearch

from clickstream_spark.access import AccessProblem, AccessRefused, describe
from clickstream_spark.config import Config, ElasticsearchConfig


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


def require_index_privileges(
    es: Elasticsearch, config: Config, names: Sequence[str], privileges: Sequence[str]
) -> None:
    """Fail at once, before any work, if Elasticsearch refuses the configured user (or a client
    without credentials) one of ``privileges`` on ``names``; a cluster without security passes."""
    es_config = config.elasticsearch
    if not (es_config.username or es_config.api_key):
        es.info()  # a secured cluster refuses a client without credentials here
        return
    try:
        answer = es.security.has_privileges(
            index=[{"names": list(names), "privileges": list(privileges)}]
        )
    except ApiError as exc:
        if exc.meta.status in (401, 403):
            raise
        return  # security is off: nothing to check
    missing = sorted({p for held in answer["index"].values() for p, ok in held.items() if not ok})
    if missing:
        refused = describe(AccessProblem("elasticsearch", "permission"), config)
        raise AccessRefused(
            f"{refused}: missing index privilege(s) {', '.join(missing)} on {', '.join(names)}"
        )
