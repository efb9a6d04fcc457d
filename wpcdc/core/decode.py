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
# The type letters a serialized value starts with (after whitespace, which the match strips).
_SERIALIZED_FIRST = frozenset("NbidasOC")
_SERIALIZED = re.compile(r"^(?:N;|b:[01];|i:-?\d+;|d:[^;]+;|[asOC]:\d+:.*[;}])$", re.DOTALL)
_MAX_DEPTH = 64
# The integers orjson writes (and most JSON consumers read) exactly: int64 and uint64.
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1


# Not frozen: one is built per meta value an event carries, and a frozen dataclass
# costs about three times as much to build; nothing changes one once built.
@dataclass(slots=True)
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
    cls = value.__class__
    if cls is str or cls is int or value is None:  # most columns: as they are
        return value
    if isinstance(value, str | int | float | bool):
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
    # Most meta values are plain text: their first character says so without
    # stripping a copy of the string.
    first = value[:1]
    if first not in _SERIALIZED_FIRST and not first.isspace():
        return False
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
    known = _DECODED.get(value)
    if known is not None:
        return known
    decoded = _decode_serialized(value)
    if len(value) <= _MEMO_CHARS:
        if len(_DECODED) >= _MEMO_ENTRIES:
            _DECODED.clear()  # bounded memory; the next values fill it again
        _DECODED[value] = decoded
    return decoded


# Bulk jobs write the same serialized value to many posts (settings, galleries,
# page builder defaults): short ones are decoded once while they recur.
# Decoded values are shared by the events that carry them; nothing mutates them
# (the oversize policy replaces, events are only serialized). At most
# _MEMO_ENTRIES x _MEMO_CHARS characters of input (~1 MB) plus their decodings.
_MEMO_ENTRIES = 512
_MEMO_CHARS = 2048
_DECODED: dict[str, MetaValue] = {}


def _decode_serialized(value: str) -> MetaValue:
    raw = value.strip().encode("utf-8")
    try:
        decoded = _fast_unserialize(raw)
    except _NotFast:
        decoded = _NOT_FAST
    if decoded is not _NOT_FAST:
        return MetaValue(value=decoded, serialized=True, raw=value)
    try:
        decoded = _unserialize(raw)
    except _DecodeFailure as exc:
        return MetaValue(value=value, serialized=True, raw=value, error=str(exc))
    return MetaValue(value=decoded, serialized=True, raw=value)


class _DecodeFailure(Exception):
    pass


class _NotFast(Exception):
    """Input the fast path does not take on: the reference path decides."""


_NOT_FAST: Any = object()

# The fast path (the hot path's meta values): strict, well-formed serialize()
# output of null, booleans, integers, plain floats, strings and arrays with
# integer or string keys, decoded straight into the JSON form _unserialize
# gives. Anything else (objects, upper-case opcodes, odd spellings phpserialize
# tolerates, non-finite floats, wide integers, invalid UTF-8, deep nesting,
# malformed input) raises _NotFast and goes the reference way (phpserialize,
# then _jsonable), so results and error messages are the reference's, byte for
# byte. phpserialize reads one byte per call; this slices.
_FAST_DEPTH = 32
_FLOAT = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_S, _I, _A, _B, _N, _D = b"siabNd"
_COLON, _SEMI, _QUOTE, _OPEN, _CLOSE = b':;"{}'


def _fast_unserialize(raw: bytes) -> Any:
    try:
        value, end = _fast_value(raw, 0, 0)
    except (IndexError, ValueError):  # cut short; a missing delimiter
        raise _NotFast from None
    if end != len(raw):
        raise _NotFast
    return value


def _digits(raw: bytes, start: int, end: int) -> int:
    # int() also takes spaces, "+" and "_": the reference's business.
    digits = raw[start:end]
    if not digits.isdigit():
        raise _NotFast
    return int(digits)


def _fast_value(raw: bytes, pos: int, depth: int) -> tuple[Any, int]:
    # Returns (JSON-form value, position after it); IndexError/ValueError when cut short.
    tag = raw[pos]
    if raw[pos + 1] != _COLON:
        if tag == _N and raw[pos + 1] == _SEMI:
            return None, pos + 2
        raise _NotFast
    if tag == _S:
        colon = raw.index(b":", pos + 2)
        start = colon + 2
        end = start + _digits(raw, pos + 2, colon)
        if raw[colon + 1] != _QUOTE or raw[end] != _QUOTE or raw[end + 1] != _SEMI:
            raise _NotFast
        try:
            return raw[start:end].decode("utf-8"), end + 2
        except UnicodeDecodeError:
            raise _NotFast from None
    if tag == _I:
        end = raw.index(b";", pos + 2)
        negative = raw[pos + 2] == 45  # "-"
        number = _digits(raw, pos + 2 + negative, end)
        if negative:
            number = -number
        if not _MIN_INT <= number <= _MAX_INT:
            raise _NotFast
        return number, end + 1
    if tag == _A:
        return _fast_array(raw, pos, depth)
    if tag == _B:
        flag = raw[pos + 2 : pos + 4]
        if flag == b"1;":
            return True, pos + 4
        if flag == b"0;":
            return False, pos + 4
        raise _NotFast
    if tag == _D:
        end = raw.index(b";", pos + 2)
        if _FLOAT.fullmatch(raw, pos + 2, end) is None:
            raise _NotFast
        real = float(raw[pos + 2 : end])
        if not math.isfinite(real):
            raise _NotFast
        return real, end + 1
    raise _NotFast


def _fast_array(raw: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth >= _FAST_DEPTH:
        raise _NotFast
    colon = raw.index(b":", pos + 2)
    count = _digits(raw, pos + 2, colon)
    if raw[colon + 1] != _OPEN:
        raise _NotFast
    pos = colon + 2
    items: dict[Any, Any] = {}
    for _ in range(count):
        tag = raw[pos]
        if tag != _I and tag != _S:
            raise _NotFast  # keys of other types merge oddly in a dict: the reference decides
        key, pos = _fast_value(raw, pos, depth + 1)
        # As phpserialize's dict: a repeated key keeps its first place, the last value.
        items[key], pos = _fast_value(raw, pos, depth + 1)
    if raw[pos] != _CLOSE:
        raise _NotFast
    keys = list(items)
    # As _jsonable: PHP lists (keys 0..n-1) are JSON arrays.
    if keys == list(range(len(keys))):
        return list(items.values()), pos + 1
    return {str(key): value for key, value in items.items()}, pos + 1


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
