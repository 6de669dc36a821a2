from __future__ import annotations

from pathlib import Path

import pytest

from clickstream_spark.config import ConfigError, load_config, with_overrides
from clickstream_spark.session import connector_conf


def test_defaults_come_from_conf() -> None:
    config = load_config(env={})
    assert config.kafka.topic == "clickstream_topic"
    assert config.cassandra.keyspace == "clickstream"
    assert config.elasticsearch.index == "clickstream_index"
    assert config.cassandra.password is None


def test_environment_overrides_the_file() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "CASSANDRA_HOSTS": "c1,c2",
        "ES_NODES": "https://es.example:9243",
        "CLICKSTREAM_STREAM_MAX_OFFSETS_PER_TRIGGER": "1000",
        "CLICKSTREAM_ELASTICSEARCH_WAN_ONLY": "false",
        "CASSANDRA_PASSWORD": "s3cret",
        "CASSANDRA_USERNAME": "ingest",
    }
    config = load_config(env=env)
    assert config.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert config.cassandra.hosts == "c1,c2"
    assert config.elasticsearch.url == "https://es.example:9243"
    assert config.stream.max_offsets_per_trigger == 1000
    assert config.elasticsearch.wan_only is False
    assert "s3cret" not in repr(config)  # secrets never printed
    assert connector_conf(config)["spark.cassandra.auth.password"] == "s3cret"


def test_flags_override_the_environment() -> None:
    config = load_config(env={"CLICKSTREAM_STREAM_TRIGGER_INTERVAL": "1 minute"})
    config = with_overrides(config, "stream", trigger_interval="5 seconds", checkpoint=None)
    assert config.stream.trigger_interval == "5 seconds"
    assert config.stream.checkpoint == ".state/checkpoints/stream"


def test_es_url_gets_the_configured_port() -> None:
    assert load_config(env={"ES_NODES": "es1,es2"}).elasticsearch.url == "http://es1:9200"


DEFAULTS = Path(__file__).parents[2] / "conf" / "clickstream.toml"


def setting(name: str, default: str, value: str, message: str) -> tuple[str, str, str]:
    """A case that changes the line ``name = default`` of the file to ``name = value``."""
    return f"{name} = {default}", f"{name} = {value}", message


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[aggregate]", "[nope]\nx = 1\n[aggregate]", "unknown section"),
        setting("max_offsets_per_trigger", "500000", "'many'", "expected an integer"),
        ('topic = "clickstream_topic"', 'topik = "clickstream_topic"', "unknown setting"),
        ("[cassandra]", "[cassandra]\npassword = 'x'", "is a secret"),
        ("[kafka]", "[kafka", "not valid TOML"),
        setting("topic", '"clickstream_topic"', '""', "must not be empty"),
        setting(
            "max_offsets_per_trigger",
            "500000",
            "0",
            "max_offsets_per_trigger: must be at least 1, got 0",
        ),
        setting("min_partitions", "0", "-2", "min_partitions: must be 0 .* got -2"),
    ],
)
def test_bad_config_files_are_refused_clearly(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = DEFAULTS.read_text()
    assert old in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=message):
        load_config(bad, env={})


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", env={})


def test_es_bulk_size_reaches_es_hadoop() -> None:
    assert connector_conf(load_config(env={}))["es.batch.size.entries"] == "1000"
    config = load_config(env={"CLICKSTREAM_ELASTICSEARCH_BATCH_SIZE_ENTRIES": "10"})
    assert connector_conf(config)["es.batch.size.entries"] == "10"
