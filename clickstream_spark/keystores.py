"""Java key stores (JKS) written from PEM files, for the connectors that read only JVM stores.

The Cassandra connector's driver and ES-Hadoop load their CA and client certificate from a JVM
key store; users hold PEM files. This writes the JKS format directly (a documented, stable
format that every JVM reads), so that a job needs neither ``keytool`` nor ``openssl``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
import time
from pathlib import Path

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.+?)\s*-----END \1-----", re.DOTALL)
_JKS_MAGIC = 0xFEEDFEED
_JKS_VERSION = 2
_TRUSTED_CERT, _PRIVATE_KEY = 2, 1
# Sun's proprietary key protection algorithm, the one JKS private key entries use.
_KEY_PROTECTOR_OID = (1, 3, 6, 1, 4, 1, 42, 2, 17, 1, 1)


class KeystoreError(ValueError):
    """A PEM file that cannot become a key store: the message names the file."""


def pem_blocks(path: str | Path, kind: str) -> list[bytes]:
    """The DER bytes of every ``-----BEGIN <kind>-----`` block of the PEM file ``path``."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise KeystoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    blocks = [
        base64.b64decode(b"".join(body.split()))
        for label, body in _PEM_BLOCK.findall(text)
        if label.decode() == kind
    ]
    if not blocks:
        raise KeystoreError(f"{path}: no '{kind}' PEM block")
    return blocks


def write_truststore(path: Path, ca_pem: str | Path, password: str) -> Path:
    """A JKS truststore at ``path`` trusting every certificate of ``ca_pem``."""
    certificates = pem_blocks(ca_pem, "CERTIFICATE")
    entries = b"".join(
        struct.pack(">I", _TRUSTED_CERT) + _utf(f"ca-{number}") + _now_ms() + _certificate(der)
        for number, der in enumerate(certificates)
    )
    return _write(path, len(certificates), entries, password)


def write_keystore(path: Path, cert_pem: str | Path, key_pem: str | Path, password: str) -> Path:
    """A JKS key store at ``path`` holding the PKCS#8 key of ``key_pem`` (unencrypted, as
    ``openssl pkcs8 -topk8 -nocrypt`` writes it) with the certificate chain of ``cert_pem``; the
    key is protected by ``password`` too."""
    try:
        (key,) = pem_blocks(key_pem, "PRIVATE KEY")
    except KeystoreError:
        raise KeystoreError(
            f"{key_pem}: expected one unencrypted PKCS#8 key ('BEGIN PRIVATE KEY'); convert it "
            "with: openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8"
        ) from None
    chain = pem_blocks(cert_pem, "CERTIFICATE")
    entry = (
        struct.pack(">I", _PRIVATE_KEY)
        + _utf("client")
        + _now_ms()
        + _length_prefixed(_protect(key, password))
        + struct.pack(">I", len(chain))
        + b"".join(_certificate(der) for der in chain)
    )
    return _write(path, 1, entry, password)


def _write(path: Path, count: int, entries: bytes, password: str) -> Path:
    body = struct.pack(">III", _JKS_MAGIC, _JKS_VERSION, count) + entries
    digest = hashlib.sha1(_password_bytes(password) + b"Mighty Aphrodite" + body).digest()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(body + digest)
    return path


def _protect(key: bytes, password: str) -> bytes:
    """The key as an EncryptedPrivateKeyInfo of Sun's KeyProtector (SHA-1 keystream XOR)."""
    secret = _password_bytes(password)
    salt = os.urandom(20)
    stream, digest = b"", salt
    while len(stream) < len(key):
        digest = hashlib.sha1(secret + digest).digest()
        stream += digest
    encrypted = bytes(a ^ b for a, b in zip(key, stream, strict=False))
    check = hashlib.sha1(secret + key).digest()
    algorithm = _der(0x30, _der(0x06, _oid(_KEY_PROTECTOR_OID)) + _der(0x05, b""))
    return _der(0x30, algorithm + _der(0x04, salt + encrypted + check))


def _certificate(der: bytes) -> bytes:
    return _utf("X.509") + _length_prefixed(der)


def _utf(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">H", len(data)) + data


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _now_ms() -> bytes:
    return struct.pack(">Q", int(time.time() * 1000))


def _password_bytes(password: str) -> bytes:
    return password.encode("utf-16-be")


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _oid(parts: tuple[int, ...]) -> bytes:
    encoded = bytes([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.insert(0, 0x80 | (part & 0x7F))
            part >>= 7
        encoded += bytes(chunk)
    return encoded
