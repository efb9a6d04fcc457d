"""The exception tree and the exit codes it maps to.

    WpcdcError                 anything wpcdc reports to the operator; exit 1
     ├── ConfigError           bad configuration or usage; exit 2
     │    └── SnapshotRefused       a full snapshot would replace the streaming checkpoint
     ├── PreflightFailed       the server or broker is not fit to stream from/to; exit 3
     │    ├── ServerMisconfigured   found while streaming (format not ROW, compressed events)
     │    └── TopicLost             the broker lost records it had acknowledged
     ├── PositionLost          the checkpoint's binlog is gone (purged) or invalid; exit 4
     ├── CheckpointError       the checkpoint store cannot be read or written; exit 5
     ├── DeliveryFailed        the broker did not acknowledge an event (run retries)
     ├── BrokerUnavailable     no broker answered in time (run retries)
     ├── ProducerFenced        another producer took over the transactional id; exit 1
     ├── VerifyFailed          `wpcdc verify` found the topic differs from the database; exit 6
     ├── SnapshotUnfinished    `wpcdc run` while a full snapshot is incomplete; exit 1
     ├── SnapshotInterrupted   `wpcdc snapshot` stopped by a signal (a rerun continues); exit 1
     └── LocalStackError       the embedded local setup (demo, tests) cannot start; exit 1

Every message says what is wrong and what to do next. Exit codes are part of the
interface: scripts and orchestrators act on them, so a code never changes meaning.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_PREFLIGHT = 3
EXIT_POSITION_LOST = 4
EXIT_CHECKPOINT = 5
EXIT_DIFFERENCES = 6


class WpcdcError(Exception):
    """An error wpcdc explains to the operator instead of showing a traceback."""

    exit_code = EXIT_FAILURE


class ConfigError(WpcdcError):
    exit_code = EXIT_CONFIG


class PreflightFailed(WpcdcError):
    exit_code = EXIT_PREFLIGHT


class ServerMisconfigured(PreflightFailed):
    """Seen while streaming: a setting wpcdc needs changed, or events it cannot decode."""


class TopicLost(PreflightFailed):
    """The broker no longer holds records it acknowledged (restarted without its
    data, the topic deleted or recreated): the checkpoint may have passed events
    that are gone, so no retry may go on from it."""


class PositionLost(WpcdcError):
    """Continuity cannot be guaranteed from the saved position: re-snapshot or reset."""

    exit_code = EXIT_POSITION_LOST


class CheckpointError(WpcdcError):
    exit_code = EXIT_CHECKPOINT


class DeliveryFailed(WpcdcError):
    """The broker did not acknowledge a record; `wpcdc run` rebuilds its pipeline
    from the checkpoint (re-sent events keep their ids)."""


class BrokerUnavailable(WpcdcError):
    """No broker answered within the time allowed; the message names them."""


class ProducerFenced(WpcdcError):
    """With ``kafka.exactly_once``: a newer producer with the same transactional id
    started (another `wpcdc run` on the same checkpoint), so this one may write no
    more. No retry: the run stops, and the newer one carries on."""


class VerifyFailed(WpcdcError):
    """The topic does not match the database; the report lists the differences."""

    exit_code = EXIT_DIFFERENCES


class SnapshotRefused(ConfigError):
    """A full snapshot would replace an existing streaming checkpoint; exit 2."""


class SnapshotUnfinished(WpcdcError):
    """`wpcdc run` was started while a full snapshot is incomplete; exit 1."""


class SnapshotInterrupted(WpcdcError):
    """Stopped by a signal between chunks; a rerun continues (full snapshots)."""


class LocalStackError(WpcdcError):
    exit_code = EXIT_FAILURE
