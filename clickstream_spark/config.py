"""One typed configuration object.

Precedence, lowest first: ``conf/clickstream.toml`` (or the file named by ``--config`` /
``CLICKSTREAM_CONFIG``), then environment variables, then command-line flags (applied by the
entry points through :func:`with_overrides`). Secrets are read from the environment only (or from
the file a ``*_FILE`` variable names: mounted secrets) and never appear in ``repr``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from clickstream_spark.config_env import (
    OPTION_ENV_PREFIX,
    SECRETS,
    WELL_KNOWN_ENV,
    client_options,
    secret_from_env,
)
from clickstream_spark.errors import ConfigError

# The checkout holding conf/. spark-submit.sh sets CLICKSTREAM_HOME because the driver may import
# this package from the zip it ships to the executors, where __file__ is not a real folder.
PROJECT_ROOT = Path(os.environ.get("CLICKSTREAM_HOME") or Path(__file__).resolve().parent.parent)
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "conf" / "clickstream.toml"
# The local stack's own values (one node per server), applied over the config file by the tools
# that run against it (stack bootstrap, tests): load_config(overlay=LOCAL_STACK_CONFIG_FILE).
LOCAL_STACK_CONFIG_FILE = PROJECT_ROOT / "conf" / "local.toml"

KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}, got {value}")


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str
    topic: str
    partitions: int
    replication_factor: int
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    ssl_ca_location: str | None = None  # PEM file of the CA(s) the brokers' certificates chain to
    # The stream's consumer groups all start with this (Spark's groupIdPrefix): grant by prefix.
    group_id_prefix: str = "clickstream"
    # Further client properties: Java names for the jobs, librdkafka names for the Python tools.
    options: dict[str, str] = field(default_factory=dict, repr=False)
    librdkafka_options: dict[str, str] = field(default_factory=dict, repr=False)
    sasl_username: str | None = field(default=None, repr=False)
    sasl_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.security_protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise ConfigError(
                f"kafka.security_protocol (KAFKA_SECURITY_PROTOCOL): one of "
                f"{', '.join(KAFKA_SECURITY_PROTOCOLS)}, got {self.security_protocol!r}"
            )
        if self.uses_sasl and not self.sasl_mechanism:
            raise ConfigError(
                f"kafka.sasl_mechanism: security protocol {self.security_protocol} needs "
                "KAFKA_SASL_MECHANISM (e.g. SCRAM-SHA-512, PLAIN, OAUTHBEARER)"
            )
        credentials = (self.sasl_username and self.sasl_password) or (
            "sasl.jaas.config" in self.options or self.sasl_mechanism == "OAUTHBEARER"
        )
        if self.uses_sasl and not credentials:
            raise ConfigError(
                f"kafka: SASL {self.sasl_mechanism} needs credentials: set "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)"
            )

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")


# Consistency levels the connector takes (ANY and EACH_QUORUM are write-only in Cassandra).
WRITE_CONSISTENCY_LEVELS = (
    "ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_ONE", "LOCAL_QUORUM", "EACH_QUORUM",
)  # fmt: skip
READ_CONSISTENCY_LEVELS = ("ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_ONE", "LOCAL_QUORUM")
_DATA_CENTRE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class CassandraConfig:
    hosts: str
    port: int
    keyspace: str
    local_dc: str
    replication: str  # replication factor per data centre: "dc1:3,dc2:3"
    write_consistency: str
    read_consistency: str
    # TLS: on with `ssl = true`, or as soon as a CA or a truststore is given.
    ssl: bool = False
    ssl_ca: str | None = None  # PEM file of the CA(s) the nodes' certificates chain to
    ssl_cert: str | None = None  # PEM client certificate (chain) and its PKCS#8 key, for mutual TLS
    ssl_key: str | None = None
    ssl_truststore: str | None = None  # or a JVM truststore of one's own (JKS or PKCS#12)
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    ssl_truststore_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if bool(self.ssl_cert) != bool(self.ssl_key):
            raise ConfigError(
                "cassandra: mutual TLS needs both CASSANDRA_SSL_CERT and CASSANDRA_SSL_KEY"
            )
        self.replication_factors  # noqa: B018 (refuses a bad value at load time)
        for name, value, levels in (
            ("write_consistency", self.write_consistency, WRITE_CONSISTENCY_LEVELS),
            ("read_consistency", self.read_consistency, READ_CONSISTENCY_LEVELS),
        ):
            if value not in levels:
                raise ConfigError(
                    f"cassandra.{name}: expected one of {', '.join(levels)}, got {value!r}"
                )

    @property
    def replication_factors(self) -> dict[str, int]:
        """Data centre -> replicas, for NetworkTopologyStrategy."""
        factors: dict[str, int] = {}
        for part in self.replication.split(","):
            dc, sep, count = part.strip().partition(":")
            if not (sep and _DATA_CENTRE.fullmatch(dc) and count.strip().isdigit()):
                raise ConfigError(
                    f"cassandra.replication: expected data centre:replicas[,...] "
                    f"(e.g. dc1:3,dc2:3), got {self.replication!r}"
                )
            if int(count) < 1 or dc in factors:
                raise ConfigError(
                    f"cassandra.replication: each data centre once, with at least 1 replica, "
                    f"got {self.replication!r}"
                )
            factors[dc] = int(count)
        return factors

    @property
    def endpoints(self) -> str:
        """``host:port,...`` of the contact points, for messages."""
        return ",".join(f"{host.strip()}:{self.port}" for host in self.hosts.split(","))

    @property
    def uses_tls(self) -> bool:
        return self.ssl or bool(self.ssl_ca or self.ssl_truststore or self.ssl_cert)


@dataclass(frozen=True)
class ElasticsearchConfig:
    nodes: str
    port: int
    index: str
    wan_only: bool
    batch_size_entries: int
    number_of_replicas: int
    ssl_ca: str | None = None  # PEM file of the CA(s) the nodes' certificates chain to (https)
    ssl_truststore: str | None = None  # or a JVM truststore of one's own, for ES-Hadoop
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)  # the encoded form (base64 of id:key)
    ssl_truststore_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.api_key and self.username:
            raise ConfigError("elasticsearch: set ES_API_KEY or ES_USERNAME/ES_PASSWORD, not both")
        if self.number_of_replicas < 0:
            raise ConfigError(
                "elasticsearch.number_of_replicas: must be 0 or more, got "
                f"{self.number_of_replicas}"
            )

    @property
    def uses_tls(self) -> bool:
        return self.url.startswith("https://")

    @property
    def url(self) -> str:
        """Base URL of the first node, for admin calls (alias swap, index deletion)."""
        first = self.nodes.split(",")[0].strip()
        scheme, sep, rest = first.partition("://")
        if not sep:
            scheme, rest = "http", first
        has_port = ":" in rest.rsplit("]", 1)[-1]
        return f"{scheme}://{rest if has_port else f'{rest}:{self.port}'}"


@dataclass(frozen=True)
class SparkConfig:
    event_log_dir: str
    start_timeout_seconds: int

    def __post_init__(self) -> None:
        _check_range("spark.start_timeout_seconds", self.start_timeout_seconds, 1, 3600)


# Past these an event-time bound no longer narrows anything: accepted event times stay within
# 1970..2099 whatever they say (clickstream_spark.ingest.event_time).
MAX_EVENT_AGE_DAYS = 100_000
MAX_EVENT_LEAD_HOURS = 1_000_000
MAX_TTL_DAYS = 7300  # Cassandra's longest TTL: 20 years


@dataclass(frozen=True)
class StreamConfig:
    checkpoint: str
    trigger_interval: str
    max_offsets_per_trigger: int
    min_partitions: int
    starting_offsets: str
    query_name: str
    max_event_age_days: int
    max_event_lead_hours: int
    quarantine_ttl_days: int

    def __post_init__(self) -> None:
        _check_range("stream.max_event_age_days", self.max_event_age_days, 0, MAX_EVENT_AGE_DAYS)
        _check_range("stream.quarantine_ttl_days", self.quarantine_ttl_days, 1, MAX_TTL_DAYS)
        _check_range(
            "stream.max_event_lead_hours", self.max_event_lead_hours, 0, MAX_EVENT_LEAD_HOURS
        )
        if self.max_offsets_per_trigger < 1:
            raise ConfigError(
                f"stream.max_offsets_per_trigger: must be at least 1, got "
                f"{self.max_offsets_per_trigger}"
            )
        if self.min_partitions < 0:
            raise ConfigError(
                f"stream.min_partitions: must be 0 (one task per Kafka partition) or more, got "
                f"{self.min_partitions}"
            )


@dataclass(frozen=True)
class AggregateConfig:
    max_rows_per_pandas_call: int
    lease_seconds: int
    run_summary_file: str

    def __post_init__(self) -> None:
        if self.lease_seconds < 3:
            raise ConfigError(
                f"aggregate.lease_seconds: must be at least 3 (renewed every third), got "
                f"{self.lease_seconds}"
            )


@dataclass(frozen=True)
class MonitoringConfig:
    prometheus_address: str

    def __post_init__(self) -> None:
        if self.prometheus_address != "off":
            host, sep, port = self.prometheus_address.rpartition(":")
            if not (sep and host and port.isdigit() and int(port) < 65536):
                raise ConfigError(
                    f"monitoring.prometheus_address: expected host:port or off, got "
                    f"{self.prometheus_address!r}"
                )

    @property
    def host_port(self) -> tuple[str, int] | None:
        """(host, port) to serve on, or None when serving is off."""
        if self.prometheus_address == "off":
            return None
        host, _, port = self.prometheus_address.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class ReportConfig:
    out_dir: str
    top_countries: int
    top_urls: int


@dataclass(frozen=True)
class Config:
    kafka: KafkaConfig
    cassandra: CassandraConfig
    elasticsearch: ElasticsearchConfig
    spark: SparkConfig
    stream: StreamConfig
    aggregate: AggregateConfig
    monitoring: MonitoringConfig
    report: ReportConfig
    source: str = "defaults"

    def resolve_path(self, value: str) -> str:
        """Relative local paths in the config are relative to the project root; URIs stay."""
        if "://" in value or value.startswith("/"):
            return value
        return str(PROJECT_ROOT / value)


_SECTIONS: dict[str, type] = {
    "kafka": KafkaConfig,
    "cassandra": CassandraConfig,
    "elasticsearch": ElasticsearchConfig,
    "spark": SparkConfig,
    "stream": StreamConfig,
    "aggregate": AggregateConfig,
    "monitoring": MonitoringConfig,
    "report": ReportConfig,
}

T = TypeVar("T")


def _coerce(section: str, key: str, raw: Any, target: Any) -> Any:
    name = f"{section}.{key}"
    if target == str | None:  # optional: empty means "not set"
        return _coerce(section, key, raw, str) if str(raw).strip() else None
    if target is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}: expected a boolean, got {raw!r}")
    if target is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{name}: expected an integer, got {raw!r}")
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if target is str:
        if not isinstance(raw, str | int | float):
            raise ConfigError(f"{name}: expected a string, got {raw!r}")
        text = str(raw).strip()
        if not text:
            raise ConfigError(f"{name}: must not be empty")
        return text
    return raw


def _build_section(
    section: str, cls: type[T], values: Mapping[str, Any], env: Mapping[str, str]
) -> T:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"[{section}]: unknown setting(s) {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        raw = values.get(f.name, dataclasses.MISSING)
        if (section, f.name) in SECRETS:
            if raw is not dataclasses.MISSING:
                raise ConfigError(
                    f"{section}.{f.name} is a secret: set {SECRETS[(section, f.name)]} "
                    "in the environment, not in a config file"
                )
            kwargs[f.name] = secret_from_env(env, SECRETS[(section, f.name)])
            continue
        if (section, f.name) in OPTION_ENV_PREFIX:
            prefix = OPTION_ENV_PREFIX[(section, f.name)]
            kwargs[f.name] = client_options(section, f.name, raw, env, prefix)
            continue
        generic = f"CLICKSTREAM_{section.upper()}_{f.name.upper()}"
        if generic in env:
            raw = env[generic]
        well_known = WELL_KNOWN_ENV.get((section, f.name))
        if well_known and env.get(well_known):
            raw = env[well_known]
        if raw is dataclasses.MISSING:
            if f.default is not dataclasses.MISSING:
                continue  # an optional setting left out
            raise ConfigError(f"{section}.{f.name}: missing (no default in the config file)")
        kwargs[f.name] = _coerce(section, f.name, raw, hints[f.name])
    return cls(**kwargs)


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overlay: str | Path | None = None,
) -> Config:
    """Read the config file, then ``overlay`` (its settings replace the file's, section by
    section), then apply environment overrides.

    ``path`` defaults to ``$CLICKSTREAM_CONFIG`` and then to ``conf/clickstream.toml``.
    """
    env = os.environ if env is None else env
    file = Path(path or env.get("CLICKSTREAM_CONFIG") or DEFAULT_CONFIG_FILE)
    data = _read_toml(file)
    if overlay is not None:
        for section, values in _read_toml(Path(overlay)).items():
            data[section] = {**data.get(section, {}), **values}
    sections = {
        name: _build_section(name, cls, data.get(name, {}), env) for name, cls in _SECTIONS.items()
    }
    config = Config(**sections, source=str(file))
    _check_files(config)
    return config


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"{file}: unknown section(s) {', '.join(sorted(unknown))}")
    return data


# The files the clients read (CAs, client certificates and keys, truststores), by variable.
_FILES = (
    ("kafka", "ssl_ca_location"),
    ("cassandra", "ssl_ca"),
    ("cassandra", "ssl_cert"),
    ("cassandra", "ssl_key"),
    ("cassandra", "ssl_truststore"),
    ("elasticsearch", "ssl_ca"),
    ("elasticsearch", "ssl_truststore"),
)


def _check_files(config: Config) -> None:
    """A file named in the config must be readable now, not at the first connection."""
    for section, key in _FILES:
        path = getattr(getattr(config, section), key)
        if path is not None and not os.access(path, os.R_OK):
            name = WELL_KNOWN_ENV[(section, key)]
            problem = "not readable" if Path(path).exists() else "no such file"
            raise ConfigError(f"{section}.{key} ({name}): {path}: {problem}")


def with_overrides(config: Config, section: str, **values: Any) -> Config:
    """Apply command-line flags (``None`` means "flag not given") on top of ``config``."""
    current = getattr(config, section)
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return config
    hints = get_type_hints(type(current))
    coerced = {k: _coerce(section, k, v, hints[k]) for k, v in given.items()}
    return dataclasses.replace(config, **{section: dataclasses.replace(current, **coerced)})
