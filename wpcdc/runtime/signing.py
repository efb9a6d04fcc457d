"""Signing what a sink sends: the one place records get their signature header.

This module owns the wrapper that puts :mod:`wpcdc.core.signing` between the
senders (the stream's :class:`~wpcdc.runtime.sender.Sender`, the snapshot) and
the Kafka sink: every record sent through it gets a ``wpcdc-signature`` header,
and the size limit it reports leaves room for that header, so the oversize
policy still fits every signed record under ``kafka.max_message_bytes``.
With no active key (``signing.key_id`` empty) the sink is used as it is.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from wpcdc.config.settings import SigningSettings
from wpcdc.core.records import Headers
from wpcdc.core.signing import Signer
from wpcdc.runtime.sender import Sink

S = TypeVar("S", bound=Sink)


class SigningSink:
    """A :class:`~wpcdc.runtime.sender.Sink` that signs each record before ``inner`` sends it."""

    def __init__(self, inner: Sink, signer: Signer) -> None:
        self._inner = inner
        self._signer = signer
        self._placeholder = signer.placeholder()

    async def send(
        self, key: bytes, value: bytes, headers: Headers | None = None
    ) -> asyncio.Future[None]:
        signed = [*(headers or ()), self._signer.header(key, value)]
        return await self._inner.send(key, value, signed)

    async def flush(self) -> None:
        await self._inner.flush()

    def max_value_size(self, key: bytes, headers: Headers | None = None) -> int:
        return self._inner.max_value_size(key, [*(headers or ()), self._placeholder])


def signed(sink: S, settings: SigningSettings) -> S | SigningSink:
    """``sink``, signing with the active key when ``signing.key_id`` is set."""
    signer = settings.signer()
    return sink if signer is None else SigningSink(sink, signer)
