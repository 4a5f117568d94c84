"""`rules-engine serve` (the HTTP service), `rules-engine openapi`, `rules-engine apikey`.

Heavy imports (FastAPI, uvicorn) happen inside the commands, so the rest of the CLI stays fast.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, _regions_default, main


@main.command()
@click.option("--regions", default=_regions_default, show_default="regions", help="pack directory to serve and watch")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="uvicorn worker processes")
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False), default=None,
              help="API keys file (id, roles, sha256 hash). Without it, only a loopback address is served")
@click.option("--journal", type=click.Path(dir_okay=False), default=None,
              help="decision log: every settlement appended to this hash-chained journal (SQLite)")
@click.option("--journal-key-file", type=click.Path(dir_okay=False), default=None,
              help="masking key: personal fields become keyed pseudonyms (default: redacted)")
@click.option("--journal-sync", type=click.Choice(["FULL", "NORMAL"], case_sensitive=False), default="FULL",
              show_default=True, help="FULL: an answered settlement is on disk (fsync, group-committed)")
@click.option("--journal-retention-days", type=int, default=None, help="default 730 (two years)")
@click.option("--watch-interval", default=2.0, show_default=True, type=float,
              help="seconds between checks of the pack folder (0: no watcher; use POST /v1/admin/reload)")
@click.option("--runtime-dir", type=click.Path(file_okay=False), default=None,
              help="folder for worker coordination files (default: a fresh temporary folder)")
@click.option("--no-cache", is_flag=True, help="do not use the compiled-pack cache")
@click.option("--extension", "extensions", multiple=True, help="module:function adding endpoints (repeatable)")
@click.option("--max-body-bytes", type=int, default=None, help="largest /v1/settle body (default 8 MiB)")
@click.option("--max-lines", type=int, default=None, help="fee lines per claim (default 20,000)")
@click.option("--max-batch-claims", type=int, default=None, help="claims per batch (default 1,000)")
@click.option("--max-inflight", type=int, default=None, help="computations at once per worker (default 8)")
@click.option("--max-pending", type=int, default=None, help="requests holding a body per worker (default 64)")
@click.option("--queue-timeout", type=float, default=None, help="seconds to wait for a slot before 429 (default 2)")
@click.option("--body-timeout", type=float, default=None, help="seconds to receive a whole body before 408 (default 15)")
@click.option("--ssl-certfile", type=click.Path(dir_okay=False, exists=True), default=None, help="TLS certificate (PEM)")
@click.option("--ssl-keyfile", type=click.Path(dir_okay=False, exists=True), default=None, help="TLS private key (PEM)")
@click.option("--access-log", is_flag=True, help="uvicorn's access log too (the service logs one line per request)")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
def serve(regions: str, host: str, port: int, workers: int, keys_file: str | None, journal: str | None,
          journal_key_file: str | None, journal_sync: str, journal_retention_days: int | None, watch_interval: float,
          runtime_dir: str | None, no_cache: bool, extensions: tuple[str, ...], max_body_bytes: int | None,
          max_lines: int | None, max_batch_claims: int | None, max_inflight: int | None, max_pending: int | None,
          queue_timeout: float | None, body_timeout: float | None, ssl_certfile: str | None, ssl_keyfile: str | None, access_log: bool,
          log_level: str) -> None:
    """Serve settlements over HTTP (FastAPI + uvicorn): docs/service.md."""
    from ..service.config import Limits, ServiceConfig
    from ..service.server import LOOPBACK, ServeOptions, StartError, serve as _serve
    if keys_file is None and host not in LOOPBACK:
        click.echo(f"error: serving {host} without API keys; give --keys FILE (make keys with "
                   "'rules-engine apikey new ID --role settle --keys FILE')", err=True)
        sys.exit(EXIT_USAGE)
    if bool(ssl_certfile) != bool(ssl_keyfile):
        click.echo("error: TLS needs both --ssl-certfile and --ssl-keyfile", err=True)
        sys.exit(EXIT_USAGE)
    limits = Limits()
    for name, value in (("max_body_bytes", max_body_bytes), ("max_lines", max_lines),
                        ("max_batch_claims", max_batch_claims), ("max_inflight", max_inflight),
                        ("max_pending", max_pending), ("queue_timeout_s", queue_timeout),
                        ("body_timeout_s", body_timeout)):
        if value is not None:
            if value <= 0:
                click.echo(f"error: --{name.removesuffix('_s').replace('_', '-')} must be positive", err=True)
                sys.exit(EXIT_USAGE)
            setattr(limits, name, value)
    config = ServiceConfig(regions=regions, journal=journal, journal_key_file=journal_key_file,
                           journal_sync=journal_sync.upper(), journal_retention_days=journal_retention_days,
                           keys_file=keys_file, allow_anonymous=keys_file is None, watch_interval_s=watch_interval,
                           runtime_dir=runtime_dir, cache=not no_cache, extensions=list(extensions), limits=limits)
    try:
        _serve(config, ServeOptions(host=host, port=port, workers=workers, ssl_certfile=ssl_certfile,
                                    ssl_keyfile=ssl_keyfile, access_log=access_log, log_level=log_level))
    except StartError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write to this file (default: print)")
@click.option("--check", is_flag=True, help="exit 1 if --output differs from what the app publishes")
def openapi(output: Path | None, check: bool) -> None:
    """The service's OpenAPI document (what GET /openapi.json serves) — schemas/openapi.json."""
    from ..service.openapi import render
    text = render(openapi_app())
    if output is None:
        click.echo(text, nl=False)
        return
    if check:
        same = output.exists() and output.read_text(encoding="utf-8") == text
        if not same:
            click.echo(f"{output} is out of date: run 'rules-engine openapi -o {output}'", err=True)
        sys.exit(EXIT_OK if same else EXIT_PROBLEMS)
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}")


def openapi_app():
    """An app built only for its OpenAPI document: no packs, keys or journal are loaded."""
    from ..service.app import create_app
    from ..service.config import ServiceConfig
    return create_app(ServiceConfig(watch_interval_s=0), document_only=True)


@main.group()
def apikey() -> None:
    """API keys for the service: make one, or hash one for the keys file."""


@apikey.command("new")
@click.argument("key_id")
@click.option("--role", "roles", default="settle", show_default=True, help="settle, admin, or settle,admin")
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="append the key's line to this keys file (created with mode 0600)")
def apikey_new(key_id: str, roles: str, keys_file: Path | None) -> None:
    """Make a key: printed once (give it to the client), only its hash is stored."""
    from ..service.auth import ROLES, KeyFileError, KeyStore, hash_key, new_key
    wanted = [r.strip() for r in roles.split(",") if r.strip()]
    if not wanted or any(r not in ROLES for r in wanted):
        click.echo(f"error: --role takes {' or '.join(ROLES)} (comma-separated)", err=True)
        sys.exit(EXIT_USAGE)
    key = new_key()
    line = f"{key_id} {','.join(wanted)} {hash_key(key)}\n"
    if keys_file is not None:
        if keys_file.exists():
            try:
                KeyStore.load(keys_file)  # never append to a file that is already broken
            except KeyFileError as e:
                click.echo(f"error: {e}", err=True)
                sys.exit(EXIT_PROBLEMS)
            text = keys_file.read_text(encoding="utf-8")
            if any(ln.split()[:1] == [key_id] for ln in text.splitlines() if ln.strip() and not ln.startswith("#")):
                click.echo(f"error: key id '{key_id}' is already in {keys_file}", err=True)
                sys.exit(EXIT_USAGE)
            with open(keys_file, "a", encoding="utf-8") as f:
                f.write(("" if text.endswith("\n") or not text else "\n") + line)
        else:
            fd = os.open(keys_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("# id  roles  sha256 of the key — rules-engine apikey new ID --role settle --keys FILE\n" + line)
        click.echo(f"added '{key_id}' ({','.join(wanted)}) to {keys_file}", err=True)
    else:
        click.echo(f"keys-file line: {line.strip()}", err=True)
    click.echo(key)


@apikey.command("hash")
def apikey_hash() -> None:
    """Read a key on standard input, print its keys-file hash."""
    from ..service.auth import hash_key
    key = sys.stdin.readline().strip()
    if not key:
        click.echo("error: no key on standard input", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(hash_key(key))
