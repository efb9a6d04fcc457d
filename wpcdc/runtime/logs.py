"""Logging of the long-running commands: the level, and the line format (``log.format``).

This module owns how a log record becomes a line on stderr. ``text`` is one
human line per record. ``json`` is one JSON object per line, for log shippers:
``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``, the
context a call passed with ``extra=`` (``position``, ``topic``, ``post`` and
the like, under their own names), and ``exception`` (the formatted traceback)
when there is one. Every logger goes through the root handler, so aiokafka's
and pymysql's lines are JSON too; so are Python warnings and an exception no
one caught, in any thread, which would otherwise reach stderr as raw text.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TextIO

from wpcdc.core.errors import ConfigError

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

_json_active = False


class JsonFormatter(logging.Formatter):
    """One JSON object per record; values JSON cannot hold are written as strings."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in line:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def parse_level(level: str) -> int:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ConfigError(f"--log-level: unknown level {level!r} (DEBUG, INFO, WARNING, ERROR)")
    return numeric


def configure_logging(
    level: str, log_format: LogFormat = "text", stream: TextIO | None = None
) -> None:
    """Send every logger's records at ``level`` and above to ``stream`` (stderr)
    in ``log_format``."""
    global _json_active
    numeric = parse_level(level)
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
    # aiokafka logs every reconnect attempt at ERROR; wpcdc reports outages itself
    # (with --log-level DEBUG the library speaks too).
    logging.getLogger("aiokafka").setLevel(
        numeric if numeric <= logging.DEBUG else logging.CRITICAL
    )
    _json_active = log_format == "json"
    if _json_active:
        # A warning or an uncaught exception must not break a JSON-only stream.
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread


def json_active() -> bool:
    """Whether stderr carries JSON lines only (so a final error must be logged, not printed)."""
    return _json_active


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    logging.getLogger("wpcdc").critical("uncaught exception", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else "?"
    logging.getLogger("wpcdc").critical(
        "uncaught exception in thread %s",
        thread,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
        extra={"thread_name": thread},
    )
