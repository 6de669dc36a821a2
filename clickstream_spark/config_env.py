"""Which environment variables feed which settings, and how secrets are read from them.

Secrets come from the environment only, or from the file a ``*_FILE`` variable names (a mounted
secret); client properties that carry one are refused in a config file.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clickstream_spark.errors import ConfigError

# Well-known names users already export on their clusters; they win over the generic
# CLICKSTREAM_<SECTION>_<KEY> form.
WELL_KNOWN_ENV = {
    ("kafka", "bootstrap_servers"): "KAFKA_BOOTSTRAP_SERVERS",
    ("kafka", "security_protocol"): "KAFKA_SECURITY_PROTOCOL",
    ("kafka", "sasl_mechanism"): "KAFKA_SASL_MECHANISM",
    ("kafka", "ssl_ca_location"): "KAFKA_SSL_CA_LOCATION",
    ("cassandra", "hosts"): "CASSANDRA_HOSTS",
    ("cassandra", "ssl_ca"): "CASSANDRA_SSL_CA",
    ("cassandra", "ssl_cert"): "CASSANDRA_SSL_CERT",
    ("cassandra", "ssl_key"): "CASSANDRA_SSL_KEY",
    ("cassandra", "ssl_truststore"): "CASSANDRA_SSL_TRUSTSTORE",
    ("elasticsearch", "nodes"): "ES_NODES",
    ("elasticsearch", "ssl_ca"): "ES_SSL_CA",
    ("elasticsearch", "ssl_truststore"): "ES_SSL_TRUSTSTORE",
}
# Extra client properties from the environment (secret-bearing ones may come only from here):
# KAFKA_OPTION_SASL_JAAS_CONFIG sets sasl.jaas.config of [kafka.options].
OPTION_ENV_PREFIX = {
    ("kafka", "options"): "KAFKA_OPTION_",
    ("kafka", "librdkafka_options"): "KAFKA_LIBRDKAFKA_OPTION_",
}
# Client properties that carry a secret: refused in the config file.
_SECRET_OPTION = re.compile(r"(?i)password|secret|jaas|token|credential|\.key$")
SECRETS = {
    ("kafka", "sasl_username"): "KAFKA_SASL_USERNAME",
    ("kafka", "sasl_password"): "KAFKA_SASL_PASSWORD",
    ("cassandra", "username"): "CASSANDRA_USERNAME",
    ("cassandra", "password"): "CASSANDRA_PASSWORD",
    ("cassandra", "ssl_truststore_password"): "CASSANDRA_SSL_TRUSTSTORE_PASSWORD",
    ("elasticsearch", "username"): "ES_USERNAME",
    ("elasticsearch", "password"): "ES_PASSWORD",
    ("elasticsearch", "api_key"): "ES_API_KEY",
    ("elasticsearch", "ssl_truststore_password"): "ES_SSL_TRUSTSTORE_PASSWORD",
}


def secret_from_env(env: Mapping[str, str], variable: str) -> str | None:
    """``$variable``, or the content of the file ``$variable_FILE`` names (a mounted secret)."""
    file_variable = f"{variable}_FILE"
    if env.get(variable) and env.get(file_variable):
        raise ConfigError(f"set {variable} or {file_variable}, not both")
    if not env.get(file_variable):
        return env.get(variable) or None
    try:
        text = Path(env[file_variable]).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file_variable}: cannot read {env[file_variable]}: {exc}") from None
    return text.rstrip("\r\n") or None


def client_options(
    section: str, key: str, raw: Any, env: Mapping[str, str], prefix: str
) -> dict[str, str]:
    """Client properties of ``[section.key]``, then ``<prefix><PROPERTY>`` variables (dots as
    underscores), which may carry secrets and also come from ``*_FILE`` files."""
    if raw is dataclasses.MISSING:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}.{key}]: expected a table of client properties")
    options = {}
    for name, value in raw.items():
        if _SECRET_OPTION.search(name):
            variable = prefix + name.upper().replace(".", "_")
            raise ConfigError(
                f"[{section}.{key}] {name} carries a secret: set {variable} in the environment, "
                "not in a config file"
            )
        if isinstance(value, dict | list):
            raise ConfigError(f"[{section}.{key}] {name}: expected a value, got {value!r}")
        options[name] = str(value).lower() if isinstance(value, bool) else str(value)
    for variable in sorted(env):
        if variable.startswith(prefix):
            name = variable.removesuffix("_FILE")
            value = secret_from_env(env, name)
            if value is not None:
                options[name.removeprefix(prefix).lower().replace("_", ".")] = value
    return options
