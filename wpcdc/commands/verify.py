"""``wpcdc verify``: settings in, the verification wired and run, the report out.

This module owns the command's wiring: the topic (default ``kafka.topic``),
the streamer's checkpoint as the position the topic must have reached, the
adapters (``wpcdc.mysql.consistent.MysqlDatabase``,
``wpcdc.kafka.topic.KafkaTopic``), what a database failure tells the
operator, and the exit: the report on stdout (text or JSON), then
:class:`~wpcdc.core.errors.VerifyFailed` (exit 6) when posts differ.
"""

from __future__ import annotations

from collections.abc import Callable

from wpcdc.config.settings import Settings
from wpcdc.core.errors import VerifyFailed, WpcdcError
from wpcdc.core.positions import Position
from wpcdc.core.verify_report import VerifyReport
from wpcdc.kafka.topic import KafkaTopic
from wpcdc.mysql.consistent import MysqlDatabase
from wpcdc.mysql.errors import MysqlError, is_access_denied, refused
from wpcdc.runtime.stores import checkpoint_store, close
from wpcdc.runtime.verify import Verification, VerifyOptions


def run(
    settings: Settings,
    *,
    topic: str | None = None,
    blog_id: int | None = None,
    wait: float = 60.0,
    recheck_delay: float = 3.0,
    as_json: bool = False,
    max_report: int = 20,
    echo: Callable[[str], None] = print,
) -> None:
    """Verify the topic (default ``kafka.topic``) against the configured database,
    print the report; raise VerifyFailed when the topic differs."""
    options = VerifyOptions(
        topic=topic or settings.kafka.topic,
        database=settings.mysql.database,
        config=settings.fold.to_config(),
        blog_id=blog_id,
        wait=wait,
        recheck_delay=recheck_delay,
    )
    report = check_topic(settings, options)
    echo(report.as_json(max_report) if as_json else report.as_text(max_report))
    if not report.ok:
        raise VerifyFailed(
            f"{len(report.differences)} posts differ between topic {report.topic} and the database"
        )


def check_topic(settings: Settings, options: VerifyOptions) -> VerifyReport:
    """Verify ``options.topic`` against the configured database."""
    store = checkpoint_store(settings)

    def saved_position() -> Position | None:
        saved = store.load()
        return saved.position if saved is not None else None

    mysql = settings.mysql
    try:
        return Verification(
            database=MysqlDatabase(mysql, options.config),
            topic=KafkaTopic(settings.kafka, options.topic),
            checkpoint=saved_position,
            options=options,
        ).run()
    except MysqlError as exc:
        if is_access_denied(exc):
            raise refused(exc) from None
        message = exc.args[-1] if exc.args else type(exc).__name__
        raise WpcdcError(
            f"cannot read the database at {mysql.host}:{mysql.port}: {message}"
        ) from None
    except OSError as exc:
        raise WpcdcError(f"cannot read the database at {mysql.host}:{mysql.port}: {exc}") from None
    finally:
        close(store)
