"""The three servers of the local stack: how each is configured, launched and found ready.

Each :class:`Server` renders its configuration from conf/stack/<server>/ into .state/, builds the
``java`` command line of its process, and answers "ready?" with the check its clients depend on.
Starting, stopping and waiting are generic (see :mod:`stacklib.lifecycle`).
"""

from __future__ import annotations

import base64
import os
import shutil
import ssl
import subprocess
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from stacklib import StackError
from stacklib.accounts import (
    Account,
    give_tree,
    give_tree_if_needed,
    require_traversable,
    service_account,
)
from stacklib.java import Java
from stacklib.layout import Layout, render_template
from stacklib.probes import DEFAULT_SUPERUSER, cql_answers, http_json
from stacklib.procs import Process, port_accepts
from stacklib.secure import ADMIN, KAFKA_BROKER_PRINCIPAL, KAFKA_SASL_MECHANISM, USERS, SecureFiles

LOOPBACK = "127.0.0.1"


class Server(ABC):
    """One server of the stack: its ports, files, command line and readiness check."""

    name: ClassVar[str]
    port: ClassVar[int]  # the client port, the one `status` shows
    other_ports: ClassVar[tuple[int, ...]] = ()
    ready_timeout_s: ClassVar[float]
    # JVM heap: the maximum bounds the stack's memory (it and one Spark job must fit in 6 GiB);
    # a smaller initial heap keeps an idle stack's resident memory low.
    heap_max: ClassVar[str]
    heap_initial: ClassVar[str]

    def __init__(self, layout: Layout, java: Java | None = None) -> None:
        self.layout = layout
        self._java = java

    @property
    def java(self) -> Java:
        if self._java is None:
            raise RuntimeError(f"{self.name}: java is needed to start it")
        return self._java

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, *self.other_ports)

    @property
    def dist(self) -> Path:
        return self.layout.dist(self.name)

    @property
    def conf(self) -> Path:
        return self.layout.rendered_conf(self.name)

    @property
    def data(self) -> Path:
        return self.layout.data(self.name)

    @property
    def log_file(self) -> Path:
        return self.layout.log_file(self.name)

    def owns(self, process: Process) -> bool:
        """True if ``process`` runs from this checkout's copy of this server."""
        return any(f"{self.dist}{end}" in f"{process.cmdline} " for end in ("/", " "))

    def account(self) -> Account | None:
        """The user the server runs as; None for the current user."""
        return None

    def working_dir(self) -> Path:
        return self.data

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def render(self, template: str, values: dict[str, object], into: Path | None = None) -> Path:
        destination = (into or self.conf) / template
        render_template(self.layout.conf_template(self.name, template), destination, values)
        return destination

    def append_security(self, config: Path, fragment: str, values: dict[str, object]) -> None:
        """Append the secured stack's settings (``fragment``) to a rendered ``config``, which
        then holds secrets: only its owner may read it."""
        template = self.layout.conf_template(self.name, fragment)
        render_template(template, config, values, append=True)
        config.chmod(0o600)

    @property
    def secure_files(self) -> SecureFiles:
        return SecureFiles(self.layout)

    @abstractmethod
    def prepare(self) -> None:
        """Write the configuration and do one-time initialisation (before every start)."""

    @abstractmethod
    def command(self) -> list[str]:
        """The server's command line."""

    @abstractmethod
    def is_ready(self, log_since: int) -> bool:
        """True once clients can use the server (``log_since``: offset of this start's log)."""

    def _log_contains(self, text: str, since: int) -> bool:
        try:
            with self.log_file.open("rb") as log:
                log.seek(since)
                return text.encode() in log.read()
        except FileNotFoundError:
            return False


class Kafka(Server):
    """A single KRaft node, broker and controller in one process, from the Maven jars."""

    name = "kafka"
    port = 9092
    other_ports = (9093,)  # the KRaft controller
    ready_timeout_s = 120
    heap_max = "512m"
    heap_initial = "128m"

    def prepare(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.render("log4j2.properties", {})
        secure = self.layout.secure
        config = self.render(
            "server.properties",
            {
                "PORT": self.port,
                "CONTROLLER_PORT": self.other_ports[0],
                "DATA_DIR": self.data,
                # Secured: SASL over TLS for clients, TLS with client certificates between the
                # broker and its controller.
                "CLIENT_PROTOCOL": "SASL_SSL" if secure else "PLAINTEXT",
                "CONTROLLER_PROTOCOL": "SSL" if secure else "PLAINTEXT",
            },
        )
        if secure:
            files = self.secure_files
            self.append_security(
                config,
                "security.properties",
                {
                    "ADMIN_USER": ADMIN.kafka,
                    "ADMIN_PASSWORD": files.password(ADMIN),
                    "KEYSTORE": files.kafka_pem,
                    "CA": files.ca,
                    "BROKER_PRINCIPAL": KAFKA_BROKER_PRINCIPAL,
                },
            )
        if not (self.data / "meta.properties").exists():
            self._format_storage()

    def command(self) -> list[str]:
        return [
            self.java.java, f"-Xms{self.heap_initial}", f"-Xmx{self.heap_max}",
            # The GC settings of Kafka's own kafka-run-class.sh.
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
            *self._classpath_and_logging(),
            "kafka.Kafka", str(self.conf / "server.properties"),
        ]  # fmt: skip

    def is_ready(self, log_since: int) -> bool:
        # The port opens a little before the broker serves requests; the log line comes last.
        return port_accepts(self.port) and self._log_contains("Kafka Server started", log_since)

    def _classpath_and_logging(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={self.conf / 'log4j2.properties'}",
            "-cp", str(self.dist / "lib" / "*"),
        ]  # fmt: skip

    def _format_storage(self) -> None:
        """KRaft storage is formatted once, with a new cluster id, before the first start."""
        command = [
            self.java.java, *self._classpath_and_logging(), "kafka.tools.StorageTool", "format",
            "--cluster-id", _kafka_cluster_id(), "--config", str(self.conf / "server.properties"),
            "--standalone", *self._scram_users(),
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            try:
                result = subprocess.run(
                    command, stdout=log, stderr=subprocess.STDOUT, timeout=120, check=False
                )
            except subprocess.TimeoutExpired:
                raise StackError("kafka storage format did not finish within 120 s") from None
        if result.returncode != 0:
            raise StackError(f"kafka storage format failed: see {self.log_file}")

    def _scram_users(self) -> list[str]:
        """Secured: every user's SCRAM credential, written into the metadata at format time
        (KRaft has no other way to create the first one)."""
        if not self.layout.secure:
            return []
        files = self.secure_files
        return [
            arg
            for user in USERS
            if user.kafka
            for arg in (
                "--add-scram",
                f"{KAFKA_SASL_MECHANISM}=[name={user.kafka},password={files.password(user)}]",
            )
        ]


def _kafka_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 (as StorageTool random-uuid)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka rejects ids that look like command-line flags
            return text


class Cassandra(Server):
    """A single Cassandra node from the Maven jars, tuned to start in seconds."""

    name = "cassandra"
    port = 9042
    other_ports = (7000, 7199)  # storage (gossip), JMX
    ready_timeout_s = 180
    heap_max = "768m"
    heap_initial = "256m"

    def prepare(self) -> None:
        for folder in ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "triggers"):
            (self.data / folder).mkdir(parents=True, exist_ok=True)
        self._cassandra_logs.mkdir(parents=True, exist_ok=True)
        self.render("logback.xml", {})
        config = self.render(
            "cassandra.yaml",
            {"PORT": self.port, "STORAGE_PORT": self.other_ports[0], "DATA_DIR": self.data},
        )
        if self.layout.secure:
            files = self.secure_files
            self.append_security(
                config,
                "security.yaml",
                {
                    "KEYSTORE": files.cassandra_keystore,
                    "KEYSTORE_PASSWORD": files.keystore_password,
                },
            )

    def command(self) -> list[str]:
        jvm_options = self.layout.conf_template(self.name, f"jvm{self.java.major}-server.options")
        if not jvm_options.exists():
            raise StackError(f"no Cassandra JVM options for Java {self.java.major}: {jvm_options}")
        return [
            self.java.java, f"-Xms{self.heap_initial}", f"-Xmx{self.heap_max}", f"@{jvm_options}",
            f"-javaagent:{self._jamm_jar()}",
            f"-XX:HeapDumpPath={self._cassandra_logs}",
            f"-Dcassandra.config=file://{self.conf / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile={self.conf / 'logback.xml'}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.storagedir={self.data}",
            f"-Dcassandra.logdir={self._cassandra_logs}",
            f"-Dcassandra.triggers_dir={self.data / 'triggers'}",
            f"-Dcassandra.jmx.local.port={self.other_ports[1]}",
            # A single local node has no ring to wait for: start in seconds, not in a minute.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=1000",
            "-Dcassandra.initial_token_allocation_wait_ms=0",
            "-Dcassandra.memtable.row_overhead_size=180",
            # Secured: the default superuser exists at once, for bootstrap to replace it.
            *(["-Dcassandra.superuser_setup_delay_ms=0"] if self.layout.secure else []),
            "-cp", str(self.dist / "lib" / "*"),
            "org.apache.cassandra.service.CassandraDaemon",
        ]  # fmt: skip

    def is_ready(self, log_since: int) -> bool:
        if not port_accepts(self.port):
            return False
        if not self.layout.secure:
            return cql_answers(LOOPBACK, self.port)
        # Secured: the admin once bootstrap made it, the default superuser before.
        files = self.secure_files
        context = ssl.create_default_context(cafile=files.ca)
        return any(
            cql_answers(LOOPBACK, self.port, credentials, context)
            for credentials in ((ADMIN.cassandra, files.password(ADMIN)), DEFAULT_SUPERUSER)
        )

    @property
    def _cassandra_logs(self) -> Path:
        """Cassandra's own files (heap dumps, audit logs); its console goes to cassandra.log."""
        return self.layout.logs / self.name

    def _jamm_jar(self) -> Path:
        jars = sorted((self.dist / "lib").glob("jamm-*.jar"))
        if not jars:
            raise StackError(f"no jamm jar in {self.dist / 'lib'}: run stackctl fetch")
        return jars[-1]


class Elasticsearch(Server):
    """The integ-test-zip distribution plus the root module, run by its own launcher script."""

    name = "elasticsearch"
    port = 9200
    other_ports = (9300,)  # transport
    ready_timeout_s = 180
    heap_max = "512m"
    heap_initial = "128m"
    USER = "elasticsearch"

    def account(self) -> Account | None:
        return service_account(self.USER)

    def working_dir(self) -> Path:
        return self._es_logs  # the JVM writes gc.log into its working directory

    @property
    def config_dir(self) -> Path:
        """ES_PATH_CONF. The plaintext stack's configuration lives in the distribution (where
        Elasticsearch writes its keystore); the secured stack's in a copy of its own, with its
        certificates and a keystore holding the superuser's bootstrap password."""
        return self.conf if self.layout.secure else self.dist / "config"

    def prepare(self) -> None:
        account = self.account()
        require_traversable(self.dist, account)
        secure = self.layout.secure
        for folder in (self.data, self._es_logs, self._tmp, self.config_dir):
            folder.mkdir(parents=True, exist_ok=True)
            give_tree_if_needed(folder, account)
        if secure:
            self._prepare_secure_config(account)
        config = self.render(
            "elasticsearch.yml",
            {
                "PORT": self.port,
                "TRANSPORT_PORT": self.other_ports[0],
                "DATA_DIR": self.data,
                "LOGS_DIR": self._es_logs,
                "SECURITY_ENABLED": str(secure).lower(),
            },
            into=self.config_dir,
        )
        if secure:
            self.append_security(config, "security.yml", {})
        if account is not None:
            os.chown(config, account.uid, account.gid)

    def _prepare_secure_config(self, account: Account | None) -> None:
        """The distribution's other config files, the certificates, and once the keystore."""
        shipped = self.dist / "config"
        for item in shipped.iterdir():
            target = self.config_dir / item.name
            if item.name in ("elasticsearch.yml", "elasticsearch.keystore") or target.exists():
                continue
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
        files = self.secure_files
        certs = self.config_dir / "certs"
        certs.mkdir(mode=0o700, exist_ok=True)
        for source, name in (
            (files.ca, "ca.pem"),
            (files.key(self.name), "elasticsearch.key"),
            (files.cert(self.name), "elasticsearch.crt"),
        ):
            shutil.copyfile(source, certs / name)
            (certs / name).chmod(0o600)
        give_tree(self.config_dir, account)
        if not (self.config_dir / "elasticsearch.keystore").exists():
            self._keystore_command("create")
            self._keystore_command("add", "-x", "bootstrap.password", stdin=files.password(ADMIN))

    def _keystore_command(self, *args: str, stdin: str = "") -> None:
        account = self.account()
        done = subprocess.run(
            [str(self.dist / "bin" / "elasticsearch-keystore"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.environment(),
            cwd=self._tmp,
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=[] if account else None,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines()
            raise StackError(f"elasticsearch-keystore {args[0]} failed: {output[-1:]}")

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "ES_JAVA_HOME": str(self.java.home),
            "ES_PATH_CONF": str(self.config_dir),
            "ES_TMPDIR": str(self._tmp),
            # Elasticsearch pre-touches its whole heap by default: -AlwaysPreTouch lets an idle
            # node stay small (bootstrap checks are warnings only on loopback).
            "ES_JAVA_OPTS": f"-Xms{self.heap_initial} -Xmx{self.heap_max} -XX:-AlwaysPreTouch",
            "HOME": str(self.data),
        }

    def command(self) -> list[str]:
        return [str(self.dist / "bin" / "elasticsearch")]

    def is_ready(self, log_since: int) -> bool:
        if not port_accepts(self.port):
            return False
        options = self._client_options()
        health = http_json(
            f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s", **options
        )
        root = http_json(f"{self.url}/", **options)
        return bool(health and health.get("status") in ("yellow", "green") and root)

    @property
    def url(self) -> str:
        return f"{'https' if self.layout.secure else 'http'}://{LOOPBACK}:{self.port}"

    def _client_options(self) -> dict:
        """Secured: the local CA and the superuser's credentials."""
        if not self.layout.secure:
            return {}
        files = self.secure_files
        token = base64.b64encode(f"{ADMIN.elasticsearch}:{files.password(ADMIN)}".encode())
        return {
            "context": ssl.create_default_context(cafile=files.ca),
            "headers": {"Authorization": f"Basic {token.decode()}"},
        }

    @property
    def _es_logs(self) -> Path:
        """Elasticsearch's own log files (JSON logs, gc.log); its console goes to the .log."""
        return self.layout.logs / self.name

    @property
    def _tmp(self) -> Path:
        return self.layout.tmp(self.name)


SERVER_CLASSES: tuple[type[Server], ...] = (Kafka, Cassandra, Elasticsearch)
SERVER_NAMES = tuple(cls.name for cls in SERVER_CLASSES)


def make_servers(names: list[str], layout: Layout, java: Java | None = None) -> list[Server]:
    """The servers called ``names`` (all if empty), in the stack's order."""
    wanted = set(names) or set(SERVER_NAMES)
    return [cls(layout, java) for cls in SERVER_CLASSES if cls.name in wanted]
