"""kafka.compression_level: aiokafka's builders compress at it, and what they
write reads back with aiokafka's own decoders (as brokers and consumers read it)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import orjson
import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from pydantic import ValidationError

from wpcdc.config.settings import KafkaSettings
from wpcdc.kafka import codecs
from wpcdc.kafka.options import producer_options

CODEC_IDS = {"gzip": 0x01, "lz4": 0x03, "zstd": 0x04}


@pytest.fixture(autouse=True)
def _aiokafka_levels_restored() -> Iterator[None]:
    """Put aiokafka's own encoders back: the replacement is process-wide."""
    saved = []
    for name in codecs._BUILDERS:
        module = importlib.import_module(name)
        for codec in CODEC_IDS:
            encode = getattr(module, f"{codec}_encode", None)
            if encode is not None:
                saved.append((module, f"{codec}_encode", encode))
    yield
    for module, attribute, encode in saved:
        setattr(module, attribute, encode)


def _round_trip(codec: str) -> list[bytes]:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=CODEC_IDS[codec],
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    values = [
        orjson.dumps({"type": "post_updated", "post_id": i, "content": "lorem ipsum " * 80})
        for i in range(50)
    ]
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=None, key=b"1:%d" % offset, value=value, headers=[])
    batch = DefaultRecordBatch(bytes(builder.build()))
    assert batch.compression_type == CODEC_IDS[codec]
    read = [record.value for record in batch]
    assert read == values
    return read


@pytest.mark.parametrize("codec", sorted(CODEC_IDS))
@pytest.mark.parametrize("level", [0, 2])
def test_batches_compressed_at_the_level_read_back_with_aiokafka(codec: str, level: int) -> None:
    producer_options(KafkaSettings(compression=codec, compression_level=level))  # type: ignore[arg-type]
    expected = level or codecs.COMPRESSION_LEVELS[codec][0]
    for name in codecs._BUILDERS:
        encode = getattr(importlib.import_module(name), f"{codec}_encode", None)
        if encode is not None:
            assert encode.__module__ == codecs.__name__
            assert encode.__defaults__ == (expected,)
    _round_trip(codec)


def test_lz4_defaults_to_its_fast_mode_not_aiokafkas_hc_level() -> None:
    assert codecs.level_for("lz4", 0) == 1
    assert codecs.level_for("lz4", 9) == 9
    assert codecs.level_for("snappy", 0) is None


def test_a_level_outside_the_codecs_range_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError) as refused:
        KafkaSettings(compression="gzip", compression_level=12)
    assert "compression_level 12 is out of range for gzip (1-9" in str(refused.value)
    KafkaSettings(compression="zstd", compression_level=12)
    KafkaSettings(compression="snappy", compression_level=5)  # no levels: ignored
