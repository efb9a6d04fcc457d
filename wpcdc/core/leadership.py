"""Standby failover (``ha.enabled``), the pure part: the lock's name and the lease.

Several ``wpcdc run`` sharing one checkpoint take turns: the one holding a
server-side lock (``GET_LOCK`` on a dedicated MySQL connection,
:mod:`wpcdc.mysql.lock`) streams, the others stand by. This module owns two
rules the runtime (:mod:`wpcdc.runtime.leader`) applies:

* :func:`lock_name`: every instance sharing a checkpoint derives the same lock
  name from the checkpoint's identity, short enough for the server (MySQL
  refuses user-level lock names longer than 64 characters).
* :class:`Lease`: how long a confirmation that this connection still holds the
  lock is trusted. The server frees the lock of a connection silent for
  ``wait_timeout`` seconds (a leader cut off from the database); the leader
  trusts its last confirmation for only part of that, counted from when the
  confirming query was *sent*, so it stops producing before the server can
  hand the lock to a standby. Time is passed in (``now``), no clock is read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

# MySQL's limit on user-level lock names (ER_USER_LOCK_WRONG_NAME above it);
# MariaDB accepts longer ones, 64 fits both.
MAX_LOCK_NAME: Final = 64
PREFIX: Final = "wpcdc:"
# Hex digits of the identity's digest kept when it must be shortened.
DIGEST_CHARS: Final = 16


def checkpoint_identity(*, database: str, store: str, where: str) -> str:
    """What names one stream's checkpoint: the database streamed, the kind of
    store and where it is (the checkpoint topic and key, or the file's path)."""
    return f"{database}:{store}:{where}"


def lock_name(identity: str) -> str:
    """``wpcdc:<identity>``, or, when that is too long for the server, its start
    followed by a digest of the whole identity (so two long identities sharing a
    prefix still get different names)."""
    name = PREFIX + identity
    if len(name) <= MAX_LOCK_NAME:
        return name
    digest = hashlib.sha256(identity.encode()).hexdigest()[:DIGEST_CHARS]
    keep = MAX_LOCK_NAME - len(PREFIX) - len(digest) - 1
    return f"{PREFIX}{identity[:keep]}~{digest}"


@dataclass(slots=True)
class Lease:
    """Whether this process may act as the leader now.

    ``bound`` is how long a confirmation is trusted. :meth:`confirmed` takes the
    time the confirming query was sent (the server's silence timer restarts no
    earlier than that), :meth:`lose` ends the lease at once (the lock
    connection failed, or the server says another connection holds it).
    """

    bound: float
    _confirmed_at: float | None = None
    _lost: bool = False

    def confirmed(self, sent_at: float) -> None:
        if self._lost:
            return  # a lost lease never comes back: a new term takes a new lease
        if self._confirmed_at is None or sent_at > self._confirmed_at:
            self._confirmed_at = sent_at

    def lose(self) -> None:
        self._lost = True

    @property
    def lost(self) -> bool:
        return self._lost

    def valid(self, now: float) -> bool:
        """True while the last confirmation is younger than ``bound`` and the
        lease was not lost."""
        if self._lost or self._confirmed_at is None:
            return False
        return now - self._confirmed_at < self.bound

    def expires_in(self, now: float) -> float:
        """Seconds until the lease runs out without a new confirmation (0 if it has)."""
        if self._lost or self._confirmed_at is None:
            return 0.0
        return max(self._confirmed_at + self.bound - now, 0.0)


def fence_after(lease_seconds: int) -> float:
    """How long the leader trusts a confirmation: half the server's silence
    timeout, leaving the other half for the pipeline to stop."""
    return lease_seconds / 2
