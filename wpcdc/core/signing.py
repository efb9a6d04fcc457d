"""Signed records: an HMAC-SHA256 of each record's key and value, in a header.

This module owns what is signed and how the signature is written, for the
producer side (:class:`Signer`) and for consumers (:func:`verify`, used by
``wpcdc tail``; the README shows the same check in a few lines of Python and
Node).

The signed bytes are::

    len(key) as 4 bytes, unsigned big-endian  ||  key  ||  value

(an absent key counts as empty). The length prefix makes the split between key
and value unambiguous: moving bytes from one to the other changes the signed
bytes. The record carries one header::

    wpcdc-signature: <key id>:<hex of HMAC-SHA256(secret of key id, signed bytes)>

The key id names the secret, so keys can rotate: sign with a new key id while
consumers still hold the old secrets for the records already on the topic.
Other headers (content type, ``ce_type``) are not signed: they only repeat
what the signed value says. Pure: no I/O; secrets come in as bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

SIGNATURE_HEADER: Final = "wpcdc-signature"
_DIGEST_HEX_LENGTH: Final = 64


def signed_bytes(key: bytes | None, value: bytes) -> bytes:
    """The bytes the signature covers (see the module docstring)."""
    key = key or b""
    return len(key).to_bytes(4, "big") + key + value


def signature(secret: bytes, key: bytes | None, value: bytes) -> str:
    """The hex HMAC-SHA256 of the record's signed bytes."""
    return hmac.new(secret, signed_bytes(key, value), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Signer:
    """Signs records with the active key: ``key_id`` names ``secret``."""

    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if not self.key_id or ":" in self.key_id:
            raise ValueError(f"a key id must be non-empty and without ':', got {self.key_id!r}")

    def header(self, key: bytes | None, value: bytes) -> tuple[str, bytes]:
        """The signature header of the record with ``key`` and ``value``."""
        return SIGNATURE_HEADER, f"{self.key_id}:{signature(self.secret, key, value)}".encode()

    def placeholder(self) -> tuple[str, bytes]:
        """A header exactly as large as every signature this signer writes (to
        reserve its room when a value is fitted to the record size limit)."""
        return SIGNATURE_HEADER, f"{self.key_id}:{'0' * _DIGEST_HEX_LENGTH}".encode()


class Verdict(StrEnum):
    """What :func:`verify` found; only OK means the record is authentic."""

    OK = "ok"
    BAD = "BAD"  # a signature that does not match: tampered, or the wrong secret
    UNSIGNED = "unsigned"  # no signature header
    UNKNOWN_KEY = "unknown key"  # signed with a key id the reader has no secret for
    MALFORMED = "malformed"  # a header that is not "<key id>:<64 hex digits>"


def verify(
    key: bytes | None,
    value: bytes,
    headers: Iterable[tuple[str, bytes]],
    secrets: Mapping[str, bytes],
) -> Verdict:
    """Check the record's signature against ``secrets`` (key id -> secret).

    A record with several signature headers must have every one valid: a
    second, forged header must not hide behind a good one."""
    found = [v for name, v in headers if name == SIGNATURE_HEADER]
    if not found:
        return Verdict.UNSIGNED
    verdicts = [_verify_one(key, value, header, secrets) for header in found]
    for verdict in (Verdict.MALFORMED, Verdict.BAD, Verdict.UNKNOWN_KEY):
        if verdict in verdicts:
            return verdict
    return Verdict.OK


def _verify_one(
    key: bytes | None, value: bytes, header: bytes, secrets: Mapping[str, bytes]
) -> Verdict:
    try:
        key_id, digest = header.decode("ascii").rsplit(":", 1)
    except (UnicodeDecodeError, ValueError):
        return Verdict.MALFORMED
    if len(digest) != _DIGEST_HEX_LENGTH or not key_id:
        return Verdict.MALFORMED
    secret = secrets.get(key_id)
    if secret is None:
        return Verdict.UNKNOWN_KEY
    expected = signature(secret, key, value)
    return Verdict.OK if hmac.compare_digest(expected, digest.lower()) else Verdict.BAD
