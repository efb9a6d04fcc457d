"""Settings errors: one line each, exit 2, and never the value of a secret whatever its type."""

from __future__ import annotations

from pathlib import Path

import pytest

from wpcdc.config.loading import load_settings
from wpcdc.core.errors import EXIT_CONFIG, ConfigError

SECRET = "hunter2-secret"


def error_of(tmp_path: Path, toml: str) -> str:
    path = tmp_path / "wpcdc.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.exit_code == EXIT_CONFIG
    return str(info.value)


@pytest.mark.parametrize(
    "toml",
    [
        f'[kafka]\nsasl = "{SECRET}"\n',  # a section given as a string
        f'kafka = "{SECRET}"\n',
        f'mysql = "{SECRET}"\n',
        f'[kafka]\ntls = "{SECRET}"\n',  # kafka.tls holds key_password
        "[kafka.sasl]\npassword = 4242424242\n",  # a secret of the wrong type
        "[kafka.tls]\nkey_password = 4242424242\n",
        "[mysql]\npassword = true\n",
    ],
)
def test_secret_values_are_never_echoed_whatever_their_type(tmp_path: Path, toml: str) -> None:
    message = error_of(tmp_path, toml)
    assert SECRET not in message and "4242424242" not in message
    assert "(got" not in message
    assert "[from config file" in message


def test_an_environment_variable_holding_a_secret_section_is_not_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WPCDC_KAFKA__SASL", f'"{SECRET}"')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert SECRET not in str(info.value)
    assert "environment variable WPCDC_KAFKA__SASL" in str(info.value)


def test_other_bad_values_are_still_shown(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[kafka]\ntopic = "no spaces allowed"\n')
    assert "kafka.topic:" in message and "(got 'no spaces allowed')" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WPCDC_MYSQL", f"password={SECRET}"),
        ("WPCDC_MYSQL", f'{{"password": "{SECRET}"'),
        ("WPCDC_KAFKA__SASL", f"password={SECRET}"),
        ("WPCDC_FOLD__IGNORED_META_KEYS", "_edit_lock,_edit_last"),
    ],
)
def test_a_variable_that_must_be_json_and_is_not_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("WPCDC_MYSQL__PORT", "3307")  # valid, and not to be blamed
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert info.value.exit_code == EXIT_CONFIG
    assert len(message.splitlines()) == 1
    assert f"{name} is not valid JSON" in message
    assert SECRET not in message and "WPCDC_MYSQL__PORT is" not in message
