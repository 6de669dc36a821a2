"""What the secured stack is made of, under .state/secure/ (made once by ``stackctl secure-files``
or the first ``stackctl up --secure``, then reused):

    ca.pem, ca.key             one local CA (ca.key never leaves this folder)
    certs/<server>.key, .crt   each server's PKCS#8 key and certificate chain (SAN localhost and
                               127.0.0.1), signed by the CA; certs/kafka.pem holds both for Kafka,
                               certs/cassandra.jks for Cassandra
    passwords.json             every user's password, and the servers' own key store password
    <user>.env                 the variables each user's clients need: stream.env,
                               aggregate.env, erase.env, generate.env, admin.env (mode 600)
    conf/, data/               the secured servers' configuration and data (see layout.Layout)

Users: ``admin`` (bootstrap and operators: superuser everywhere; Elasticsearch's is its built-in
``elastic``), and one per job with only what that job needs (stacklib.permissions).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from clickstream_spark.config import Config
from clickstream_spark.keystores import write_keystore
from stacklib import StackError
from stacklib.layout import Layout

OPENSSL_TIMEOUT_S = 60
CERT_DAYS = 825
SERVER_CERTS = ("kafka", "cassandra", "elasticsearch")
KAFKA_SASL_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class User:
    """One user of the secured stack: its name on each server (None: no access there)."""

    role: str  # names its env file: <role>.env
    kafka: str | None
    cassandra: str | None
    elasticsearch: str | None


ADMIN = User("admin", "admin", "admin", "elastic")
STREAM = User("stream", "clickstream_stream", "clickstream_stream", None)
AGGREGATE = User("aggregate", None, "clickstream_aggregate", "clickstream_aggregate")
ERASE = User("erase", None, "clickstream_erase", "clickstream_erase")
GENERATE = User("generate", "clickstream_generate", None, None)
USERS = (ADMIN, STREAM, AGGREGATE, ERASE, GENERATE)
# Inside the broker: the controller listener authenticates brokers by certificate (mutual TLS).
KAFKA_BROKER_PRINCIPAL = "User:CN=kafka"


@dataclass(frozen=True)
class SecureFiles:
    """Paths and passwords of the secured stack's material."""

    layout: Layout

    @property
    def root(self) -> Path:
        return self.layout.secure_dir

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    def key(self, server: str) -> Path:
        return self.root / "certs" / f"{server}.key"

    def cert(self, server: str) -> Path:
        """The server's certificate followed by the CA's: the chain it presents."""
        return self.root / "certs" / f"{server}.crt"

    @property
    def kafka_pem(self) -> Path:
        return self.root / "certs" / "kafka.pem"

    @property
    def cassandra_keystore(self) -> Path:
        return self.root / "certs" / "cassandra.jks"

    @property
    def passwords_file(self) -> Path:
        return self.root / "passwords.json"

    def env_file(self, user: User) -> Path:
        return self.root / f"{user.role}.env"

    def user_env(self, user: User) -> dict[str, str]:
        """The variables of ``user``'s env file."""
        return read_env_file(self.env_file(user))

    def password(self, user: User) -> str:
        return self._passwords()[user.role]

    @property
    def keystore_password(self) -> str:
        return self._passwords()["keystore"]

    def _passwords(self) -> dict[str, str]:
        try:
            return json.loads(self.passwords_file.read_text())
        except FileNotFoundError:
            raise StackError(
                f"{self.passwords_file} is missing: run stackctl secure-files"
            ) from None


def ensure_secure_files(layout: Layout, config: Config) -> list[str]:
    """Make whatever is missing of the CA, the certificates and the passwords, and (re)write the
    users' env files; one line per thing made."""
    files = SecureFiles(layout)
    files.root.mkdir(parents=True, exist_ok=True)
    # Other users may pass through (Elasticsearch's own user reaches its folders below), but
    # not list it; every file in it is private.
    files.root.chmod(0o711)
    (files.root / "certs").mkdir(mode=0o700, exist_ok=True)
    made = []
    if not files.ca.exists() or not files.ca_key.exists():
        _make_ca(files)
        made.append(f"a local CA ({files.ca})")
    for server in SERVER_CERTS:
        if not files.cert(server).exists() or not files.key(server).exists():
            _make_server_cert(files, server)
            made.append(f"a certificate for {server}")
    passwords = _ensure_passwords(files)
    if not files.kafka_pem.exists():
        _private_write(
            files.kafka_pem, files.key("kafka").read_text() + files.cert("kafka").read_text()
        )
    if not files.cassandra_keystore.exists():
        write_keystore(
            files.cassandra_keystore,
            files.cert("cassandra"),
            files.key("cassandra"),
            passwords["keystore"],
        )
    for user in USERS:
        _private_write(files.env_file(user), env_text(user, files, config))
    return made


def env_values(user: User, files: SecureFiles, config: Config) -> dict[str, str]:
    """The variables ``user``'s clients need for the stack of ``config``, secured."""
    password, ca = files.password(user), str(files.ca)
    values: dict[str, str] = {}
    if user.kafka:
        values |= {
            "KAFKA_BOOTSTRAP_SERVERS": config.kafka.bootstrap_servers,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": KAFKA_SASL_MECHANISM,
            "KAFKA_SASL_USERNAME": user.kafka,
            "KAFKA_SASL_PASSWORD": password,
            "KAFKA_SSL_CA_LOCATION": ca,
        }
    if user.cassandra:
        values |= {
            "CASSANDRA_HOSTS": config.cassandra.hosts,
            "CASSANDRA_USERNAME": user.cassandra,
            "CASSANDRA_PASSWORD": password,
            "CASSANDRA_SSL_CA": ca,
        }
    if user.elasticsearch:
        host = config.elasticsearch.url.split("://", 1)[-1]
        values |= {
            "ES_NODES": f"https://{host}",
            "ES_USERNAME": user.elasticsearch,
            "ES_PASSWORD": password,
            "ES_SSL_CA": ca,
        }
    return values


def env_text(user: User, files: SecureFiles, config: Config) -> str:
    lines = [
        f"# The {user.role} user of the local secured stack (stackctl up --secure).",
        f"# set -a; . {files.env_file(user)}; set +a",
        *(f"{name}={value}" for name, value in env_values(user, files, config).items()),
    ]
    return "\n".join(lines) + "\n"


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file written here (values need no shell quoting)."""
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name] = value
    return values


def _ensure_passwords(files: SecureFiles) -> dict[str, str]:
    try:
        passwords = json.loads(files.passwords_file.read_text())
    except FileNotFoundError:
        passwords = {}
    wanted = [user.role for user in USERS] + ["keystore"]
    if any(name not in passwords for name in wanted):
        # URL-safe characters only: no quoting needed in env files, JAAS, YAML or properties.
        passwords = {name: passwords.get(name) or secrets.token_urlsafe(24) for name in wanted}
        _private_write(files.passwords_file, json.dumps(passwords, indent=2) + "\n")
    return passwords


def _private_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by this user only, from the first byte on."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


def _openssl(*args: str, cwd: Path) -> None:
    try:
        done = subprocess.run(
            ["openssl", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=OPENSSL_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise StackError("openssl not found: install it (apt-get install openssl)") from None
    if done.returncode != 0:
        raise StackError(f"openssl {args[0]} failed: {done.stderr.strip()[-500:]}")


def _make_ca(files: SecureFiles) -> None:
    old_mask = os.umask(0o077)
    try:
        _openssl(
            "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-days", str(CERT_DAYS), "-subj", "/CN=clickstream local CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", str(files.ca_key), "-out", str(files.ca),
            cwd=files.root,
        )  # fmt: skip
    finally:
        os.umask(old_mask)
    files.ca.chmod(0o644)  # the CA certificate is public: every client reads it


def _make_server_cert(files: SecureFiles, server: str) -> None:
    key, cert = files.key(server), files.cert(server)
    request = key.with_suffix(".csr")
    extensions = key.with_suffix(".ext")
    extensions.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    old_mask = os.umask(0o077)
    try:
        _openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={server}",
            "-keyout", str(key), "-out", str(request), cwd=files.root,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(request), "-CA", str(files.ca),
            "-CAkey", str(files.ca_key), "-set_serial", str(secrets.randbits(63)),
            "-days", str(CERT_DAYS), "-sha256", "-extfile", str(extensions),
            "-out", str(cert), cwd=files.root,
        )  # fmt: skip
    finally:
        os.umask(old_mask)
        request.unlink(missing_ok=True)
        extensions.unlink(missing_ok=True)
    cert.write_text(cert.read_text() + files.ca.read_text())
