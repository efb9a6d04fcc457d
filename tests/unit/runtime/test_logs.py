"""Structured logs (issue 12): one JSON object per line, context fields from
``extra=``, exceptions inside the object, third-party loggers included."""

from __future__ import annotations

import io
import json
import logging
import sys
import warnings
from collections.abc import Iterator

import pytest

from wpcdc.core.errors import ConfigError
from wpcdc.runtime import logs


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook
    try:
        yield buffer
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        sys.excepthook = saved[2]
        logging.captureWarnings(False)
        logs._json_active = False


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_every_logger_writes_one_json_object_per_line(stderr: io.StringIO) -> None:
    logs.configure_logging("INFO", "json", stderr)
    assert logs.json_active()
    logging.getLogger("wpcdc.run").info(
        "resuming at %s", "binlog.000001:4", extra={"position": "binlog.000001:4", "post": 7}
    )
    logging.getLogger("pymysql").warning("multi\nline «ünïcode»")
    logging.getLogger("wpcdc.stream").debug("below the level: not written")
    first, second = lines(stderr)
    assert first["message"] == "resuming at binlog.000001:4"
    assert (first["level"], first["logger"]) == ("INFO", "wpcdc.run")
    assert (first["position"], first["post"]) == ("binlog.000001:4", 7)
    assert str(first["time"]).endswith("+00:00")
    assert second == {**second, "logger": "pymysql", "message": "multi\nline «ünïcode»"}
    assert "exception" not in first and "position" not in second


def test_exceptions_and_unserializable_context_stay_inside_the_object(
    stderr: io.StringIO,
) -> None:
    logs.configure_logging("INFO", "json", stderr)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("aiokafka").critical("failed", exc_info=True, extra={"topic": object()})
    (line,) = lines(stderr)
    assert "ValueError: boom" in str(line["exception"]) and "Traceback" in str(line["exception"])
    assert str(line["topic"]).startswith("<object object")


def test_warnings_and_uncaught_exceptions_are_json_too(stderr: io.StringIO) -> None:
    logs.configure_logging("WARNING", "json", stderr)
    with warnings.catch_warnings():
        # Tests turn warnings into errors; a running wpcdc shows them.
        warnings.simplefilter("default")
        warnings.warn("deprecated thing", UserWarning, stacklevel=1)
    try:
        raise RuntimeError("nobody caught me")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    warned, uncaught = lines(stderr)
    assert warned["logger"] == "py.warnings" and "deprecated thing" in str(warned["message"])
    assert uncaught["level"] == "CRITICAL"
    assert "RuntimeError: nobody caught me" in str(uncaught["exception"])


def test_text_stays_the_default_line(stderr: io.StringIO) -> None:
    logs.configure_logging("INFO", "text", stderr)
    logging.getLogger("wpcdc.run").info("hello", extra={"position": "x"})
    assert stderr.getvalue().rstrip().endswith(" INFO wpcdc.run: hello")
    assert not logs.json_active()


def test_an_unknown_level_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown level 'LOUD'"):
        logs.configure_logging("LOUD", "json")
