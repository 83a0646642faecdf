"""Key lifecycle commands, offline (the server stopped): ``reencrypt`` moves every stored
data key onto the newest generation of its KMS key, ``rotate-managed`` gives the AWS
managed keys a new generation on the operator's demand (tenants cannot rotate them).
Each is audited before it changes anything (server/operator_audit.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from strongroom.cli.operator import err, lock_data_dir, recover_offline
from strongroom.keys import providers
from strongroom.keys.envelope import Barrier

T = TypeVar("T")

DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The data directory (its server must be stopped).",
)


def run_reencrypt(data_dir: Path, root_key: bytes, *, as_json: bool) -> None:
    """Re-wrap every secret version's data key under its key's newest generation, with a
    progress bar (or, with ``as_json``, one JSON line with the counts)."""
    from strongroom.secrets.reencrypt import ReencryptError, reencrypt, sealed_versions
    from strongroom.server.operator_audit import REENCRYPT, operator_audit
    from strongroom.store.engine import Store, sqlite_url

    store = Store(sqlite_url(data_dir))
    try:
        store.migrate()
        total = sealed_versions(store)
        with operator_audit(data_dir, root_key) as audit:
            # Durable before the first batch commits; a failure corrects it.
            event = audited(lambda: audit.record(REENCRYPT, {"secretVersions": total}))
            columns = (TextColumn("Re-encrypting"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, console=err, disable=as_json, transient=False) as progress:
                task = progress.add_task("versions", total=total)
                try:
                    outcome = reencrypt(
                        store,
                        Barrier(root_key),
                        progress=lambda done: progress.advance(task, done),
                    )
                except ReencryptError as problem:
                    audit.correct(event, problem)
                    raise click.ClickException(
                        f"re-encryption stopped: {problem}; run `strongroom reencrypt` again"
                    ) from None
                except BaseException as problem:
                    audit.correct(event, problem)
                    raise
    finally:
        store.dispose()
    if as_json:
        document = {"reencrypted": outcome.rewrapped, "already_current": outcome.current}
        click.echo(json.dumps(document))
    else:
        err.print(
            f"[bold green]Re-encrypted[/] {outcome.rewrapped} secret version(s) under the newest "
            f"key material ({outcome.current} already were)."
        )


def audited(record: Callable[[], T]) -> T:
    """``record()``, the audit record of an offline command; the command stops, having
    changed nothing, when it cannot be written."""
    from strongroom.audit.log import AuditWriteError

    try:
        return record()
    except AuditWriteError as problem:
        raise click.ClickException(
            f"the audit record could not be written ({problem}); nothing was changed"
        ) from None


def _current_root_key(data_dir: Path) -> bytes:
    from strongroom.server.deployment import is_initialized

    if not is_initialized(data_dir):
        raise click.ClickException(f"{data_dir} is not a Strongroom data directory")
    try:
        return recover_offline(data_dir, providers.read_seal(data_dir))
    except providers.SealError as problem:
        raise click.ClickException(f"cannot recover the root key: {problem}") from None


@click.command(short_help="Re-wrap every stored data key under the newest key material.")
@DATA_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
def reencrypt(data_dir: Path, as_json: bool) -> None:
    """Re-wrap the data key of every secret version under the newest material generation
    of its KMS key (offline: stop the server first). Run it after `rekey` or
    `rotate-managed`; safe to run again after an interruption.

    Secret values are not decrypted and keep their data keys; afterwards no stored secret
    value needs older key material. Ciphertexts returned by the KMS Encrypt API are held
    by their callers and still name the generation that made them."""
    lock = lock_data_dir(data_dir)
    try:
        run_reencrypt(data_dir, _current_root_key(data_dir), as_json=as_json)
    finally:
        lock.release()


@click.command(
    "rotate-managed",
    short_help="Give every AWS managed KMS key new material (offline).",
)
@DATA_DIR
@click.option(
    "--reencrypt/--no-reencrypt",
    "then_reencrypt",
    default=False,
    help="Then re-wrap every stored data key under the new material.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def rotate_managed_keys(data_dir: Path, then_reencrypt: bool, as_json: bool) -> None:
    """Rotate the AWS managed KMS keys (aws/secretsmanager in every account and region)
    now, as AWS does yearly by itself: each gets a new material generation, which new
    data keys use; older generations stay for decryption. Tenants cannot do this through
    the KMS API (RotateKeyOnDemand on an AWS managed key is refused, as on AWS)."""
    from strongroom.clock import SystemClock, now_ms
    from strongroom.keys.generations import OPERATOR, add_generation_to_keys
    from strongroom.server.operator_audit import ROTATE_MANAGED, operator_audit
    from strongroom.store.engine import Store, sqlite_url

    lock = lock_data_dir(data_dir)
    try:
        root_key = _current_root_key(data_dir)
        store = Store(sqlite_url(data_dir))
        try:
            store.migrate()
            with operator_audit(data_dir, root_key) as audit:
                event: dict[str, Any] = {}
                try:
                    with store.write() as conn:
                        rotated = add_generation_to_keys(
                            conn,
                            Barrier(root_key),
                            now_ms(SystemClock()),
                            OPERATOR,
                            aws_managed_only=True,
                        )
                        # Durable before the commit; if it cannot be written, rolled back.
                        event = audited(
                            lambda: audit.record(ROTATE_MANAGED, {"rotatedKeys": rotated})
                        )
                except BaseException as problem:
                    if event:
                        audit.correct(event, problem)
                    raise
        finally:
            store.dispose()
        if as_json:
            click.echo(json.dumps({"rotated": rotated}))
        else:
            err.print(f"[bold green]Rotated[/] {rotated} AWS managed key(s).")
        if then_reencrypt:
            run_reencrypt(data_dir, root_key, as_json=as_json)
    finally:
        lock.release()


COMMANDS = (reencrypt, rotate_managed_keys)
