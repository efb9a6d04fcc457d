"""Reading a record back as an envelope."""

from __future__ import annotations

from wpcdc.core import envelope


def test_decode_rejects_what_is_not_an_envelope() -> None:
    for raw in (b"garbage", b"[]", b'{"specversion": "0.3"}', b'{"specversion": "1.0"}'):
        try:
            envelope.decode(raw)
        except ValueError:
            continue
        raise AssertionError(raw)
