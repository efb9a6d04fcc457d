"""Configuration: the settings models (loading them: :mod:`wpcdc.config.loading`).

Precedence, highest first: environment variables (``WPCDC_`` prefix, ``__`` between
nesting levels, e.g. ``WPCDC_MYSQL__PORT``), then the TOML file, then the defaults
below. The dotted key names (``mysql.port``, ``kafka.topic``, ``checkpoint.path``)
are a contract with users, docs and other tools: rename nothing without a
deprecation path. ``config.example.toml`` documents every key and must stay in
step with this module (a test checks that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from wpcdc.core.fold import FoldConfig
from wpcdc.core.permalinks import LinkRules, Rewrite
from wpcdc.core.signing import Signer

ENV_PREFIX = "WPCDC_"
ENV_NESTED_DELIMITER = "__"
DEFAULT_CONFIG_FILE = Path("wpcdc.toml")


class _Section(BaseModel):
    # Unknown keys are typos more often than not: refuse them instead of ignoring.
    model_config = ConfigDict(extra="forbid", frozen=True)


class MysqlTLS(_Section):
    """TLS to MySQL/MariaDB. Off unless ``enabled`` or a CA file is given."""

    enabled: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    verify_identity: bool = True

    @property
    def active(self) -> bool:
        return self.enabled or self.ca is not None


class MysqlSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = "wpcdc"
    password: SecretStr = SecretStr("")
    database: str = Field(default="wordpress", min_length=1)
    # The id wpcdc registers with when it reads the binlog as a replica. It must
    # differ from the server's own id and from every other replica's.
    server_id: int = Field(default=5400, ge=1, le=2**32 - 1)
    table_prefix: str = Field(default="wp_", pattern=r"^[A-Za-z0-9_]+$")
    connect_timeout: float = Field(default=10.0, gt=0)
    # Which binlog reader decodes the stream: "fast" reads the dump packets itself
    # and decodes row events with per-layout decoders (mysql-replication still
    # decodes what they cannot); "library" reads everything with mysql-replication,
    # a way back should the fast reader misbehave.
    binlog_reader: Literal["fast", "library"] = "fast"
    tls: MysqlTLS = MysqlTLS()


class KafkaTLS(_Section):
    """TLS to the brokers; used when ``kafka.security_protocol`` is SSL or SASL_SSL."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    key_password: SecretStr | None = None
    verify_identity: bool = True


class KafkaSASL(_Section):
    """SASL credentials; used when ``kafka.security_protocol`` is SASL_*."""

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    username: str = ""
    password: SecretStr = SecretStr("")


# kafka.compression_level per codec: (what 0 means, lowest, highest). LZ4 1 is
# its fast mode (cramjam's frame levels 3-12 are LZ4-HC); gzip 6 and zstd 3 are
# Kafka's own defaults (KIP-390). Applied by wpcdc.kafka.codecs.
COMPRESSION_LEVELS: Final = {"lz4": (1, 1, 12), "gzip": (6, 1, 9), "zstd": (3, 1, 22)}


class KafkaSettings(_Section):
    # A comma-separated string, so that one environment variable can hold it.
    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    topic: str = Field(default="wordpress.events", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    client_id: str = "wpcdc"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # Create the topic on start when it is missing, with these settings.
    create_topic: bool = True
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    request_timeout: float = Field(default=30.0, gt=0)
    # Producer tuning. acks is always "all": a checkpoint must never pass an
    # event that a broker failure could still lose.
    # lz4 compresses ~1.5x faster than gzip for a little less ratio: gzip caps the
    # producer at ~25k events/s on 2 cores, lz4 does not (benchmarks/README.md).
    # lz4, zstd and snappy need cramjam (a dependency); gzip is always available.
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    # 0: the codec's fast default (lz4 1, gzip 6, zstd 3). aiokafka alone would
    # compress lz4 at 9 (LZ4-HC), ten times slower for a few percent of size.
    # lz4 1-12, gzip 1-9, zstd 1-22; snappy and none take no level.
    compression_level: int = Field(default=0, ge=0, le=22)
    linger_ms: int = Field(default=20, ge=0)
    # A partition holds about four batches in the pipeline (filling, handed over,
    # queued in aiokafka, in a request), each copied a few times on its way: 256 KiB
    # keeps a bulk job's peak memory near 100 MiB; 1 MiB made it 160-180 MiB, for
    # no throughput measured (benchmarks/README.md, session 7).
    max_batch_bytes: int = Field(default=262_144, ge=1024)
    # The largest record the brokers accept (their message.max.bytes). A larger
    # event is shrunk per the oversize policy (see README) instead of failing.
    max_message_bytes: int = Field(default=1_000_000, ge=10_000)
    # Exactly-once delivery: a transactional producer commits the events and the
    # checkpoint (checkpoint.store = "kafka" only) in one transaction, so a
    # consumer with isolation.level=read_committed sees every change once, also
    # across crashes and restarts. Needs a broker with transactions.
    exactly_once: bool = False
    # The producer's transactional.id; empty means
    # "wpcdc:{checkpoint topic}:{kafka.topic}" (one per checkpoint identity).
    # A second producer with the same id fences the first (it stops).
    transactional_id: str = ""
    # With exactly_once: a transaction is committed this often while events flow;
    # read_committed consumers see events only once committed.
    transaction_interval_ms: int = Field(default=200, ge=10, le=60_000)
    tls: KafkaTLS = KafkaTLS()
    sasl: KafkaSASL = KafkaSASL()

    @property
    def bootstrap_list(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    @model_validator(mode="after")
    def _level_fits_codec(self) -> KafkaSettings:
        if self.compression_level and self.compression in COMPRESSION_LEVELS:
            _, low, high = COMPRESSION_LEVELS[self.compression]
            if not low <= self.compression_level <= high:
                raise ValueError(
                    f"compression_level {self.compression_level} is out of range for "
                    f"{self.compression} ({low}-{high}; 0 for the default)"
                )
        return self

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_") and not self.sasl.username:
            raise ValueError(
                f"security_protocol {self.security_protocol} needs kafka.sasl.username "
                "and kafka.sasl.password"
            )
        return self


class CheckpointSettings(_Section):
    # Where the checkpoint is kept: "file" (a JSON file at `path`, written
    # atomically) or "kafka" (a compacted topic: no volume needed).
    store: Literal["file", "kafka"] = "file"
    # The default checkpoint store is a JSON file, written atomically.
    path: Path = Path("wpcdc-checkpoint.json")
    # With store = "kafka": the topic; empty means "{kafka.topic}.checkpoint".
    topic: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,249}$")
    # Save at least this often while events are being acknowledged, and on shutdown.
    interval_seconds: float = Field(default=2.0, gt=0)


class FoldSettings(_Section):
    """How row changes are grouped into events (see README, "Folding")."""

    # A save is a burst: a group closes once its post was quiet this long...
    quiet_seconds: float = Field(default=0.15, gt=0, le=10)
    # ...and at this age at the latest, however busy the post.
    max_age_seconds: float = Field(default=1.0, gt=0, le=60)
    # Catching up on a backlog: commits (binlog time, whole seconds) further apart
    # than this are different saves. 0 folds only within a transaction.
    window_seconds: int = Field(default=1, ge=0, le=60)
    # Bounds that keep memory flat whatever the transaction size or shape.
    max_changes_per_group: int = Field(default=1000, ge=1)
    max_open_groups: int = Field(default=1000, ge=1)
    max_open_bytes: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)
    # Meta keys that are bookkeeping noise; their changes produce no event.
    ignored_meta_keys: list[str] = [
        "_edit_lock",
        "_edit_last",
        "_pingme",
        "_encloseme",
        "_trackbackme",
        "_wp_old_slug",
        "_wp_old_date",
    ]
    # Post types that never produce events of their own. Revisions fold into
    # their parent post; auto-drafts are reported once first saved.
    ignored_post_types: list[str] = ["revision", "customize_changeset", "oembed_cache"]
    # Report auto-drafts (the empty row the editor creates on "Add New").
    emit_auto_drafts: bool = False

    def to_config(self) -> FoldConfig:
        """The fold's own configuration: the core never sees settings models."""
        return FoldConfig(
            window_seconds=self.window_seconds,
            quiet_seconds=self.quiet_seconds,
            max_age_seconds=self.max_age_seconds,
            max_changes_per_group=self.max_changes_per_group,
            max_open_groups=self.max_open_groups,
            max_open_bytes=self.max_open_bytes,
            ignored_meta_keys=frozenset(self.ignored_meta_keys),
            ignored_post_types=frozenset(self.ignored_post_types),
            emit_auto_drafts=self.emit_auto_drafts,
        )


class EventSettings(_Section):
    # The CloudEvents `source` attribute; empty means "wpcdc://{mysql.host}/{mysql.database}".
    source: str = ""


class MetricsSettings(_Section):
    # Prometheus metrics at http://{host}:{port}/metrics while `wpcdc run` runs.
    # port 0 turns the endpoint off. In a container, listen on 0.0.0.0.
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)
    # The same port answers /healthz and /readyz (README, "Operations").
    # /healthz fails when the event loop has not turned for this long...
    live_max_stall_seconds: float = Field(default=30.0, ge=2)
    # ...and /readyz (besides while starting or reconnecting) when the oldest change
    # not yet acknowledged by the broker was committed longer ago than this.
    ready_max_lag_seconds: float = Field(default=60.0, gt=0)


class LogSettings(_Section):
    # "text": one human line per record; "json": one JSON object per line (time,
    # level, logger, message and context fields such as position, topic, post).
    format: Literal["text", "json"] = "text"


class SigningSettings(_Section):
    """HMAC-SHA256 signatures of the records (README, "Signed events")."""

    # Key id -> secret. Give secrets through the environment, e.g.
    # WPCDC_SIGNING__KEYS='{"2026-01": "..."}'. `wpcdc tail` verifies with them.
    keys: dict[str, SecretStr] = {}
    # The key `wpcdc run` and `wpcdc snapshot` sign with; empty signs nothing.
    key_id: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")

    @model_validator(mode="after")
    def _active_key_is_known(self) -> SigningSettings:
        if self.key_id and self.key_id not in self.keys:
            raise ValueError(
                f"signing.key_id {self.key_id!r} is not one of signing.keys "
                f"({', '.join(sorted(self.keys)) or 'none given'})"
            )
        for key_id, secret in self.keys.items():
            if not key_id or ":" in key_id:
                raise ValueError(f"signing.keys: key id {key_id!r} must be non-empty, without ':'")
            if len(secret.get_secret_value()) < 16:
                raise ValueError(f"signing.keys: the secret of {key_id!r} is shorter than 16 bytes")
        return self

    def secrets(self) -> dict[str, bytes]:
        """Key id -> secret, for verifying (every key, retired ones included)."""
        return {k: v.get_secret_value().encode() for k, v in self.keys.items()}

    def signer(self) -> Signer | None:
        """The signer of the active key; None when nothing is to be signed."""
        if not self.key_id:
            return None
        return Signer(self.key_id, self.keys[self.key_id].get_secret_value().encode())


class HaSettings(_Section):
    """Standby failover: several `wpcdc run` sharing one checkpoint take turns (see
    README, "Standby failover")."""

    # Only the instance holding a MySQL lock (GET_LOCK, no grant needed) streams.
    enabled: bool = False
    # The lock's name; empty: derived from mysql.database and the checkpoint's
    # store (its topic and key, or its file's absolute path).
    lock_name: str = Field(default="", max_length=64)
    # A standby waits this long in each GET_LOCK (a stop is honoured meanwhile).
    poll_seconds: float = Field(default=2.0, gt=0, le=60)
    # The leader confirms it still holds the lock this often.
    check_seconds: float = Field(default=1.0, gt=0, le=30)
    # The lock connection's session wait_timeout: the server frees the lock of a
    # leader silent this long (cut off); the leader stops producing after half of it
    # without a confirmation. A standby takes over within about this.
    lease_seconds: int = Field(default=6, ge=2, le=3600)

    @model_validator(mode="after")
    def _check_within_lease(self) -> HaSettings:
        if self.check_seconds * 2 > self.lease_seconds / 2:
            raise ValueError(
                f"check_seconds ({self.check_seconds:g}) must be at most a quarter of "
                f"lease_seconds ({self.lease_seconds}): the leader must confirm its lock "
                "at least twice before it stops trusting it"
            )
        return self


class PreflightSettings(_Section):
    # How long wpcdc may be stopped (upgrade, outage) before it must resume.
    # `wpcdc check` fails when the server would purge binlogs sooner than that.
    max_downtime_hours: float = Field(default=24.0, gt=0)


class SnapshotSettings(_Section):
    """`wpcdc snapshot`, the initial load (see README, "Snapshot")."""

    # Posts read per query (with their meta and terms) and acknowledged before
    # progress is saved: what a killed snapshot re-sends at most, and what it holds in memory.
    chunk_size: int = Field(default=500, ge=1, le=10_000)
    # Seconds between progress lines when stderr is not a terminal.
    progress_interval_seconds: float = Field(default=5.0, gt=0)


class RewriteSettings(_Section):
    """A custom post type's or taxonomy's ``rewrite`` as registered in PHP."""

    # The URL base; empty: the type or taxonomy name (WordPress's default).
    slug: str = ""
    # Prefix the permalink structure's front (`/blog/` of `/blog/%postname%/`).
    with_front: bool = True
    # Post types: parent slugs in the URL (pages-like). Taxonomies: `rewrite.hierarchical`.
    hierarchical: bool = False
    # False: no public URL (not `public`, or `rewrite => false`); no permalink in events.
    public: bool = True


class LinksSettings(_Section):
    """What WordPress keeps in PHP rather than the database, for the links in events
    (see README, "Links and cache tags"). Unlisted types and taxonomies use
    WordPress's defaults: slug = name, with_front = true."""

    post_types: dict[str, RewriteSettings] = {}
    taxonomies: dict[str, RewriteSettings] = {}

    def to_rules(self) -> LinkRules:
        def rewrite(setting: RewriteSettings) -> Rewrite:
            return Rewrite(
                slug=setting.slug.strip("/") or None,
                with_front=setting.with_front,
                hierarchical=setting.hierarchical,
                public=setting.public,
            )

        return LinkRules(
            post_types={name: rewrite(s) for name, s in self.post_types.items()},
            taxonomies={name: rewrite(s) for name, s in self.taxonomies.items()},
        )


class Settings(BaseSettings):
    """Everything wpcdc can be told. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    mysql: MysqlSettings = MysqlSettings()
    kafka: KafkaSettings = KafkaSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    fold: FoldSettings = FoldSettings()
    events: EventSettings = EventSettings()
    metrics: MetricsSettings = MetricsSettings()
    preflight: PreflightSettings = PreflightSettings()
    snapshot: SnapshotSettings = SnapshotSettings()
    log: LogSettings = LogSettings()
    signing: SigningSettings = SigningSettings()
    ha: HaSettings = HaSettings()
    links: LinksSettings = LinksSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init arguments (see load_settings); putting the
        # environment first makes a variable win over the file, key by key.
        return env_settings, init_settings
