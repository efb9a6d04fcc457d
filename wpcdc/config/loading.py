"""Loading the settings from TOML and the environment, and saying what is wrong.

This module owns turning a config file and ``WPCDC_*`` variables into
:class:`~wpcdc.config.settings.Settings`: reading the file, the precedence
(variables win, key by key), and one actionable line per bad field naming the
key and where its value came from, without ever echoing a secret. The models
themselves live in :mod:`wpcdc.config.settings`.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import SettingsError

from wpcdc.config.settings import (
    DEFAULT_CONFIG_FILE,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    Settings,
)
from wpcdc.core.errors import ConfigError


@dataclass(frozen=True)
class _Origin:
    """Where the settings came from, so that an error can point at the right place."""

    file: Path | None

    def of(self, loc: tuple[str | int, ...]) -> str:
        env_name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(p) for p in loc).upper()
        if env_name in os.environ:
            return f"environment variable {env_name}"
        # A whole section may be given as one JSON variable, e.g. WPCDC_MYSQL.
        for depth in range(len(loc) - 1, 0, -1):
            name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(p) for p in loc[:depth]).upper()
            if name in os.environ:
                return f"environment variable {name}"
        if self.file is not None:
            return f"config file {self.file}"
        return "defaults"


def _field(loc: tuple[str | int, ...]) -> FieldInfo | None:
    """The settings field at ``loc`` (``("kafka", "sasl")``), None when there is none."""
    model: Any = Settings
    info = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not isinstance(part, str) or not fields or part not in fields:
            return None
        info = fields[part]
        model = info.annotation
    return info


def _types(annotation: Any) -> list[Any]:
    """``annotation`` and every type inside it (``SecretStr | None`` gives both)."""
    found = [annotation]
    for arg in typing.get_args(annotation):
        found += _types(arg)
    return found


def _is_section(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _holds_secret(annotation: Any) -> bool:
    return any(
        kind is SecretStr
        or (
            _is_section(kind)
            and any(_holds_secret(f.annotation) for f in kind.model_fields.values())
        )
        for kind in _types(annotation)
    )


def _may_echo(loc: tuple[str | int, ...]) -> bool:
    """Whether a bad value at ``loc`` may be shown: only for a known field that
    can hold no secret. A password, or a section holding one (``kafka.sasl``
    given as a string), is never shown, whatever the type of the bad value."""
    info = _field(loc)
    return info is not None and not _holds_secret(info.annotation)


def _describe(error: Any, origin: _Origin) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (see config.example.toml for the valid keys)"
    line = f"{key}: {message} [from {origin.of(loc)}]"
    if error["type"] != "extra_forbidden" and "input" in error and _may_echo(loc):
        value = error["input"]
        if isinstance(value, str | int | float | bool):
            line += f" (got {value!r})"
    return line


def _needs_json(loc: tuple[str, ...]) -> bool:
    """True for a section or a list: one environment variable holds it as JSON."""
    info = _field(loc)
    return info is not None and any(
        _is_section(kind) or kind is list or typing.get_origin(kind) is list
        for kind in _types(info.annotation)
    )


def _unparsable_environment(exc: SettingsError) -> ConfigError:
    """A variable pydantic-settings could not parse as JSON: name it, never its value
    (a section given whole, such as WPCDC_MYSQL, may hold a password)."""
    match = re.search(r'field "([^"]+)"', str(exc))
    prefix = ENV_PREFIX + (match.group(1).upper() if match else "")
    culprits = []
    for name, value in sorted(os.environ.items()):
        if name != prefix and not name.startswith(prefix + ENV_NESTED_DELIMITER):
            continue
        loc = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split(ENV_NESTED_DELIMITER))
        if not _needs_json(loc):
            continue
        try:
            json.loads(value)
        except ValueError:
            culprits.append(name)
    named = " and ".join(culprits) or f"a {prefix}* variable"
    return ConfigError(
        f"invalid configuration: {named} is not valid JSON. A section or a list given in "
        f"one variable must be JSON ({ENV_PREFIX}MYSQL='{{\"port\": 3307}}', "
        f"{ENV_PREFIX}FOLD__IGNORED_META_KEYS='[\"_edit_lock\"]'); or set one key per "
        f"variable ({ENV_PREFIX}MYSQL__PORT=3307)"
    )


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def load_settings(config: Path | None = None) -> Settings:
    """Load settings from ``config`` (or ./wpcdc.toml when present) and the environment.

    Raises :class:`ConfigError` with one line per bad field; secrets never appear.
    """
    path = config
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    data = read_config_file(path) if path is not None else {}
    try:
        return Settings(**data)
    except SettingsError as exc:
        raise _unparsable_environment(exc) from None
    except ValidationError as exc:
        origin = _Origin(file=path)
        lines = [_describe(error, origin) for error in exc.errors(include_url=False)]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
