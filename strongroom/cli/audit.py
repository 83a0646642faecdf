"""``strongroom audit``: verify and read the audit trail of a data directory.

Both work on the files alone, without the root key or a running server.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="The data directory whose audit/ to read.",
)
MAX_SHOWN = 20


def _audit_dir(data_dir: Path) -> Path:
    audit_dir = data_dir / "audit"
    if not audit_dir.is_dir():
        raise click.ClickException(f"{data_dir} has no audit directory (nothing was audited yet)")
    return audit_dir


@click.group()
def audit() -> None:
    """Verify and read the audit trail (every request, allowed or denied)."""


@audit.command()
@DATA_DIR
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="The digest signing key (PEM) kept somewhere safe [default: audit/signing-key.pub].",
)
@click.option(
    "--fingerprint",
    default=None,
    help="The signing key's fingerprint (64 hex digits, as ListPublicKeys and digests give "
    "it), recorded somewhere the audit directory's editors cannot reach.",
)
@click.option(
    "--endpoint",
    default=None,
    help="A Strongroom server URL: the keys are fetched with CloudTrail's ListPublicKeys "
    "(credentials and region from the usual AWS environment).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def verify(
    data_dir: Path,
    public_key: Path | None,
    fingerprint: str | None,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Check every hash chain, digest signature and signed byte range, the digests'
    periods, the links between writers and the registry of writers in the database.

    The key is anchored outside the audit directory: --endpoint, --public-key or
    --fingerprint, else the database's registry of writers; the signing-key.pub beside
    the logs alone is a loud warning. Exits 0 when the log is intact (an unsigned tail
    after the last digest is only a warning: the server is running, or crashed), 1 when
    anything was altered, removed or reordered; the first bad record is named.
    """
    from strongroom.audit.signing import read_public_key
    from strongroom.audit.verify import verify_audit

    audit_dir = _audit_dir(data_dir)
    key = None
    if public_key is not None:
        try:
            key = read_public_key(public_key)
        except ValueError as problem:
            raise click.ClickException(str(problem)) from problem
    if fingerprint is not None and not re.fullmatch(r"[0-9a-f]{64}", fingerprint.lower()):
        raise click.ClickException("--fingerprint must be 64 hex digits")
    trusted = _served_keys(endpoint) if endpoint else None
    result = verify_audit(
        audit_dir,
        key,
        trusted=trusted,
        anchor=f"ListPublicKeys at {endpoint}" if endpoint else None,
        fingerprint_given=fingerprint.lower() if fingerprint else None,
        registry=_registry(data_dir),
    )
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        sys.exit(0 if result.ok else 1)
    out = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"Audit trail in {audit_dir}", title_justify="left")
    for column in ("writer", "files", "records", "sequences", "digests", "signed through"):
        table.add_column(column, justify="left" if column == "writer" else "right")
    table.add_column("unsigned tail", justify="right")
    table.add_column("status")
    for writer in result.writers:
        sequences = (
            f"{writer.first_sequence}..{writer.last_sequence}"
            if writer.first_sequence is not None
            else "-"
        )
        colour = "red" if writer.errors else ("yellow" if writer.warnings else "green")
        table.add_row(
            writer.writer,
            str(writer.files),
            str(writer.records),
            sequences,
            str(writer.digests),
            "-" if writer.signed_through is None else str(writer.signed_through),
            str(writer.tail_records),
            f"[{colour}]{writer.status}[/]",
        )
    out.print(table)
    click.echo(f"key anchored on: {result.anchor}")
    if result.public_key_fingerprint:
        click.echo(f"signing key fingerprint: {result.public_key_fingerprint}")
    first = result.first_error
    if first is not None:
        click.echo(click.style(f"FIRST BAD RECORD: {first}", fg="red", bold=True))
        for finding in result.errors[1 : MAX_SHOWN + 1]:
            click.echo(click.style(f"error: {finding}", fg="red"))
        if len(result.errors) > MAX_SHOWN + 1:
            click.echo(f"... and {len(result.errors) - MAX_SHOWN - 1} more error(s)")
    for finding in result.warnings[:MAX_SHOWN]:
        click.echo(click.style(f"warning: {finding}", fg="yellow"))
    records = sum(w.records for w in result.writers)
    if result.ok:
        click.echo(
            click.style("intact", fg="green", bold=True)
            + f": {records} record(s) from {len(result.writers)} writer(s)"
            + (f", {len(result.warnings)} warning(s)" if result.warnings else "")
        )
        sys.exit(0)
    click.echo(
        click.style("FAILED", fg="red", bold=True)
        + f": {len(result.errors)} problem(s) in {records} record(s)"
    )
    sys.exit(1)


def _registry(data_dir: Path) -> list[Any] | None:
    """The writers the data directory's database lists (None: no database or registry)."""
    from strongroom.audit.writers import read_registry
    from strongroom.store.engine import Store, sqlite_url

    if not (data_dir / "strongroom.db").exists():
        return None
    store = Store(sqlite_url(data_dir))
    try:
        return read_registry(store)
    finally:
        store.dispose()


def _served_keys(endpoint: str) -> dict[str, Any]:
    """The audit signing keys a server publishes (CloudTrail ListPublicKeys)."""
    import botocore.session
    from botocore.exceptions import BotoCoreError, ClientError
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from strongroom.audit.signing import fingerprint

    session = botocore.session.get_session()
    client = session.create_client(
        "cloudtrail",
        endpoint_url=endpoint,
        region_name=session.get_config_variable("region") or "us-east-1",
    )
    keys: dict[str, Any] = {}
    try:
        for page in client.get_paginator("list_public_keys").paginate():
            for item in page.get("PublicKeyList", []):
                loaded = load_der_public_key(item["Value"])
                if isinstance(loaded, Ed25519PublicKey):
                    keys[fingerprint(loaded)] = loaded
    except (BotoCoreError, ClientError) as problem:
        raise click.ClickException(f"ListPublicKeys at {endpoint} failed: {problem}") from None
    if not keys:
        raise click.ClickException(f"{endpoint} published no audit signing key")
    return keys


@audit.command()
@DATA_DIR
@click.option(
    "-n",
    "--lines",
    "count",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many of the newest events to show.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing events as they arrive.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between checks with --follow.",
)
def tail(data_dir: Path, count: int, follow: bool, interval: float) -> None:
    """Show the newest events of every writer in time order, one line each:

    time  principal  service:Event  resource  OK | ErrorCode: message
    """
    from strongroom.audit.tail import Follower, format_line, recent

    audit_dir = _audit_dir(data_dir)
    follower = Follower(audit_dir)
    for event in recent(audit_dir, count, upto=follower.positions):
        click.echo(format_line(event))
    if not follow:
        return
    try:
        while True:
            sys.stdout.flush()
            time.sleep(interval)
            for event in follower.poll():
                click.echo(format_line(event))
    except KeyboardInterrupt:
        return
