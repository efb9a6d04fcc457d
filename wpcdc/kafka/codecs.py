"""The producer's compression level: what aiokafka gives no option for.

aiokafka compresses every batch at a fixed level (aiokafka/codec.py, 0.14):
LZ4 at 9, which is LZ4-HC, about ten times slower than LZ4's fast mode for a
few percent of size on wpcdc's JSON events, and gzip at 9. Its record builders
look their encoder up by name in their module, so :func:`use_compression_level`
puts an encoder at ``kafka.compression_level`` there. The bytes stay standard
LZ4 frames, gzip and zstd: any level decodes the same way, on the broker and
in every consumer.

This module owns that replacement; :func:`wpcdc.kafka.options.producer_options`
applies it before a producer is built. It is process-wide, as aiokafka's
encoders are: every producer of the process compresses at the level of the
settings applied last (a wpcdc process has one producer configuration).
"""

from __future__ import annotations

import gzip
import importlib
import logging
from collections.abc import Callable
from typing import Any, Final

import cramjam

from wpcdc.config.settings import COMPRESSION_LEVELS

log = logging.getLogger("wpcdc.kafka")

# aiokafka's record builders, each importing the encoders by name.
_BUILDERS: Final = (
    "aiokafka.record.default_records",
    "aiokafka.record._crecords.default_records",
    "aiokafka.record.legacy_records",
)


def level_for(compression: str, level: int) -> int | None:
    """The level ``compression`` runs at for ``kafka.compression_level`` = ``level``
    (0: wpcdc's default); None for a codec that has no levels."""
    if compression not in COMPRESSION_LEVELS:
        return None
    return level or COMPRESSION_LEVELS[compression][0]


def encoder(compression: str, level: int) -> Callable[[Any], bytes]:
    """An encoder for aiokafka's builders: ``compression`` at ``level``."""
    if compression == "lz4":

        def lz4_encode(payload: Any, level: int = level) -> bytes:
            # As aiokafka: no content checksum, independent blocks (KIP-57).
            compressor = cramjam.lz4.Compressor(
                level=level, content_checksum=False, block_linked=False
            )
            compressor.compress(payload)
            return bytes(compressor.finish())

        return lz4_encode
    if compression == "gzip":

        def gzip_encode(payload: Any, compresslevel: int | None = level) -> bytes:
            return gzip.compress(bytes(payload), compresslevel=compresslevel or level, mtime=0)

        return gzip_encode
    if compression == "zstd":

        def zstd_encode(payload: Any, level: int | None = level) -> bytes:
            return bytes(cramjam.zstd.compress(payload, level=level))

        return zstd_encode
    raise ValueError(f"no compression level for {compression!r}")


def use_compression_level(compression: str, level: int) -> None:
    """Make aiokafka's record builders compress ``compression`` at ``level``
    (``kafka.compression_level``; 0: wpcdc's default). No-op for a codec without
    levels; logs, and leaves aiokafka's own level, if its builders moved."""
    effective = level_for(compression, level)
    if effective is None:
        return
    name = f"{compression}_encode"
    replacement = encoder(compression, effective)
    replaced = 0
    for module_name in _BUILDERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # the C builders are optional (AIOKAFKA_NO_EXTENSIONS)
        if hasattr(module, name):
            setattr(module, name, replacement)
            replaced += 1
    if not replaced:
        log.warning(
            "kafka.compression_level is not applied: this aiokafka's record builders "
            "have no %s; batches are compressed at aiokafka's own level",
            name,
        )
