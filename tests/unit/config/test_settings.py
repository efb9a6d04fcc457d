"""Settings: file and environment precedence, errors naming the field, the example file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from wpcdc.config.loading import load_settings
from wpcdc.config.settings import Settings
from wpcdc.core.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wpcdc.toml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.mysql.port == 3306
    assert settings.mysql.table_prefix == "wp_"
    assert settings.kafka.topic == "wordpress.events"
    assert settings.checkpoint.path == Path("wpcdc-checkpoint.json")


def test_environment_alone_configures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WPCDC_MYSQL__PORT", "3307")
    monkeypatch.setenv("WPCDC_KAFKA__BOOTSTRAP_SERVERS", "a:9092, b:9092")
    monkeypatch.setenv("WPCDC_KAFKA__SASL__USERNAME", "svc")
    settings = load_settings()
    assert settings.mysql.port == 3307
    assert settings.kafka.bootstrap_list == ["a:9092", "b:9092"]
    assert settings.kafka.sasl.username == "svc"


def test_environment_wins_over_file_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, '[mysql]\nhost = "db.internal"\nport = 3308\n[kafka]\ntopic = "t1"\n')
    monkeypatch.setenv("WPCDC_MYSQL__PORT", "3309")
    settings = load_settings(config)
    assert settings.mysql.host == "db.internal"
    assert settings.mysql.port == 3309
    assert settings.kafka.topic == "t1"


def test_wpcdc_toml_in_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, '[checkpoint]\npath = "/var/lib/wpcdc/cp.json"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings().checkpoint.path == Path("/var/lib/wpcdc/cp.json")


def test_bad_environment_value_names_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WPCDC_MYSQL__PORT", "not-a-port")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "mysql.port" in message
    assert "WPCDC_MYSQL__PORT" in message
    assert info.value.exit_code == 2


def test_every_bad_field_gets_its_own_line(tmp_path: Path) -> None:
    config = write(tmp_path, '[mysql]\nport = 70000\nhots = "x"\n[kafka]\npartitions = 0\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    lines = str(info.value).splitlines()[1:]
    assert len(lines) == 3
    assert any(line.strip().startswith("mysql.port:") and str(config) in line for line in lines)
    assert any(line.strip().startswith("mysql.hots: unknown key") for line in lines)
    assert any(line.strip().startswith("kafka.partitions:") for line in lines)


def test_secrets_are_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WPCDC_MYSQL__PASSWORD", '{"not": "a string"}')
    monkeypatch.setenv("WPCDC_KAFKA__SASL__PASSWORD", "hunter2-secret")
    monkeypatch.setenv("WPCDC_KAFKA__PARTITIONS", "zero")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "hunter2-secret" not in str(info.value)
    monkeypatch.setenv("WPCDC_KAFKA__PARTITIONS", "3")
    settings = load_settings()
    assert "hunter2-secret" not in repr(settings)
    assert settings.kafka.sasl.password.get_secret_value() == "hunter2-secret"


def test_malformed_toml_names_the_file_and_line(tmp_path: Path) -> None:
    config = write(tmp_path, "[mysql\nport = 1\n")
    with pytest.raises(ConfigError, match=r"wpcdc.toml is not valid TOML.*line 1"):
        load_settings(config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_sasl_protocol_requires_credentials(tmp_path: Path) -> None:
    config = write(tmp_path, '[kafka]\nsecurity_protocol = "SASL_SSL"\n')
    with pytest.raises(ConfigError, match=r"kafka: .*kafka\.sasl\.username"):
        load_settings(config)


def _flatten(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            out.update(_flatten(value, key + "."))
        else:
            out[key] = value
    return out


def _flatten_toml(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten_toml(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _commented_keys(text: str) -> set[str]:
    """Keys documented as comments (`# ca = ...`) under their [section]."""
    keys, section = set(), ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1] + "."
        elif stripped.startswith("# ") and " = " in stripped:
            candidate = stripped[2:].split(" = ", 1)[0]
            if candidate.isidentifier():
                keys.add(section + candidate)
    return keys


def test_example_config_documents_every_key_with_its_default() -> None:
    text = EXAMPLE.read_text()
    example = _flatten_toml(tomllib.loads(text))
    defaults = _flatten(Settings())
    documented = set(example) | _commented_keys(text)
    assert documented == set(defaults), "config.example.toml and the settings models differ"
    for key, value in example.items():
        default = defaults[key]
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        assert value == (str(default) if isinstance(default, Path) else default), key
    # And the example itself loads.
    Settings(**tomllib.loads(text))
