"""Exponential reconnect delays: the waiting schedule between retries.

Pure: it only computes delays; the caller sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 30.0


@dataclass
class Backoff:
    """Exponential reconnect delays: initial, 2x, 4x, ... capped at ``maximum``."""

    initial: float = DEFAULT_BACKOFF_INITIAL
    maximum: float = DEFAULT_BACKOFF_MAX
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {self}")
        self._next = self.initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial
