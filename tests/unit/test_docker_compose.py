"""docker-compose.yml stays in step with the local stack: versions, ports, topic, bootstrap files.

No Docker engine runs here, so the file is validated with `docker-compose config`, which parses
and interpolates it exactly as `docker compose up` would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from clickstream_spark.config import PROJECT_ROOT, Config
from clickstream_spark.packages import read_versions


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if shutil.which("docker") and probe.returncode == 0:
        return ["docker", "compose"]
    if os.environ.get("CI"):
        pytest.fail("docker-compose is not installed; .ci/run installs it (apt docker-compose)")
    pytest.skip("neither docker-compose nor the docker compose plugin is installed")


@pytest.fixture(scope="module")
def compose() -> dict:
    result = subprocess.run(
        [*_compose_command(), "--env-file", "conf/versions.env", "config"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_images_use_the_pinned_versions(compose: dict) -> None:
    versions = read_versions()
    services = compose["services"]
    assert services["kafka"]["image"] == f"apache/kafka:{versions['KAFKA_VERSION']}"
    assert services["cassandra"]["image"] == f"cassandra:{versions['CASSANDRA_VERSION']}"
    assert services["elasticsearch"]["image"].endswith(
        f"/elasticsearch:{versions['ELASTICSEARCH_VERSION']}"
    )


def _published_ports(service: dict) -> set[int]:
    ports = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["published"]))
        else:
            ports.add(int(str(entry).split(":")[-2]))
    return ports


def test_ports_match_the_config(compose: dict, config: Config) -> None:
    services = compose["services"]
    kafka_port = int(config.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
    assert _published_ports(services["kafka"]) == {kafka_port}
    assert _published_ports(services["cassandra"]) == {config.cassandra.port}
    assert _published_ports(services["elasticsearch"]) == {config.elasticsearch.port}


def test_bootstrap_matches_the_local_stack(compose: dict, config: Config) -> None:
    services = compose["services"]
    topic_args = services["kafka-init"]["entrypoint"]
    assert topic_args[topic_args.index("--topic") + 1] == config.kafka.topic
    assert topic_args[topic_args.index("--partitions") + 1] == str(config.kafka.partitions)
    assert any("conf/cassandra" in v for v in map(str, services["cassandra-init"]["volumes"]))
    assert any(
        "conf/elasticsearch" in v for v in map(str, services["elasticsearch-init"]["volumes"])
    )


@pytest.fixture(scope="module")
def secure_compose_text() -> str:
    result = subprocess.run(
        [
            *_compose_command(),
            *("-f", "docker-compose.yml", "-f", "docker-compose.secure.yml"),
            *("--env-file", "conf/versions.env", "config"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_secure_override_secures_each_server_on_the_same_ports(
    secure_compose_text: str, compose: dict
) -> None:
    services = yaml.safe_load(secure_compose_text)["services"]
    for name in ("kafka", "cassandra", "elasticsearch"):
        assert _published_ports(services[name]) == _published_ports(compose["services"][name])
    kafka = services["kafka"]["entrypoint"][-1]
    for setting in (
        "listeners=SASL_SSL://:9092,",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
    ):
        assert setting in kafka
    cassandra = services["cassandra"]["entrypoint"][-1]
    assert "authenticator: PasswordAuthenticator" in cassandra
    assert "optional: false" in cassandra
    es = services["elasticsearch"]["environment"]
    assert es["xpack.security.enabled"] == "true"
    assert es["xpack.security.http.ssl.enabled"] == "true"


def test_the_secure_override_holds_no_secret(secure_compose_text: str) -> None:
    """The passwords are read inside the containers from .state/secure, never interpolated."""
    passwords = PROJECT_ROOT / ".state" / "secure" / "passwords.json"
    if not passwords.exists():
        pytest.skip("no .state/secure yet (stackctl secure-files)")
    for secret in json.loads(passwords.read_text()).values():
        assert secret not in secure_compose_text
