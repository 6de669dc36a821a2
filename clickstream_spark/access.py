"""Access failures (credentials, permissions, TLS trust) named the way an operator fixes them:
which server refused which user, and which setting to change.

The servers' and clients' own messages say what happened (``SaslAuthenticationException``,
``User x has no MODIFY permission on <table y>``, ``PKIX path building failed``) but not where
nor what to do; :func:`explain` puts both in front of that message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from clickstream_spark.config import Config

Store = Literal["kafka", "cassandra", "elasticsearch"]
Kind = Literal["credentials", "permission", "tls"]

_PY_CONNECT = "Unable to connect to any servers"  # the Python Cassandra driver's NoHostAvailable

# Each rule: every marker must appear in the failure's text (its whole JVM cause chain, or a
# Python client's error); the first matching rule wins. The server's own words are quoted from the
# last marker on, or where the rule's pattern finds them.
_RULES: tuple[tuple[Store, Kind, tuple[str, ...], str | None], ...] = (
    ("kafka", "credentials", ("SaslAuthenticationException",), None),
    ("kafka", "credentials", ("SASL authentication error",), None),  # librdkafka (generator)
    ("kafka", "permission", ("TopicAuthorizationException",), None),
    ("kafka", "permission", ("GroupAuthorizationException",), None),
    ("kafka", "permission", ("ClusterAuthorizationException",), None),
    ("kafka", "tls", ("SslAuthenticationException",), None),
    ("kafka", "tls", ("SSL handshake failed",), None),  # librdkafka
    ("cassandra", "credentials", ("core.auth.AuthenticationException",), None),
    ("cassandra", "permission", ("servererrors.UnauthorizedException",), None),
    # The connector's write failure quotes the server's message without its class.
    ("cassandra", "permission", ("permission on <",), r"User \S+ has no \w+ permission on <[^>]*>"),
    ("cassandra", "tls", ("com.datastax", "SSLHandshakeException"), None),
    ("cassandra", "tls", ("Cassandra", "SSLHandshakeException"), None),
    # The Python driver's, at connect: one error per contact point.
    ("cassandra", "credentials", (_PY_CONNECT, "AuthenticationFailed"), None),
    (
        "cassandra",
        "tls",
        (_PY_CONNECT, "CERTIFICATE_VERIFY_FAILED"),
        r"certificate verify failed: [^(\n']*",
    ),
    ("elasticsearch", "credentials", ("returned [401",), None),  # ES-Hadoop
    ("elasticsearch", "credentials", ("AuthenticationException(401",), None),  # Python client
    ("elasticsearch", "permission", ("returned [403",), None),
    ("elasticsearch", "permission", ("AuthorizationException(403",), None),
    ("elasticsearch", "tls", ("org.elasticsearch.hadoop", "SSLHandshakeException"), None),
    ("elasticsearch", "tls", ("CERTIFICATE_VERIFY_FAILED",), r"certificate verify failed: [^(\n]*"),
)

_NAMES = {"kafka": "Kafka", "cassandra": "Cassandra", "elasticsearch": "Elasticsearch"}
_CA_VARIABLE = {
    "kafka": "KAFKA_SSL_CA_LOCATION",
    "cassandra": "CASSANDRA_SSL_CA",
    "elasticsearch": "ES_SSL_CA",
}
PERMISSIONS_DOC = "README.md, 'Running against secured clusters'"


class AccessRefused(RuntimeError):
    """A server refuses this job's user something the job needs; the message names the server,
    the user and what to grant (found by a check before any work)."""


@dataclass(frozen=True)
class AccessProblem:
    store: Store
    kind: Kind


def classify(text: str) -> AccessProblem | None:
    """The access problem a failure's text shows, if it shows one."""
    for store, kind, markers, _ in _RULES:
        if all(marker in text for marker in markers):
            return AccessProblem(store, kind)
    return None


def _where_and_who(store: Store, config: Config) -> tuple[str, str, str]:
    """(endpoints, the user as a phrase, the variables that hold the credentials)."""
    if store == "kafka":
        kafka = config.kafka
        user = kafka.sasl_username
        variables = f"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD ({kafka.sasl_mechanism})"
        return kafka.bootstrap_servers, _user(user), variables
    if store == "cassandra":
        cassandra = config.cassandra
        variables = "CASSANDRA_USERNAME and CASSANDRA_PASSWORD"
        return cassandra.endpoints, _user(cassandra.username), variables
    es = config.elasticsearch
    who = "the API key (ES_API_KEY)" if es.api_key else _user(es.username)
    return es.url, who, "ES_USERNAME and ES_PASSWORD, or ES_API_KEY"


def _user(name: str | None) -> str:
    return f"user {name}" if name else "a client without credentials"


def describe(problem: AccessProblem, config: Config) -> str:
    """``Cassandra at host:9042 refused user x: ...`` with what to change."""
    where, who, variables = _where_and_who(problem.store, config)
    server = f"{_NAMES[problem.store]} at {where}"
    if problem.kind == "credentials":
        return f"{server} refused {who}: wrong or missing credentials (check {variables})"
    if problem.kind == "permission":
        return (
            f"{server} refused {who} a permission this job needs (grant it; each job's "
            f"permissions: {PERMISSIONS_DOC})"
        )
    return (
        f"{server}: its TLS certificate is not trusted (set {_CA_VARIABLE[problem.store]} to "
        "the PEM file of the CA that signed it)"
    )


def chain_text(exc: BaseException) -> str:
    """Everything a failure says: the Python exception and each cause of a JVM exception."""
    texts = [str(exc)]
    java = getattr(exc, "java_exception", None)
    try:
        seen = 0
        while java is not None and seen < 20:
            texts.append(str(java.toString()))
            cause = java.getCause()
            java = None if cause is None or cause == java else cause
            seen += 1
    except Exception:  # the JVM may be gone already
        pass
    if exc.__cause__ is not None and exc.__cause__ is not exc:
        texts.append(chain_text(exc.__cause__))
    return "\n".join(texts)


def evidence(text: str, anchor: str, limit: int = 300) -> str:
    """The server's or client's own words around ``anchor``: from the exception's simple class
    name to the end of its message (one line; one error of a list, when it is listed)."""
    start = text.index(anchor)
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "._$"):
        start -= 1
    words = text[start:].split("\n", 1)[0]
    closing = {"[": "]", "(": ")"}.get(text[start - 1]) if start else None
    if closing:  # one error among others: up to the end of its brackets
        words = words.split(closing, 1)[0]
    name = re.match(r"[\w.$]*", words).group()  # type: ignore[union-attr]
    words = name.rsplit(".", 1)[-1] + words[len(name) :]
    return words if len(words) <= limit else words[:limit] + "..."


def explain(exc: BaseException, config: Config) -> str | None:
    """What to fix and the server's own words, when ``exc`` is an access failure (None
    otherwise)."""
    text = chain_text(exc)
    for store, kind, markers, pattern in _RULES:
        if all(marker in text for marker in markers):
            found = re.search(pattern, text) if pattern else None
            quoted = found.group().strip() if found else evidence(text, markers[-1])
            return f"{describe(AccessProblem(store, kind), config)}: {quoted}"
    return None
