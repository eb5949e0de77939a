"""The ``teledrop`` command: the server side (serve, gc, plugins, verify, config, token,
migrate) and the client (upload, delete, info; the HTTP work is in :mod:`teledrop.client`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import click

from teledrop import composition
from teledrop.client import (
    DEFAULT_SERVER,
    Client,
    ClientError,
    ProgressLine,
    RetryPolicy,
    Source,
    UploadOptions,
    ignore,
    locate,
    normalize_server,
    printable,
)
from teledrop.composition import PluginTeledrop
from teledrop.core.config import Config, load_config
from teledrop.core.drop import iso
from teledrop.core.effective import effective_settings, render
from teledrop.core.errors import StartupError, TeledropError
from teledrop.core.gc import DEFAULT_STAGING_AGE, collect
from teledrop.core.migrate import Migration
from teledrop.core.owners import create_token, revoke_token
from teledrop.core.units import format_size, parse_duration
from teledrop.core.verify import verify as verify_drops
from teledrop.direct_client import DEFAULT_PARALLEL
from teledrop.metrics import gc_removed_counter, use_configured_dir
from teledrop.plugins.manager import blocked_names, describe_plugins
from teledrop.uploader import Uploader

CONFIG_OPTION = click.option("--config", "config_path", metavar="FILE",
                             help="teledrop config file (default: $TELEDROP_CONFIG, "
                                  "else conf/teledrop.toml when present)")


def _config(path: str | None, environ: Mapping[str, str] | None = None) -> Config:
    try:
        return load_config(path, environ)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _service(path: str | None, environ: Mapping[str, str] | None = None,
             ) -> Iterator[PluginTeledrop]:
    """The service of the config at ``path`` with the ``environ`` overrides (default: the
    process's environment)."""
    try:
        service = composition.start(_config(path, environ))
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield service
    except TeledropError as exc:  # a backend refusing or failing, at any step of the command
        raise click.ClickException(exc.message) from None
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
    Examples:
      teledrop serve --config /etc/teledrop/teledrop.toml
      TELEDROP_SERVER__BIND=0.0.0.0:8000 teledrop serve
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

    Safe to run while the server runs, with an age D longer than an upload may go silent
    (limits.idle_timeout) or take to commit: the default 1h is. A shorter D, down to 0s,
    also removes uploads in flight; use it only while none is (after a crash, say).

    \b
    Examples:
      teledrop gc --dry-run
      teledrop gc --staging-older-than 30m
      # cron, every 10 minutes:
      */10 * * * *  teledrop gc --config /etc/teledrop/teledrop.toml
    """
    prefix = "would remove" if dry_run else "removed"
    count = 0
    with _service(config_path) as service:
        if older_than < service.config.limits.idle_timeout:
            click.echo(f"warning: --staging-older-than {older_than}s is under "
                       f"limits.idle_timeout ({service.config.limits.idle_timeout}s): uploads "
                       "in flight may be removed too", err=True)
        # Counted into the server's metrics when the config names a shared metrics_dir.
        counter = gc_removed_counter() \
            if not dry_run and use_configured_dir(service.config) else None
        for removal in collect(service, older_than, dry_run):
            click.echo(f"{prefix} {removal}")
            count += 1
            if counter is not None:
                counter.labels(kind=removal.kind).inc()
    click.echo(f"{prefix} {count} item(s)")


@main.group()
def token() -> None:
    """Manage the token store: upload tokens that name their owner.

    A drop uploaded with a token belongs to its owner, who can list, edit and delete it
    (GET/PATCH /api/drops). Only a hash of each token is stored.

    \b
    Examples:
      teledrop token create alice
      teledrop token list
      teledrop token revoke alice
    """


@token.command(name="create")
@CONFIG_OPTION
@click.argument("name")
def token_create(config_path: str | None, name: str) -> None:
    """Create a token for NAME and print it, once (only its hash is kept).

    \b
    Example:
      TOKEN=$(teledrop token create alice)
    """
    with _service(config_path) as service:
        secret = create_token(service, name)
    click.echo(secret)
    click.echo(f"token for {name!r} created: keep it now, it is not shown again", err=True)


@token.command(name="list")
@CONFIG_OPTION
def token_list(config_path: str | None) -> None:
    """List the stored tokens' names and creation times (never the tokens).

    \b
    Example:
      teledrop token list
    """
    with _service(config_path) as service:
        records = service.metadata.list_tokens()
    for record in records:
        click.echo(f"{record.name}  created {iso(record.created_at)}")


@token.command(name="revoke")
@CONFIG_OPTION
@click.argument("name")
def token_revoke(config_path: str | None, name: str) -> None:
    """Revoke NAME's token: it stops working at once (its drops stay).

    \b
    Example:
      teledrop token revoke alice
    """
    with _service(config_path) as service:
        revoke_token(service, name)
    click.echo(f"revoked {name}")


@main.command()
@CONFIG_OPTION
def plugins(config_path: str | None) -> None:
    """List loaded plugins, where each comes from and the hooks it implements.

    \b
    Examples:
      teledrop plugins --config /etc/teledrop/teledrop.toml
      TELEDROP_PLUGINS__DISABLED='["default_auth"]' teledrop plugins
    """
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
    missing.

    \b
    Examples:
      teledrop verify --config /etc/teledrop/teledrop.toml
      teledrop verify --slug k3Xq9vPa
    """
    bad = 0
    with _service(config_path) as service:
        for finding in verify_drops(service, slug):
            if not finding.ok:
                bad += 1
            click.echo(f"{finding.status:8} {finding.slug} {finding.detail}".rstrip())
    if bad:
        click.echo(f"{bad} drop(s) corrupt or missing", err=True)
        sys.exit(1)


@main.command(name="config")
@CONFIG_OPTION
def show_config(config_path: str | None) -> None:
    """Print the effective configuration (secrets masked) and where each value came from:
    the config file, an env variable, or the default.

    \b
    Examples:
      teledrop config --config /etc/teledrop/teledrop.toml
      TELEDROP_SERVER__WORKERS=4 teledrop config
    """
    config = _config(config_path)
    try:
        _, settings = composition.load_plugins(config)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"# config file: {config.path or 'none (defaults)'}")
    click.echo(render(effective_settings(config, settings)), nl=False)


@main.command()
@CONFIG_OPTION
@click.option("--to", "target_path", required=True, metavar="FILE",
              help="the config file whose backends receive the drops (read alone: "
                   "TELEDROP_* variables do not apply to it)")
@click.option("--dry-run", is_flag=True,
              help="list what would be copied or skipped, write nothing")
@click.option("--progress/--no-progress", default=None,
              help="draw a progress bar on stderr  [default: when stderr is a terminal]")
@click.pass_context
def migrate(ctx: click.Context, config_path: str | None, target_path: str, dry_run: bool,
            progress: bool | None) -> None:
    """Copy every live drop (its file and whole record, under the same slug, so links
    keep working) and the token store from this config's backends to those of the
    config file given with --to.

    Each file is streamed and its hash checked before it is published in the target.
    Run it again to resume: a drop already in the target with the same hash is skipped,
    and a slug the target holds with another file is a failure, never overwritten.
    Expired and exhausted drops are not copied. Prints one line per failure and a
    summary; exit status 1 if anything failed (in a dry run: would fail).

    \b
    Examples:
      teledrop migrate --to /etc/teledrop/scale-out.toml --dry-run
      teledrop migrate --config /etc/teledrop/teledrop.toml --to /etc/teledrop/scale-out.toml
    """
    with _service(config_path) as source, _service(target_path, environ={}) as target:
        migration = Migration(source, target)
        with ExitStack() as stack:
            bar = None
            if not dry_run and (sys.stderr.isatty() if progress is None else progress):
                bar = ProgressLine(sys.stderr, "migrate", migration.total_bytes)
                stack.callback(bar.finish)
            for outcome in migration.run(dry_run, bar.update if bar else None):
                if outcome.failed and bar:
                    bar.print_above(outcome.describe())
                elif outcome.failed or dry_run:
                    click.echo(outcome.describe(dry_run), err=outcome.failed)
    for line in migration.tally.describe(dry_run):
        click.echo(line)
    if migration.tally.failed:
        ctx.exit(1)


# -- the client ----------------------------------------------------------------------------

def _server_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return normalize_server(value)
    except ClientError as exc:
        raise click.BadParameter(exc.message) from None


SERVER_OPTION = click.option("--server", metavar="URL", default=DEFAULT_SERVER,
                             envvar="TELEDROP_URL", show_envvar=True, show_default=True,
                             callback=_server_url, help="the teledrop server")


@contextmanager
def _reporting() -> Iterator[None]:
    """A failed request ends the command with its one-line reason."""
    try:
        yield
    except ClientError as exc:
        raise click.ClickException(exc.message) from None


def _label(path: str, name: str | None) -> str:
    return name or ("stdin" if path == "-" else path)


def _upload_one(uploader: Uploader, path: str, name: str | None, options: UploadOptions,
                progress: bool) -> dict[str, Any]:
    with ExitStack() as stack:
        if path == "-":
            source = Source(sys.stdin.buffer, name, None)
        else:
            try:
                source = Source.open(path, name)
            except OSError as exc:
                raise ClientError(f"cannot read it: {exc.strerror or exc}") from None
            stack.callback(source.stream.close)
        bar = None
        if progress:
            bar = ProgressLine(sys.stderr, os.path.basename(_label(path, name)), source.size)
            stack.callback(bar.finish)  # on failure too: the error then starts a fresh line
        uploader.notify = bar.print_above if bar else lambda text: click.echo(text, err=True)
        drop = uploader.upload(source, options, bar.update if bar else ignore,
                               bar.begin_at if bar else ignore,
                               None if path == "-" else path)
    if not isinstance(drop.get("url"), str):
        raise ClientError("the server's answer has no link: is this a teledrop server?")
    return drop


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...",
                type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@SERVER_OPTION
@click.option("--token", metavar="T", envvar="TELEDROP_TOKEN", show_envvar=True,
              help="upload token, when the server requires one")
@click.option("--expires", metavar="D",
              help="lifetime: seconds, or a number with s m h d  [default: the server's]")
@click.option("--max-downloads", type=click.IntRange(min=1), metavar="N",
              help="gone after N downloads")
@click.option("--slug", metavar="S", help="a custom slug (one file only)")
@click.option("--name", metavar="NAME",
              help="the filename to record (one file only)  [default: the file's name]")
@click.option("--password", metavar="P", envvar="TELEDROP_DROP_PASSWORD", show_envvar=True,
              help="a password the drop asks for before it is downloaded (sent in a "
                   "header, never in a URL)")
@click.option("--json", "as_json", is_flag=True,
              help="print each drop as one line of JSON, its delete_token included")
@click.option("--progress/--no-progress", default=None,
              help="draw a progress bar on stderr  [default: when stderr is a terminal]")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="send files so that a dropped connection or a re-run continues where "
                   "it stopped (direct or tus upload, when the server offers it); "
                   "--no-resume sends each file in one request")
@click.option("--parallel", type=click.IntRange(1, 64), default=DEFAULT_PARALLEL,
              show_default=True, metavar="N", help="parts sent at once in a direct upload")
@click.option("--retries", type=click.IntRange(1, 100), default=RetryPolicy.attempts,
              show_default=True, metavar="N",
              help="tries in a row without progress before an upload gives up")
@click.pass_context
def upload(ctx: click.Context, files: tuple[str, ...], server: str, token: str | None,
           expires: str | None, max_downloads: int | None, slug: str | None,
           name: str | None, password: str | None, as_json: bool, progress: bool | None,
           resume: bool, parallel: int, retries: int) -> None:
    """Upload each FILE and print its link, one per line. '-' reads stdin.

    Files are streamed, never read whole. A FILE that does not exist stops the command
    before anything is sent (exit status 2). When an upload fails, the server's reason goes
    to stderr and the next file is sent; the exit status is then 1. --json prints each
    drop in full, its delete token included.

    When the server offers it, a file goes by direct upload (in parts, --parallel at
    once, straight to the server's bucket) or else over tus; after a dropped connection
    the upload continues from what the server already has, backing off between tries,
    and gives up after --retries tries in a row without progress. Run the same command
    again (after a failure, a crash or Ctrl-C) and it continues too: the unfinished upload
    is remembered in $XDG_STATE_HOME/teledrop/uploads until it succeeds. stdin is always
    sent in one request.

    \b
    Examples:
      teledrop upload report.pdf
      teledrop upload --expires 1d --max-downloads 1 secret.tar.gz
      teledrop upload --slug q3-report --server https://drop.example.org report.pdf
      tar cz photos/ | teledrop upload --name photos.tar.gz -
      TELEDROP_URL=https://drop.example.org TELEDROP_TOKEN=s3cret teledrop upload *.log
      teledrop upload --json notes.txt    # {"slug": ..., "delete_token": ...}
      teledrop upload --parallel 8 backup.tar    # 8 parts at once
    """
    if len(files) > 1 and (slug or name):
        raise click.UsageError("--slug and --name name one drop: give one file only")
    if files.count("-") > 1:
        raise click.UsageError("stdin ('-') can be uploaded once")
    show = sys.stderr.isatty() if progress is None else progress
    options = UploadOptions(expires=expires, max_downloads=max_downloads, slug=slug,
                            password=password)
    failed = 0
    with Client(server, token) as client:
        uploader = Uploader(client, resume, parallel, RetryPolicy(attempts=retries))
        for path in files:
            try:
                drop = _upload_one(uploader, path, name, options, show)
            except ClientError as exc:
                failed += 1
                click.echo(f"Error: {_label(path, name)}: {exc.message}", err=True)
                continue
            except KeyboardInterrupt:
                click.echo(f"interrupted: run the same command again to continue "
                           f"{_label(path, name)} where it stopped", err=True)
                ctx.exit(130)
            click.echo(json.dumps(drop) if as_json else printable(drop["url"]))
    if failed:
        ctx.exit(1)


@main.command()
@click.argument("link")
@SERVER_OPTION
@click.option("--token", metavar="T", required=True,
              help="the drop's delete token (upload --json prints it)")
def delete(link: str, server: str, token: str) -> None:
    """Delete a drop: its file and its record. LINK is a link as upload printed it (with
    or without a /NAME after the slug), or a slug on --server (after '--' when it starts
    with '-').

    \b
    Examples:
      teledrop delete https://drop.example.org/k3Xq9vPa --token 6f1cE0...
      teledrop delete --server https://drop.example.org --token 6f1cE0... -- -k3Xq9vP
    """
    with _reporting():
        base, slug = locate(link, server)
        with Client(base) as client:
            client.delete(slug, token)
    click.echo(f"deleted {slug}")


def _size_text(size: object) -> str:
    if not isinstance(size, int):
        return "?"
    return f"{size} bytes" if size < 1024 else f"{format_size(size)} ({size} bytes)"


def _summary(drop: dict[str, Any]) -> list[tuple[str, str]]:
    limit = drop.get("max_downloads")
    downloads = drop.get("downloads", "?")
    return [
        ("link", str(drop.get("url", "?"))),
        ("filename", str(drop.get("filename", "?"))),
        ("size", _size_text(drop.get("size"))),
        ("type", str(drop.get("content_type", "?"))),
        ("hash", str(drop.get("hash", "?"))),
        ("created", str(drop.get("created_at", "?"))),
        ("expires", str(drop.get("expires_at") or "never")),
        ("downloads", f"{downloads} of {limit}" if limit is not None
         else f"{downloads} (no limit)"),
    ]


@main.command()
@click.argument("link")
@SERVER_OPTION
@click.option("--json", "as_json", is_flag=True, help="print the server's JSON as it is")
def info(link: str, server: str, as_json: bool) -> None:
    """Show a drop's metadata: name, size, hash, expiry, downloads. LINK is a link as
    upload printed it (with or without a /NAME after the slug), or a slug on --server
    (after '--' when it starts with '-'). Never downloads the file.

    \b
    Examples:
      teledrop info https://drop.example.org/k3Xq9vPa
      teledrop info k3Xq9vPa --server https://drop.example.org --json
    """
    with _reporting():
        base, slug = locate(link, server)
        with Client(base) as client:
            drop = client.info(slug)
    if as_json:
        click.echo(json.dumps(drop))
        return
    for label, value in _summary(drop):
        click.echo(f"{label + ':':<11}{printable(value)}")
