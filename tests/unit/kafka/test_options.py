"""Kafka client options built from settings: TLS and SASL are honoured."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import ConfigError
from wpcdc.kafka import options
from wpcdc.kafka.options import client_options, producer_options


def test_plaintext_has_no_tls_or_sasl() -> None:
    options = client_options(KafkaSettings(bootstrap_servers="a:9092, b:9093", client_id="me"))
    assert options == {
        "bootstrap_servers": ["a:9092", "b:9093"],
        "client_id": "me",
        "security_protocol": "PLAINTEXT",
        "request_timeout_ms": 30000,
    }


def test_sasl_ssl_carries_a_verifying_context_and_credentials() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl={"mechanism": "SCRAM-SHA-512", "username": "svc", "password": "pw"},
        tls={"verify_identity": False},
    )
    options = client_options(settings)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "svc"
    assert options["sasl_plain_password"] == "pw"


def test_sasl_plaintext_has_no_tls() -> None:
    settings = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl={"username": "svc"})
    assert "ssl_context" not in client_options(settings)


def test_a_missing_ca_file_is_an_os_error(tmp_path: Path) -> None:
    settings = KafkaSettings(security_protocol="SSL", tls={"ca": tmp_path / "nope.pem"})
    with pytest.raises(OSError, match=r"ca file .*nope\.pem does not exist"):
        client_options(settings)


def test_lz4_is_the_default_codec_and_none_sends_uncompressed() -> None:
    assert producer_options(KafkaSettings())["compression_type"] == "lz4"
    assert producer_options(KafkaSettings(compression="none"))["compression_type"] is None
    for codec in ("gzip", "zstd", "snappy"):
        assert producer_options(KafkaSettings(compression=codec))["compression_type"] == codec


def test_an_unknown_codec_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValidationError) as refused:
        KafkaSettings(compression="brotli")  # type: ignore[arg-type]
    assert "'lz4'" in str(refused.value) and "'gzip'" in str(refused.value)


def test_a_codec_whose_library_is_missing_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(options._CODECS, "lz4", (lambda: False, "cramjam"))
    with pytest.raises(ConfigError) as refused:
        producer_options(KafkaSettings())
    message = str(refused.value)
    assert "kafka.compression = 'lz4'" in message and "cramjam" in message
    assert '"gzip"' in message  # what to do instead
    producer_options(KafkaSettings(compression="gzip"))  # the standard library's
