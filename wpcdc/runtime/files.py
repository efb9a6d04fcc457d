"""JSON state files on local disk: the one owner of reading and atomically
writing them (the checkpoint file, a snapshot's state file).

Writes are atomic (temporary file, fsync, rename, fsync of the directory): a
crash leaves either the old or the new content, never half. A file that exists
but does not parse is never guessed around: the error says what to do.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Generic, Protocol, Self, TypeVar

from wpcdc.core.checkpoint import Checkpoint
from wpcdc.core.errors import CheckpointError


class JsonDocument(Protocol):
    """What a :class:`JsonFile` holds: a type that reads and writes itself as JSON."""

    @classmethod
    def from_json(cls, raw: bytes) -> Self: ...

    def to_json(self) -> bytes: ...


D = TypeVar("D", bound=JsonDocument)


class JsonFile(Generic[D]):
    """One JSON document in ``path``, read by ``document_type.from_json`` and written
    by its ``to_json``. A subclass names three class attributes: ``document_type``;
    ``what``, the document in errors ("checkpoint", "snapshot state");
    ``when_damaged``, what the operator does with a file that does not parse.
    """

    document_type: type[D]
    what: str
    when_damaged: str

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> D | None:
        """The document, or None when the file does not exist yet."""
        try:
            raw = self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            # No such file (a part of its directory path being a file also means
            # none: a read-only container may point it anywhere it never writes).
            return None
        except OSError as exc:
            raise CheckpointError(f"cannot read {self.what} {self.path}: {exc.strerror}") from None
        try:
            return self.document_type.from_json(raw)
        except (ValueError, KeyError, TypeError) as exc:
            # Never guess: starting elsewhere would skip or repeat changes.
            raise CheckpointError(
                f"{self.what} {self.path} is damaged ({exc}). {self.when_damaged}"
            ) from None

    def save(self, document: D) -> None:
        try:
            write_atomically(self.path, document.to_json())
        except OSError as exc:
            raise CheckpointError(
                f"cannot write {self.what} {self.path}: {exc.strerror}. "
                "Check the volume is mounted, writable and not full."
            ) from None


class FileCheckpointStore(JsonFile[Checkpoint]):
    """The default checkpoint store: one JSON file (``checkpoint.path``)."""

    document_type = Checkpoint
    what = "checkpoint"
    when_damaged = (
        "Restore it from a backup, or move it away and run "
        "`wpcdc snapshot` to start over from a fresh load."
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data``: temporary file, fsync, rename, fsync of the
    directory. A crash leaves the old content or the new, never half. Raises OSError."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
