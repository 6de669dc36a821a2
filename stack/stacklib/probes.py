"""Readiness probes: does a server answer what its clients ask (a CQL query, an HTTP GET)?"""

from __future__ import annotations

import json
import logging
import ssl
import urllib.error
import urllib.request

# What a fresh node with PasswordAuthenticator accepts until bootstrap replaces it.
DEFAULT_SUPERUSER = ("cassandra", "cassandra")


def cql_answers(
    host: str,
    port: int,
    credentials: tuple[str | None, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> bool:
    """True if the node runs a CQL query (the port opens before the node serves queries)."""
    from cassandra.auth import PlainTextAuthProvider  # slow import: only when needed
    from cassandra.cluster import Cluster
    from cassandra.policies import RoundRobinPolicy

    logging.getLogger("cassandra").setLevel(logging.CRITICAL)  # expected failures while starting
    cluster = Cluster(
        [host],
        port=port,
        connect_timeout=3,
        control_connection_timeout=3,
        load_balancing_policy=RoundRobinPolicy(),
        auth_provider=PlainTextAuthProvider(*credentials) if credentials else None,
        ssl_context=context,
    )
    try:
        session = cluster.connect()
        session.execute("SELECT release_version FROM system.local", timeout=5)
        return True
    except Exception:  # NoHostAvailable, timeouts, a node still bootstrapping: "not yet"
        return False
    finally:
        cluster.shutdown()


def http_json(
    url: str,
    timeout_s: float = 5,
    context: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
) -> dict | None:
    """The JSON object answered with a 2xx by ``url``, or None on any failure."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            return json.loads(response.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError):
        return None
