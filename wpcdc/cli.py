"""The command line: parses options, loads settings, calls the app, maps errors to exit codes.

Only commands that work are registered here; the rest arrive with their issues.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from wpcdc import __version__, report
from wpcdc import app as wpcdc_app
from wpcdc.errors import WpcdcError
from wpcdc.settings import Settings, load_settings

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
    settings = _settings(config)
    results = wpcdc_app.check(settings)
    typer.echo(report.as_json(results) if as_json else report.as_table(results))
    raise typer.Exit(report.exit_code(results))


def main() -> None:
    """Console entry point: run the app, turning WpcdcError into a message and an exit code."""
    # Typer handles usage errors itself (exit 2); ours carry their own exit code.
    try:
        app()
    except WpcdcError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)
