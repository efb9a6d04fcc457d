"""Signed records (issue 12): the exact bytes signed, verification, key rotation,
tampering, and the header's room kept under the size limit."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

import pytest

from wpcdc.core.signing import SIGNATURE_HEADER, Signer, Verdict, signed_bytes, verify

OLD = Signer("2025-12", b"an old secret, 16+ bytes")
NEW = Signer("2026-01", b"the new secret, 16+ bytes")
SECRETS = {OLD.key_id: OLD.secret, NEW.key_id: NEW.secret}
KEY, VALUE = b"1:42", b'{"type":"post_updated"}'


def headers(
    signer: Signer, key: bytes | None = KEY, value: bytes = VALUE
) -> list[tuple[str, bytes]]:
    return [("content-type", b"application/cloudevents+json"), signer.header(key, value)]


def test_the_signed_bytes_are_the_length_prefixed_key_then_the_value() -> None:
    assert signed_bytes(KEY, VALUE) == b"\x00\x00\x00\x04" + KEY + VALUE
    assert signed_bytes(None, b"v") == signed_bytes(b"", b"v") == b"\x00\x00\x00\x00v"
    # What the README's consumer code computes: HMAC-SHA256 over those bytes, in hex.
    expected = hmac.new(NEW.secret, b"\x00\x00\x00\x04" + KEY + VALUE, hashlib.sha256).hexdigest()
    assert NEW.header(KEY, VALUE) == (SIGNATURE_HEADER, f"2026-01:{expected}".encode())


def test_a_signed_record_verifies() -> None:
    assert verify(KEY, VALUE, headers(NEW), SECRETS) is Verdict.OK


def test_rotation_old_records_verify_while_the_old_secret_is_kept() -> None:
    assert verify(KEY, VALUE, headers(OLD), SECRETS) is Verdict.OK
    assert verify(KEY, VALUE, headers(OLD), {NEW.key_id: NEW.secret}) is Verdict.UNKNOWN_KEY


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (KEY, VALUE + b" "),  # value changed
        (b"1:43", VALUE),  # key changed
        (b"1:4", b"2" + VALUE),  # a byte moved from the key to the value
        (None, VALUE),
    ],
)
def test_a_tampered_record_is_bad(key: bytes | None, value: bytes) -> None:
    assert verify(key, value, headers(NEW), SECRETS) is Verdict.BAD


def test_a_wrong_secret_under_a_known_key_id_is_bad() -> None:
    forged = Signer(NEW.key_id, b"someone else's secret")
    assert verify(KEY, VALUE, headers(forged), SECRETS) is Verdict.BAD


def test_unsigned_and_malformed_headers_are_not_ok() -> None:
    assert verify(KEY, VALUE, [], SECRETS) is Verdict.UNSIGNED
    for bad in (b"no-colon", b"2026-01:abc", b":" + b"0" * 64, b"\xff:" + b"0" * 64):
        assert verify(KEY, VALUE, [(SIGNATURE_HEADER, bad)], SECRETS) is Verdict.MALFORMED


def test_a_second_forged_signature_cannot_hide_behind_a_good_one() -> None:
    forged = Signer(OLD.key_id, b"someone else's secret").header(KEY, VALUE)
    assert verify(KEY, VALUE, [*headers(NEW), forged], SECRETS) is Verdict.BAD


def test_a_key_id_cannot_hold_the_separator() -> None:
    with pytest.raises(ValueError, match="key id"):
        Signer("a:b", b"x" * 16)


def test_the_placeholder_is_as_long_as_every_signature() -> None:
    assert len(NEW.placeholder()[1]) == len(NEW.header(KEY, VALUE)[1])
    assert len(NEW.placeholder()[1]) == len(NEW.header(b"", b"x" * 10_000)[1])


def test_the_readme_consumer_code_verifies_what_wpcdc_signs() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    match = re.search(r"```python\n(import hashlib, hmac\n.*?)```", readme, re.S)
    assert match, "the README's Python verification snippet"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)
    namespace["SECRETS"].clear()
    namespace["SECRETS"].update(SECRETS)
    authentic = namespace["authentic"]
    assert authentic(KEY, VALUE, headers(NEW)) and authentic(KEY, VALUE, headers(OLD))
    assert authentic(None, VALUE, [NEW.header(None, VALUE)])
    assert not authentic(KEY, VALUE + b" ", headers(NEW))
    assert not authentic(KEY, VALUE, [])
