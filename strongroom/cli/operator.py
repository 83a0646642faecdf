"""Root key and seal commands: ``unseal``, ``seal``, ``status``, ``rekey``, and the
root-key choices shared by ``init`` and ``rekey``."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from strongroom.keys import providers
from strongroom.keys.keyholder import DataDirLock, Keyholder, KeyholderError

out = Console()
err = Console(stderr=True)

DEFAULT_URL = "http://127.0.0.1:8420"
URL_ENV = "STRONGROOM_URL"
NEW_PASSPHRASE_ENV = "STRONGROOM_NEW_PASSPHRASE"  # noqa: S105 - the name of a variable
NEW_PIN_ENV = "STRONGROOM_NEW_PKCS11_PIN"
DEFAULT_SHARES = 5
DEFAULT_THRESHOLD = 3
DEFAULT_KEY_LABEL = "strongroom-root-wrap"

F = TypeVar("F", bound=Callable[..., Any])


# --- choosing a provider (init, rekey) ------------------------------------------------------


def root_key_options(verb: str) -> Callable[[F], F]:
    """The ``--root-key`` option and the provider-specific ones."""

    rekey = verb == "rekey"
    passphrase_env = NEW_PASSPHRASE_ENV if rekey else providers.PASSPHRASE_ENV
    pin_env = f"{NEW_PIN_ENV} or {providers.PIN_ENV}" if rekey else providers.PIN_ENV

    def decorate(command: F) -> F:
        options = [
            click.option(
                "--root-key",
                "provider",
                type=click.Choice(providers.PROVIDERS),
                default="file" if verb == "init" else None,
                required=verb != "init",
                show_default=verb == "init",
                help=("How the new root key is kept" if rekey else "How the root key is kept")
                + ": a key file in the data directory; wrapped under a passphrase "
                + f"({passphrase_env} or a prompt); split into Shamir shares (the server "
                + "starts sealed); or wrapped by an AES key in a PKCS#11 HSM "
                + f"(PIN in {pin_env}).",
            ),
            click.option(
                "--shares",
                type=click.IntRange(1, 255),
                default=None,
                help=f"shamir: how many unseal shares to make [default: {DEFAULT_SHARES}].",
            ),
            click.option(
                "--threshold",
                type=click.IntRange(1, 255),
                default=None,
                help=f"shamir: how many shares unseal [default: {DEFAULT_THRESHOLD}].",
            ),
            click.option(
                "--pkcs11-module",
                type=click.Path(exists=True, dir_okay=False),
                default=None,
                help="pkcs11: the token's PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so).",
            ),
            click.option("--pkcs11-token-label", default=None, help="pkcs11: the token's label."),
            click.option(
                "--pkcs11-key-label",
                default=DEFAULT_KEY_LABEL,
                show_default=True,
                help="pkcs11: label of the AES key in the token that wraps the root key "
                "(created if the token has none).",
            ),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def provider_choice(
    provider: str,
    shares: int | None,
    threshold: int | None,
    pkcs11_module: str | None,
    pkcs11_token_label: str | None,
    pkcs11_key_label: str,
    *,
    rekey: bool = False,
) -> providers.ProviderChoice:
    """The provider choice from the options, asking for a new passphrase if needed."""
    if provider != "shamir" and (shares is not None or threshold is not None):
        raise click.UsageError("--shares and --threshold go with --root-key shamir")
    if provider != "pkcs11" and (pkcs11_module or pkcs11_token_label):
        raise click.UsageError("--pkcs11-* options go with --root-key pkcs11")
    choice: providers.ProviderChoice
    if provider == "file":
        choice = providers.FileChoice()
    elif provider == "passphrase":
        env = NEW_PASSPHRASE_ENV if rekey else providers.PASSPHRASE_ENV
        passphrase = os.environ.get(env) or read_secret(
            "New passphrase" if rekey else "Passphrase", confirm=True, env=env
        )
        choice = providers.PassphraseChoice(passphrase)
    elif provider == "shamir":
        choice = providers.ShamirChoice(
            shares if shares is not None else DEFAULT_SHARES,
            threshold if threshold is not None else DEFAULT_THRESHOLD,
        )
    else:
        if not pkcs11_module or not pkcs11_token_label:
            raise click.UsageError(
                "--root-key pkcs11 needs --pkcs11-module and --pkcs11-token-label"
            )
        pin = (os.environ.get(NEW_PIN_ENV) if rekey else None) or os.environ.get(providers.PIN_ENV)
        if not pin:
            raise click.UsageError(f"set {providers.PIN_ENV} to the token's user PIN")
        choice = providers.Pkcs11Choice(pkcs11_module, pkcs11_token_label, pkcs11_key_label, pin)
    try:
        providers.check_choice(choice)
    except providers.SealError as problem:
        raise click.UsageError(str(problem)) from None
    return choice


def read_secret(prompt: str, *, confirm: bool = False, env: str | None = None) -> str:
    """A secret typed without echo; one line of standard input when it is not a terminal."""
    if sys.stdin is not None and sys.stdin.isatty():
        value = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
        return str(value)
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line.strip():
        hint = f"set {env} or " if env else ""
        raise click.ClickException(
            f"{prompt.lower()} needed: {hint}run interactively, or pipe it on standard input"
        )
    return line.rstrip("\r\n")


def print_shares(shares: tuple[str, ...], threshold: int) -> None:
    out.print(
        f"[bold]Unseal shares[/] (any {threshold} of {len(shares)} unseal the server; "
        "give each to a different person):"
    )
    for number, share in enumerate(shares, 1):
        out.print(f"  {number:>3}  {share}", soft_wrap=True)
    out.print(
        "[yellow]These shares are shown once and stored nowhere. "
        "Without the threshold of them the data cannot be read.[/]"
    )


# --- the server side --------------------------------------------------------------------


def lock_data_dir(data_dir: Path) -> DataDirLock:
    """Take the data directory for this process (one server or one rekey at a time) and
    complete or discard a rekey a crash interrupted; the lock is released on failure."""
    from strongroom.keys.rekey import finish_interrupted_rekey

    lock = DataDirLock(data_dir)
    try:
        lock.acquire()
    except KeyholderError as problem:
        raise click.ClickException(str(problem)) from None
    try:
        finished = finish_interrupted_rekey(data_dir)
    except BaseException:
        lock.release()
        raise
    if finished:
        err.print(f"[yellow]An interrupted rekey was {finished}.[/]")
    return lock


def start_keyholder(
    data_dir: Path, *, on_sealed: Callable[[], None] | None = None
) -> tuple[Keyholder, DataDirLock]:
    """Lock the data directory, unseal it if the provider can (file, pkcs11, passphrase)
    and start serving the root key's use to the workers. ``on_sealed`` runs once every
    worker has applied a seal."""
    lock = lock_data_dir(data_dir)
    try:
        config = providers.read_seal(data_dir)
        # The workers never need these; keep them out of their environment.
        pin = os.environ.pop(providers.PIN_ENV, None)
        passphrase = os.environ.pop(providers.PASSPHRASE_ENV, None)
        unsealer = providers.unsealer_for(data_dir, config, pin=pin)
        key: bytes | None = None
        if config.provider == "passphrase":
            if not passphrase:
                passphrase = read_secret("Passphrase", env=providers.PASSPHRASE_ENV)
            try:
                key = providers.unseal_passphrase(config, passphrase)
            except providers.WrongCredential:
                raise click.ClickException(
                    "wrong passphrase: the root key was not recovered and nothing is served. "
                    f"Start again with the right one (prompt or {providers.PASSPHRASE_ENV})."
                ) from None
        elif config.provider in ("file", "pkcs11"):
            key = unsealer.submit({})
        keyholder = Keyholder(data_dir, config, unsealer, key, on_sealed=on_sealed)
        keyholder.start()
    except providers.SealError as problem:
        lock.release()
        raise click.ClickException(f"cannot unseal {data_dir}: {problem}") from None
    except KeyholderError as problem:
        lock.release()
        raise click.ClickException(str(problem)) from None
    except BaseException:
        lock.release()
        raise
    if config.provider == "shamir":
        err.print(
            f"[bold yellow]Strongroom is sealed[/] (shamir: {config.threshold} of "
            f"{config.shares} shares unseal it). Submit shares with `strongroom unseal`."
        )
    return keyholder, lock


# --- talking to a running server ---------------------------------------------------------


def url_option(command: F) -> F:
    return click.option(
        "--url",
        envvar=URL_ENV,
        default=DEFAULT_URL,
        show_default=True,
        help=f"The Strongroom server (or set {URL_ENV}).",
    )(command)


def _call(
    url: str,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    *,
    sign: bool = False,
) -> tuple[int, dict[str, Any]]:
    target = url.rstrip("/") + path
    data = json.dumps(dict(body)).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if sign:
        headers = _signed_headers(target, data or b"", headers)
    request = urllib.request.Request(target, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return response.status, _json(response.read())
    except urllib.error.HTTPError as answer:
        return answer.code, _json(answer.read())
    except urllib.error.URLError as problem:
        raise click.ClickException(
            f"cannot reach Strongroom at {url}: {problem.reason}. "
            f"Is the server running? Point --url (or {URL_ENV}) at it."
        ) from None
    except TimeoutError:
        raise click.ClickException(f"Strongroom at {url} did not answer in time") from None
    except ConnectionResetError:  # http.client's RemoteDisconnected (an empty reply) too
        # Not a worker being replaced (it answers what it accepted, server/workers.py):
        # the server stopped, or something between us dropped the connection.
        raise click.ClickException(
            f"Strongroom at {url} closed the connection without answering; "
            "check its log, then try again"
        ) from None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _signed_headers(url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from strongroom.server.operator_actions import SIGNING_NAME

    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        raise click.ClickException(
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to an access key of the "
            "deployment's management account (from `strongroom init`)"
        )
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    credentials = Credentials(access_key, secret_key, os.environ.get("AWS_SESSION_TOKEN"))
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(credentials, SIGNING_NAME, region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


def _fail(status: int, reply: Mapping[str, Any], what: str) -> click.ClickException:
    message = reply.get("Message") or reply.get("message") or f"HTTP {status}"
    return click.ClickException(f"{what}: {message}")


def _progress_line(reply: Mapping[str, Any]) -> str:
    progress, threshold = int(reply.get("progress", 0)), int(reply.get("threshold", 1))
    bar = "[green]" + "■" * progress + "[/][dim]" + "□" * (threshold - progress) + "[/]"
    return f"{bar} {progress}/{threshold}"


@click.command(short_help="Submit an unseal share (or the passphrase) to a sealed server.")
@url_option
@click.option("--reset", is_flag=True, help="Forget the shares submitted so far.")
@click.argument("share", required=False)
def unseal(url: str, reset: bool, share: str | None) -> None:
    """Submit an unseal share to a sealed server (shamir), or the passphrase.

    SHARE is one share printed by `strongroom init --root-key shamir`; without it you
    are asked for it without echo (or it is read from standard input). Any THRESHOLD
    distinct shares unseal the server; each person submits their own. For the
    passphrase provider you are asked for the passphrase (or set STRONGROOM_PASSPHRASE).
    File and pkcs11 servers fetch their key again by themselves once an operator asks:
    the request is signed with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a key of the
    deployment's management account allowed strongroom:Unseal.
    """
    status, state = _call(url, "GET", "/_strongroom/status")
    if status != 200:
        raise _fail(status, state, "cannot read the seal status")
    if not state.get("sealed"):
        out.print("[green]Strongroom is already unsealed.[/]")
        return
    provider = state.get("provider")
    body: dict[str, Any]
    if reset:
        body = {"reset": True}
    elif provider == "shamir":
        if share is None:
            progress, threshold = int(state["progress"]), int(state["threshold"])
            share = read_secret(f"Unseal share ({progress + 1} of {threshold} needed)")
        body = {"share": share}
    elif provider == "passphrase":
        body = {
            "passphrase": os.environ.get(providers.PASSPHRASE_ENV)
            or share
            or read_secret("Passphrase", env=providers.PASSPHRASE_ENV)
        }
    else:
        body = {}
    # A file or PKCS#11 key is recovered by the server itself: what authorizes the unseal
    # is the operator's signature (the management account, strongroom:Unseal).
    signed = provider in ("file", "pkcs11") and not reset
    status, reply = _call(url, "POST", "/_strongroom/unseal", body, sign=signed)
    if status != 200:
        raise _fail(status, reply, "unseal refused")
    if reply.get("sealed"):
        remaining = int(reply["threshold"]) - int(reply["progress"])
        verb = "Progress was reset" if reset else "Share accepted"
        out.print(f"{verb}: {_progress_line(reply)}  — {remaining} more needed.")
    else:
        out.print("[bold green]Unsealed[/]: Strongroom is serving.")


@click.command(short_help="Seal a running server: it drops the root key at once.")
@url_option
def seal(url: str) -> None:
    """Seal a running server: every worker drops the root key and answers 503 until
    it is unsealed again.

    Signed with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: a key of the deployment's
    management account (the one `strongroom init` made) whose policies allow
    strongroom:Seal on arn:aws:strongroom::ACCOUNT:deployment (AdministratorAccess does).
    """
    status, reply = _call(url, "POST", "/_strongroom/seal", {}, sign=True)
    if status != 200:
        raise _fail(status, reply, "seal refused")
    if reply.get("already_sealed"):
        out.print("[yellow]Strongroom was already sealed.[/] Unseal with `strongroom unseal`.")
        return
    out.print("[bold yellow]Sealed.[/] Unseal with `strongroom unseal`.")


@click.command(short_help="Show whether a server is sealed, and the unseal progress.")
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(url: str, as_json: bool) -> None:
    """Show whether a server is sealed, its root-key provider and unseal progress."""
    code, reply = _call(url, "GET", "/_strongroom/status")
    if code != 200:
        raise _fail(code, reply, "cannot read the seal status")
    if as_json:
        click.echo(json.dumps(reply))
        return
    table = Table(title=f"Strongroom at {url}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    sealed = bool(reply.get("sealed"))
    table.add_row("Sealed", "[red]yes[/]" if sealed else "[green]no[/]")
    table.add_row("Root-key provider", str(reply.get("provider")))
    if reply.get("provider") == "shamir":
        if sealed:
            table.add_row("Unseal progress", _progress_line(reply))
        table.add_row("Shares to unseal", f"{reply.get('threshold')} of {reply.get('shares')}")
    table.add_row("Workers", str(reply.get("workers", "?")))
    out.print(table)


@click.command(short_help="Replace the root key (offline: stop the server first).")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The data directory to rekey (its server must be stopped).",
)
@root_key_options("rekey")
@click.option(
    "--reencrypt",
    "then_reencrypt",
    is_flag=True,
    help="Then re-wrap every stored data key under the new key material (see `reencrypt`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
def rekey(
    data_dir: Path,
    provider: str,
    shares: int | None,
    threshold: int | None,
    pkcs11_module: str | None,
    pkcs11_token_label: str | None,
    pkcs11_key_label: str,
    then_reencrypt: bool,
    as_json: bool,
) -> None:
    """Replace the root key (offline: stop the server first).

    Recovers the current root key with the current provider (key file; passphrase from
    STRONGROOM_PASSPHRASE or a prompt; Shamir shares prompted for, or one per line on
    standard input; the HSM with STRONGROOM_PKCS11_PIN), makes a new random root key kept
    by --root-key (a new passphrase comes from STRONGROOM_NEW_PASSPHRASE or a prompt),
    and re-wraps everything the root key protects in one transaction, in which every KMS
    key also gets new material that only the new root key opens: the old key, shares or
    passphrase open nothing in this data directory afterwards, and, even with a copy of
    the database from before, no data key made after the rekey. With --reencrypt, the
    data keys of existing secret versions are then re-wrapped under the new material.
    Copies made before the rekey still open with the old key.
    """
    from strongroom.cli.lifecycle import audited
    from strongroom.keys.rekey import NEW_GENERATIONS, RekeyError
    from strongroom.keys.rekey import rekey as run_rekey
    from strongroom.server.deployment import is_initialized
    from strongroom.server.keyring import ROOT_SEALED
    from strongroom.server.operator_audit import REKEY, OperatorAudit, operator_audit

    if not is_initialized(data_dir):
        raise click.ClickException(f"{data_dir} is not a Strongroom data directory")
    lock = lock_data_dir(data_dir)
    try:
        try:
            config = providers.read_seal(data_dir)
            old_key = recover_offline(data_dir, config)
        except providers.SealError as problem:
            raise click.ClickException(f"cannot recover the current root key: {problem}") from None
        choice = provider_choice(
            provider,
            shares,
            threshold,
            pkcs11_module,
            pkcs11_token_label,
            pkcs11_key_label,
            rekey=True,
        )
        try:
            protection = providers.protect(choice)
        except providers.SealError as problem:
            raise click.ClickException(f"cannot protect the new root key: {problem}") from None

        recorded: list[dict[str, Any]] = []

        def announce(
            audit: OperatorAudit, new: providers.Protection, counts: Mapping[str, int]
        ) -> None:
            # Before the commit: the rekey's audit record is durable (else it rolls back),
            # and shares are never lost while their key is in force.
            details = {
                "rootKeyProvider": new.seal.provider,
                "rewrapped": {k: v for k, v in counts.items() if k != NEW_GENERATIONS},
                "newKeyGenerations": counts.get(NEW_GENERATIONS, 0),
            }
            recorded.append(audited(lambda: audit.record(REKEY, details)))
            if as_json:
                document: dict[str, Any] = {
                    "root_key_provider": new.seal.provider,
                    "key_id": new.seal.key_id,
                    "rewrapped": {k: v for k, v in counts.items() if k != NEW_GENERATIONS},
                    "new_key_generations": counts.get(NEW_GENERATIONS, 0),
                }
                if new.shares:
                    document["unseal_shares"] = list(new.shares)
                click.echo(json.dumps(document))
            elif new.shares:
                print_shares(new.shares, new.seal.threshold)
            sys.stdout.flush()

        # The audit log is opened under the old key: the rekey re-seals its signing key.
        with operator_audit(data_dir, old_key) as audit:
            try:
                counts = run_rekey(
                    data_dir,
                    old_key,
                    protection,
                    ROOT_SEALED,
                    before_commit=lambda new, done: announce(audit, new, done),
                )
            except BaseException as problem:
                for event in recorded:
                    audit.correct(event, problem)
                if isinstance(problem, RekeyError):
                    raise click.ClickException(str(problem)) from None
                raise
        if not as_json:
            generations = counts.pop(NEW_GENERATIONS, 0)
            err.print(
                f"[bold green]Rekeyed[/] {data_dir}: new root key ({protection.seal.provider}), "
                f"{sum(counts.values())} value(s) re-wrapped, new material for {generations} "
                "KMS key(s). The old root key opens nothing in this data directory; with a "
                "copy made before the rekey it still opens what that copy holds."
            )
            for note in protection.notes:
                err.print(f"  {note}")
        if then_reencrypt:
            from strongroom.cli.lifecycle import run_reencrypt

            run_reencrypt(data_dir, protection.root_key, as_json=as_json)
        elif not as_json:
            err.print(
                "  Existing secret values keep data keys under the old material until "
                "`strongroom reencrypt` runs."
            )
    finally:
        lock.release()


def recover_offline(data_dir: Path, config: providers.SealConfig) -> bytes:
    if config.provider == "file":
        return providers.unseal_file(data_dir, config)
    if config.provider == "pkcs11":
        pin = os.environ.get(providers.PIN_ENV)
        if not pin:
            raise providers.SealError(f"set {providers.PIN_ENV} to the token's user PIN")
        return providers.unseal_pkcs11(config, pin)
    if config.provider == "passphrase":
        passphrase = os.environ.get(providers.PASSPHRASE_ENV) or read_secret(
            "Current passphrase", env=providers.PASSPHRASE_ENV
        )
        return providers.unseal_passphrase(config, passphrase)
    collector = providers.ShamirUnsealer(config)
    while True:
        text = read_secret(
            f"Current unseal share ({collector.progress + 1} of {collector.threshold})"
        )
        try:
            key = collector.submit({"share": text})
        except providers.BadUnsealInput as problem:
            if sys.stdin is not None and sys.stdin.isatty():
                err.print(f"[red]{problem}[/]")
                continue
            raise
        if key is not None:
            return key


COMMANDS = (unseal, seal, status, rekey)
