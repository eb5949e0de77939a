"""The ``teledrop`` command: serve, gc, plugins, verify, config."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from teledrop.core.config import Config, load_config
from teledrop.core.effective import effective_settings, render
from teledrop.core.errors import StartupError, TeledropError
from teledrop.core.gc import DEFAULT_STAGING_AGE, collect
from teledrop.core.service import Teledrop, plugin_settings
from teledrop.core.units import parse_duration
from teledrop.core.verify import verify as verify_drops
from teledrop.plugins.manager import blocked_names, describe_plugins, make_plugin_manager

CONFIG_OPTION = click.option("--config", "config_path", metavar="FILE",
                             help="teledrop config file (default: $TELEDROP_CONFIG, "
                                  "else conf/teledrop.toml when present)")


def _config(path: str | None) -> Config:
    try:
        return load_config(path)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _service(path: str | None) -> Iterator[Teledrop]:
    try:
        service = Teledrop.start(_config(path))
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield service
    finally:
        service.close()


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
@click.version_option(package_name="teledrop")
def main() -> None:
    """teledrop: a self-hosted file drop."""


@main.command()
@CONFIG_OPTION
def serve(config_path: str | None) -> None:
    """Run teledrop under gunicorn with the config's [server] settings.

    \b
    Example:
      teledrop serve --config /etc/teledrop.toml
    """
    from teledrop.server import serve as run

    run(config_path)


@main.command()
@CONFIG_OPTION
@click.option("--staging-older-than", "older_than", default=str(DEFAULT_STAGING_AGE),
              callback=_duration, metavar="D", show_default="1h",
              help="age after which unpublished uploads and record-less files are debris")
@click.option("--dry-run", is_flag=True, help="print what would be removed, remove nothing")
def gc(config_path: str | None, older_than: int, dry_run: bool) -> None:
    """Remove expired and exhausted drops, staging debris and record-less files.

    Safe to run while the server runs.

    \b
    Example (cron, every 10 minutes):
      */10 * * * *  teledrop gc --config /etc/teledrop.toml
    """
    prefix = "would remove" if dry_run else "removed"
    count = 0
    with _service(config_path) as service:
        try:
            for removal in collect(service, older_than, dry_run):
                click.echo(f"{prefix} {removal}")
                count += 1
        except TeledropError as exc:
            raise click.ClickException(exc.message) from None
    click.echo(f"{prefix} {count} item(s)")


@main.command()
@CONFIG_OPTION
def plugins(config_path: str | None) -> None:
    """List loaded plugins, where each comes from and the hooks it implements."""
    with _service(config_path) as service:
        for info in describe_plugins(service.pm):
            click.echo(f"{info.name}  [{info.source}]")
            for hook in info.hooks:
                click.echo(f"    {hook}")
        for name in blocked_names(service.pm):
            click.echo(f"{name}  [disabled]")


@main.command()
@CONFIG_OPTION
@click.option("--slug", help="check one drop only")
def verify(config_path: str | None, slug: str | None) -> None:
    """Re-hash stored files against their records; exit status 1 if any is corrupt or
    missing."""
    bad = 0
    with _service(config_path) as service:
        try:
            for finding in verify_drops(service, slug):
                if not finding.ok:
                    bad += 1
                click.echo(f"{finding.status:8} {finding.slug} {finding.detail}".rstrip())
        except TeledropError as exc:
            raise click.ClickException(exc.message) from None
    if bad:
        click.echo(f"{bad} drop(s) corrupt or missing", err=True)
        sys.exit(1)


@main.command(name="config")
@CONFIG_OPTION
def show_config(config_path: str | None) -> None:
    """Print the effective configuration (secrets masked) and where each value came from:
    the config file, an env variable, or the default.

    \b
    Example:
      TELEDROP_SERVER__WORKERS=4 teledrop config --config /etc/teledrop.toml
    """
    config = _config(config_path)
    try:
        pm = make_plugin_manager(config.plugins.disabled,
                                 source=config.source_of("plugins.disabled"))
        settings = plugin_settings(pm, config)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"# config file: {config.path or 'none (defaults)'}")
    click.echo(render(effective_settings(config, settings)), nl=False)
