"""Decoding column values into JSON-safe values, and PHP-serialized meta values.

Bad data never stops the stream, nor passes unflagged (promise "loud failure",
docs/ARCHITECTURE.md): a meta value that looks serialized but does not decode
(truncated by a naive SQL search/replace, PHP objects of unknown classes, deep
nesting) comes out as its raw string with the error alongside; bytes that are
not UTF-8 come out as base64 with a flag.

What decodes must also serialize: :func:`_jsonable` is the one place that
turns decoded PHP values into JSON, and a value JSON cannot carry exactly (an
integer wider than 64 bits, which orjson refuses and which stopped the stream
for good; INF or NAN, which would silently become null) makes the whole meta
value undecodable: it is sent raw, with the error. Pure: no I/O.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import phpserialize

# WordPress's is_serialized(): "N;" or "x:" ... ending in ";" or "}".
_SERIALIZED = re.compile(r"^(?:N;|b:[01];|i:-?\d+;|d:[^;]+;|[asOC]:\d+:.*[;}])$", re.DOTALL)
_MAX_DEPTH = 64
# The integers orjson writes (and most JSON consumers read) exactly: int64 and uint64.
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1


@dataclass(frozen=True, slots=True)
class MetaValue:
    """A decoded meta value. ``value`` is JSON-safe; ``raw`` is set only when it
    differs from ``value`` (serialized or binary input); ``error`` says why
    decoding failed, in which case ``value`` is the raw string."""

    value: Any
    serialized: bool = False
    raw: str | None = None
    error: str | None = None


def text(value: Any) -> Any:
    """A column value as JSON-safe data: str, int, float, bool, None, lists, dicts."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)


def looks_serialized(value: str) -> bool:
    return bool(_SERIALIZED.match(value.strip()))


def decode_meta(value: Any) -> MetaValue:
    """Decode a ``meta_value`` column as WordPress's maybe_unserialize() would."""
    if value is None:
        return MetaValue(value=None)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            encoded = "base64:" + base64.b64encode(value).decode("ascii")
            return MetaValue(value=encoded, raw=encoded, error="value is not valid UTF-8")
    if not isinstance(value, str):
        return MetaValue(value=text(value))
    if not looks_serialized(value):
        return MetaValue(value=value)
    try:
        decoded = _unserialize(value.strip().encode("utf-8"))
    except _DecodeFailure as exc:
        return MetaValue(value=value, serialized=True, raw=value, error=str(exc))
    return MetaValue(value=decoded, serialized=True, raw=value)


class _DecodeFailure(Exception):
    pass


def _object_hook(name: str, properties: dict[Any, Any]) -> dict[str, Any]:
    # PHP objects become plain dicts; the class name is kept so nothing is lost.
    return {"__class__": name, **{str(key): val for key, val in properties.items()}}


def _unserialize(raw: bytes) -> Any:
    stream = io.BytesIO(raw)
    try:
        decoded = phpserialize.load(stream, decode_strings=True, object_hook=_object_hook)
    except RecursionError:
        raise _DecodeFailure("nested too deeply") from None
    except (ValueError, UnicodeDecodeError, TypeError, IndexError, KeyError) as exc:
        raise _DecodeFailure(f"not valid PHP serialize() output: {exc}") from None
    if stream.read(1):
        raise _DecodeFailure("not valid PHP serialize() output: trailing data")
    return _jsonable(decoded, 0)


def _jsonable(value: Any, depth: int) -> Any:
    """``value`` as JSON that orjson serializes exactly; _DecodeFailure otherwise."""
    if depth > _MAX_DEPTH:
        raise _DecodeFailure("nested too deeply")
    if isinstance(value, dict):
        keys = list(value)
        # PHP lists are arrays with keys 0..n-1; give them back as JSON arrays.
        if keys == list(range(len(keys))):
            return [_jsonable(value[k], depth + 1) for k in keys]
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, bytes):
        return text(value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not _MIN_INT <= value <= _MAX_INT:
            raise _DecodeFailure("an integer wider than 64 bits has no exact JSON form")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _DecodeFailure(f"the float {value} has no JSON form")
        return value
    raise _DecodeFailure(f"a PHP value of type {type(value).__name__} has no JSON form")
