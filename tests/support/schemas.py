"""Validating records against the committed schema files (not the models)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@cache
def _validator(event_type: str) -> jsonschema.protocols.Validator:
    path = SCHEMAS / f"{event_type}.v1.json"
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)  # type: ignore[no-any-return]


def validate(record: dict[str, Any]) -> None:
    """Raises jsonschema.ValidationError when ``record`` does not match its type's file."""
    _validator(record["type"]).validate(record)
