"""The signing sink (issue 12): every record sent through it carries a valid
signature, and the size limit it reports leaves room for the header."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from wpcdc.commands.tail import TailOptions, _print
from wpcdc.config.loading import load_settings
from wpcdc.config.settings import SigningSettings
from wpcdc.core.errors import ConfigError
from wpcdc.core.records import Headers
from wpcdc.core.signing import Verdict, verify
from wpcdc.runtime.signing import SigningSink, signed

SECRET = "a secret of 16+ bytes"


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes, Headers | None]] = []

    async def send(
        self, key: bytes, value: bytes, headers: Headers | None = None
    ) -> asyncio.Future[None]:
        self.sent.append((key, value, headers))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def flush(self) -> None:
        pass

    def max_value_size(self, key: bytes, headers: Headers | None = None) -> int:
        # Like the Kafka sink: the limit minus what the key and headers take.
        return 1000 - len(key) - sum(len(n) + len(v) for n, v in headers or ())


def settings(**values: object) -> SigningSettings:
    return SigningSettings.model_validate(values)


def test_without_an_active_key_the_sink_is_used_as_it_is() -> None:
    inner = RecordingSink()
    assert signed(inner, settings()) is inner
    assert signed(inner, settings(keys={"k1": SECRET})) is inner


def test_records_sent_are_signed_and_the_limit_reserves_the_header() -> None:
    inner = RecordingSink()
    config = settings(keys={"k1": SECRET, "k0": "an older secret!!"}, key_id="k1")
    sink = signed(inner, config)
    assert isinstance(sink, SigningSink)
    plain = [("content-type", b"x")]

    async def go() -> None:
        await sink.send(b"1:7", b"value", plain)
        await sink.flush()

    asyncio.run(go())
    ((key, value, headers),) = inner.sent
    assert headers is not None and headers[0] == plain[0]
    assert verify(key, value, headers, config.secrets()) is Verdict.OK
    reserved = inner.max_value_size(b"1:7", plain) - sink.max_value_size(b"1:7", plain)
    assert reserved == len("wpcdc-signature") + len(headers[1][1])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"key_id": "k2", "keys": {"k1": SECRET}}, "signing.key_id 'k2' is not one of"),
        ({"keys": {"k1": "short"}}, "shorter than 16 bytes"),
        ({"keys": {"a:b": SECRET}}, "without ':'"),
    ],
)
def test_bad_signing_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(**values)


def test_keys_come_from_the_environment_and_a_bad_one_is_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WPCDC_SIGNING__KEYS", '{"2026-01": "' + SECRET + '"}')
    monkeypatch.setenv("WPCDC_SIGNING__KEY_ID", "2026-01")
    loaded = load_settings().signing
    assert loaded.secrets() == {"2026-01": SECRET.encode()}
    assert SECRET not in repr(loaded)
    monkeypatch.setenv("WPCDC_SIGNING__KEYS", '{"2026-01": "tiny-secret"}')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "shorter than 16 bytes" in str(info.value) and "tiny-secret" not in str(info.value)


def test_tail_shows_the_verdict_at_the_end_of_the_line() -> None:
    config = settings(keys={"k1": SECRET}, key_id="k1")
    signer = config.signer()
    assert signer is not None
    value = b'{"specversion":"1.0","id":"e","type":"post_created","subject":"post/7","data":{}}'
    good = SimpleNamespace(
        key=b"1:7", value=value, headers=[signer.header(b"1:7", value)], partition=0, offset=0
    )
    bad = SimpleNamespace(**{**vars(good), "value": value.replace(b"post/7", b"post/8")})
    out: list[str] = []
    err: list[str] = []
    options = TailOptions(topic="t", secrets=config.secrets())
    for record in (good, bad):
        _print(record, options, out.append, err.append)
    assert out[0].endswith("[signature ok]") and out[1].endswith("[signature BAD]")
    as_json = TailOptions(topic="t", secrets=config.secrets(), as_json=True)
    for record in (good, bad):
        _print(record, as_json, out.append, err.append)
    assert err == ["signature BAD: partition 0 offset 0 event e"]
