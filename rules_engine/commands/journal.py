"""`rules-engine journal …`: verify, show, head, purge, keygen for the hash-chained journal.

Exit codes as everywhere: 0 clean, 1 a problem found (a broken chain), 2 usage (no such file).
"""
from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import click

from ..cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main

KEY_ENV = "RULES_ENGINE_JOURNAL_KEY_FILE"


def read_key_file(path: str | os.PathLike | None) -> bytes | None:
    """The masking key: the stripped bytes of a file (see `rules-engine journal keygen`)."""
    if path is None:
        path = os.environ.get(KEY_ENV) or None
    if path is None:
        return None
    try:
        key = Path(path).read_bytes().strip()
    except OSError as e:
        raise click.UsageError(f"cannot read the journal key file {path}: {e.strerror}") from None
    if len(key) < 16:
        raise click.UsageError(f"the journal key in {path} is too short (at least 16 bytes; use "
                               "'rules-engine journal keygen FILE')")
    return key


def _open(path: Path, key_file: str | None = None):
    from ..journal import Journal, JournalError
    if not path.exists():
        click.echo(f"error: no such journal: {path}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        return Journal(path, create=False, mask_key=read_key_file(key_file))
    except JournalError as e:
        click.echo(f"error {e.code}: {e.message}", err=True)
        sys.exit(EXIT_PROBLEMS)



def echo_entries(entries: list, fmt: str) -> None:
    """Print journal entries (JSON, or one header line and the masked payload each) and exit:
    0 when some were found, 1 when none — shared by `journal show` and `gateway log`."""
    if fmt == "json":
        click.echo(json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=2))
    else:
        for e in entries:
            keys = " ".join(f"{k}={v}" for k, v in e.keys.items())
            click.echo(f"#{e.seq}  {e.time}  {e.kind}  {keys}")
            click.echo(f"    {json.dumps(e.payload, ensure_ascii=False, sort_keys=True)}")
    if not entries:
        click.echo("no entries", err=True)
    sys.exit(EXIT_OK if entries else EXIT_PROBLEMS)

@main.group()
def journal() -> None:
    """The append-only, hash-chained journal (decision log, audit log, consent records)."""


@journal.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--anchor", help="SEQ:HASH recorded earlier (from 'journal head'): proves nothing before it changed")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify(path: Path, anchor: str | None, fmt: str) -> None:
    """Check the whole chain; name the first bad entry (edited, deleted, reordered)."""
    anc = None
    if anchor:
        seq, _, h = anchor.partition(":")
        if not seq.isdigit() or len(h) != 64:
            raise click.UsageError("--anchor is SEQ:HASH, e.g. 1024:3f9a… (64 hex digits)")
        anc = (int(seq), h.lower())
    with _open(path) as j:
        r = j.verify(anchor=anc)
    if fmt == "json":
        click.echo(json.dumps(r.to_dict(), ensure_ascii=False, indent=2))
    elif r.ok:
        span = f"seq {r.first_seq}…{r.last_seq}" if r.entries else "no entries"
        cp = f", from the checkpoint after seq {r.checkpoint['purged_through']}" if r.checkpoint else ""
        click.echo(f"{path}: {r.entries} entries ({span}{cp}) verify — head {r.head_hash}")
    else:
        click.echo(f"{path}: the chain is broken at seq {r.first_bad}", err=True)
        for p in r.problems:
            click.echo(f"  seq {p.seq}: {p.code}: {p.message}", err=True)
    sys.exit(EXIT_OK if r.ok else EXIT_PROBLEMS)


@journal.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--key", "key", help="entries with this key value (any key name), or NAME=VALUE")
@click.option("--last", "last", type=int, default=None, help="the N newest entries (default 20 without --key/--seq)")
@click.option("--seq", "seq", type=int, default=None, help="one entry")
@click.option("--kind", default=None, help="only entries of this kind")
@click.option("--mask-key-file", default=None, help=f"key file, to look up a personal value (or ${KEY_ENV})")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def show(path: Path, key: str | None, last: int | None, seq: int | None, kind: str | None,
         mask_key_file: str | None, fmt: str) -> None:
    """Show entries: the newest, one seq, or those with a key (request id, msgid, mdtrt_id …)."""
    with _open(path, mask_key_file) as j:
        if seq is not None:
            e = j.get(seq)
            entries = [e] if e else []
            if not e:
                click.echo(f"no entry seq {seq} in {path}", err=True)
                sys.exit(EXIT_PROBLEMS)
        elif key is not None:
            name, eq, value = key.partition("=")
            entries = j.find(kind=kind, limit=last or 0, **{name: value}) if eq and name else j.find(
                key, kind=kind, limit=last or 0)
        else:
            entries = [e for e in j.last(last or 20) if kind is None or e.kind == kind]
    echo_entries(entries, fmt)


@journal.command()
@click.argument("path", type=click.Path(path_type=Path))
def head(path: Path) -> None:
    """Print SEQ:HASH of the newest entry — keep it elsewhere, give it to 'verify --anchor'."""
    with _open(path) as j:
        h = j.head()
    if h is None:
        click.echo("empty journal", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"{h[0]}:{h[1]}")


@journal.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--older-than-days", type=int, default=None, help="default: the journal's retention (730 days)")
def purge(path: Path, older_than_days: int | None) -> None:
    """Delete entries older than the retention; a checkpoint keeps the rest verifiable."""
    from ..journal import JournalError
    with _open(path) as j:
        try:
            r = j.purge(older_than_days=older_than_days)
        except JournalError as e:
            click.echo(f"error {e.code}: {e.message}", err=True)
            sys.exit(EXIT_PROBLEMS)
    if r.purged:
        click.echo(f"purged {r.purged} entries through seq {r.purged_through} (older than {r.cutoff}); "
                   f"checkpoint {r.checkpoint_hash}")
    else:
        click.echo(f"nothing older than {r.cutoff}")


@journal.command()
@click.argument("path", type=click.Path(path_type=Path))
def keygen(path: Path) -> None:
    """Write a new random masking key to PATH (mode 0600). Keep it apart from the journal."""
    if path.exists():
        click.echo(f"error: {path} exists; a journal's key cannot change", err=True)
        sys.exit(EXIT_USAGE)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    click.echo(f"wrote a 256-bit key to {path}")
