"""One typed configuration object.

Precedence, lowest first: ``conf/clickstream.toml`` (or the file named by ``--config`` /
``CLICKSTREAM_CONFIG``), then environment variables, then command-line flags (applied by the
entry points through :func:`with_overrides`). Secrets are read from the environment only and never
appear in ``repr``.
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

# The checkout holding conf/. spark-submit.sh sets CLICKSTREAM_HOME because the driver may import
# this package from the zip it ships to the executors, where __file__ is not a real folder.
PROJECT_ROOT = Path(os.environ.get("CLICKSTREAM_HOME") or Path(__file__).resolve().parent.parent)
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "conf" / "clickstream.toml"
# The local stack's own values (one node per server), applied over the config file by the tools
# that run against it (stack bootstrap, tests): load_config(overlay=LOCAL_STACK_CONFIG_FILE).
LOCAL_STACK_CONFIG_FILE = PROJECT_ROOT / "conf" / "local.toml"

# Well-known names users already export on their clusters; they win over the generic
# CLICKSTREAM_<SECTION>_<KEY> form.
ENDPOINT_ENV = {
    ("kafka", "bootstrap_servers"): "KAFKA_BOOTSTRAP_SERVERS",
    ("cassandra", "hosts"): "CASSANDRA_HOSTS",
    ("elasticsearch", "nodes"): "ES_NODES",
}


class ConfigError(ValueError):
    """Bad configuration: the message names the setting and what is wrong with it."""


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}, got {value}")


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str
    topic: str
    partitions: int
    replication_factor: int


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
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
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


@dataclass(frozen=True)
class ElasticsearchConfig:
    nodes: str
    port: int
    index: str
    wan_only: bool
    batch_size_entries: int
    number_of_replicas: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.number_of_replicas < 0:
            raise ConfigError(
                "elasticsearch.number_of_replicas: must be 0 or more, got "
                f"{self.number_of_replicas}"
            )

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

    def __post_init__(self) -> None:
        _check_range("stream.max_event_age_days", self.max_event_age_days, 0, MAX_EVENT_AGE_DAYS)
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
_SECRETS = {
    ("cassandra", "username"): "CASSANDRA_USERNAME",
    ("cassandra", "password"): "CASSANDRA_PASSWORD",
    ("elasticsearch", "username"): "ES_USERNAME",
    ("elasticsearch", "password"): "ES_PASSWORD",
}

T = TypeVar("T")


def _coerce(section: str, key: str, raw: Any, target: Any) -> Any:
    name = f"{section}.{key}"
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
        if (section, f.name) in _SECRETS:
            if f.name in values:
                raise ConfigError(
                    f"{section}.{f.name} is a secret: set {_SECRETS[(section, f.name)]} "
                    "in the environment, not in a config file"
                )
            kwargs[f.name] = env.get(_SECRETS[(section, f.name)]) or None
            continue
        raw = values.get(f.name, dataclasses.MISSING)
        generic = f"CLICKSTREAM_{section.upper()}_{f.name.upper()}"
        if generic in env:
            raw = env[generic]
        well_known = ENDPOINT_ENV.get((section, f.name))
        if well_known and env.get(well_known):
            raw = env[well_known]
        if raw is dataclasses.MISSING:
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
    return Config(**sections, source=str(file))


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


def with_overrides(config: Config, section: str, **values: Any) -> Config:
    """Apply command-line flags (``None`` means "flag not given") on top of ``config``."""
    current = getattr(config, section)
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return config
    hints = get_type_hints(type(current))
    coerced = {k: _coerce(section, k, v, hints[k]) for k, v in given.items()}
    return dataclasses.replace(config, **{section: dataclasses.replace(current, **coerced)})
