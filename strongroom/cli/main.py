"""The ``strongroom`` command."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console

from strongroom.cli.audit import audit
from strongroom.cli.functions import functions
from strongroom.cli.lifecycle import COMMANDS as LIFECYCLE_COMMANDS
from strongroom.cli.operator import COMMANDS, print_shares, provider_choice, root_key_options
from strongroom.cli.rotation import rotation
from strongroom.server.config import DEFAULT_PORT, load_settings

err = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="strongroom")
def main() -> None:
    """Strongroom: a self-hosted secrets manager that speaks the AWS Secrets Manager API.

    Point the AWS CLI or any AWS SDK at it with AWS_ENDPOINT_URL.
    """


@main.command(short_help="Create a data directory and its first admin access key.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory to create; it must not hold a deployment yet.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the account and admin credentials (and any unseal shares) as one JSON object.",
)
@root_key_options("init")
def init(
    data_dir: Path,
    as_json: bool,
    provider: str,
    shares: int | None,
    threshold: int | None,
    pkcs11_module: str | None,
    pkcs11_token_label: str | None,
    pkcs11_key_label: str,
) -> None:
    """Create a data directory: root key, database, first account and its admin key.

    The admin secret access key (and, for --root-key shamir, the unseal shares) is
    printed once and cannot be shown again.
    """
    from strongroom.keys import providers
    from strongroom.server.deployment import initialize, is_initialized

    if is_initialized(data_dir):
        raise click.ClickException(
            f"{data_dir} already holds a Strongroom deployment; "
            "serve it with `strongroom server --data-dir` or choose another directory."
        )
    leftovers = [
        name for name in ("strongroom.db", "seal.json", "root.key") if (data_dir / name).exists()
    ]
    if leftovers:
        raise click.ClickException(
            f"{data_dir} holds part of a deployment ({', '.join(leftovers)}); "
            "remove it or choose another directory."
        )
    choice = provider_choice(
        provider, shares, threshold, pkcs11_module, pkcs11_token_label, pkcs11_key_label
    )
    try:
        protection = providers.protect(choice)
    except providers.SealError as problem:
        raise click.ClickException(f"cannot protect the root key: {problem}") from None
    creds = initialize(data_dir, dev=False, protection=protection)
    if as_json:
        document: dict[str, Any] = {
            "account_id": creds.account_id,
            "access_key_id": creds.access_key_id,
            "secret_access_key": creds.secret_access_key,
        }
        if protection.shares:
            document["unseal_shares"] = list(protection.shares)
        click.echo(json.dumps(document))
        return
    out = Console()
    out.print(f"[bold green]Initialized[/] {data_dir} (root key: {protection.seal.provider})")
    for note in protection.notes:
        out.print(f"  {note}")
    out.print(f"account id         {creds.account_id}")
    out.print(f"access key id      {creds.access_key_id}")
    out.print(f"secret access key  {creds.secret_access_key}")
    out.print("[yellow]Store the secret access key now: it is not shown again.[/]")
    if protection.shares:
        print_shares(protection.shares, protection.seal.threshold)


@main.command()
@click.option(
    "--dev",
    is_flag=True,
    default=None,
    help="Development mode: account 000000000000, credentials test/test; "
    "in memory unless --data-dir is given.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory (from `strongroom init`, or created by --dev).",
)
@click.option("--host", default=None, help="Address to bind [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help=f"Port [default: {DEFAULT_PORT}].")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="Worker processes [default: 1]."
)
@click.option(
    "--cache-entries",
    type=click.IntRange(1),
    default=None,
    help="Rows of each kind a worker caches, about 1.5 KiB per secret read [default: 250000].",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Log level [default: info].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="TOML file with a [server] table of these settings.",
)
def server(config_file: Path | None, **flags: Any) -> None:
    """Serve the AWS-compatible API (and /_strongroom/health).

    This process is the keyholder: it holds the root key and seals and opens for its
    worker processes, which serve HTTP and never receive it (it never serves HTTP
    itself, whatever --workers says; after a seal its workers are replaced by fresh
    processes). A file or pkcs11 root key
    (STRONGROOM_PKCS11_PIN) is recovered at start, a passphrase from
    STRONGROOM_PASSPHRASE or a prompt (a wrong one stops the server); a shamir
    deployment starts sealed, answering 503 until `strongroom unseal` got enough shares.
    """
    import uvicorn

    from strongroom.cli.operator import start_keyholder
    from strongroom.server.app import SETTINGS_ENV, TEST_CLOCK_ENV, WorkerFactory
    from strongroom.server.deployment import initialize, is_initialized
    from strongroom.server.http import http_protocol
    from strongroom.server.workers import Supervisor

    try:
        settings = load_settings(flags, config_file=config_file)
    except (ValueError, OSError) as problem:
        raise click.ClickException(f"bad configuration: {problem}") from problem
    if os.environ.get(TEST_CLOCK_ENV) and not settings.dev:
        raise click.ClickException(f"{TEST_CLOCK_ENV} is honoured only by a --dev server")
    scratch: str | None = None
    data_dir = settings.data_dir
    if data_dir is None:
        if not settings.dev:
            raise click.ClickException(
                "no data directory: pass --data-dir D (create one with `strongroom init "
                "--data-dir D`) or use --dev for a throwaway in-memory server."
            )
        # "In memory": a scratch directory on tmpfs when there is one, removed at exit.
        # mkdtemp makes a fresh 0700 directory with a random name, so a shared /dev/shm is safe.
        shm = "/dev/shm"  # noqa: S108
        base = shm if os.path.isdir(shm) else None
        scratch = tempfile.mkdtemp(prefix="strongroom-dev-", dir=base)
        data_dir = Path(scratch) / "data"
    if not is_initialized(data_dir):
        if not settings.dev:
            raise click.ClickException(
                f"{data_dir} is not a Strongroom data directory; "
                f"run `strongroom init --data-dir {data_dir}` first."
            )
        initialize(data_dir, dev=True)
    runtime = {**asdict(settings), "data_dir": str(data_dir)}
    runtime.pop("extra", None)
    os.environ[SETTINGS_ENV] = json.dumps(runtime)
    if settings.dev:
        err.print(
            f"[bold]Strongroom[/] dev server on http://{settings.host}:{settings.port} "
            f"(account 000000000000, credentials test/test, data: "
            f"{'in memory' if scratch else data_dir})"
        )
    try:
        _check_port_free(settings.host, settings.port)
        # This process is the keyholder: it keeps the root key and seals and opens for the
        # workers over their channels; the key itself never leaves it. After a seal, the
        # supervisor replaces every worker (SIGHUP: each new worker up before its old one
        # retires, server/workers.py), so no key material or value stays in a live process.
        keyholder, lock = start_keyholder(
            data_dir, on_sealed=lambda: os.kill(os.getpid(), signal.SIGHUP)
        )
    except BaseException:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        config = uvicorn.Config(
            WorkerFactory(keyholder.worker_channel),
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            loop="uvloop",
            http=http_protocol(),
            # X-Forwarded-For is not believed, not even from loopback: it would let any
            # local client pick the aws:SourceIp its policies see and its audit records show.
            proxy_headers=False,
            access_log=settings.log_level == "debug",
            # A fresh worker imports everything before it answers: on a loaded host that
            # takes longer than uvicorn's 5 s, and a restart would give up on it.
            timeout_worker_healthcheck=_WORKER_START_TIMEOUT,
        )
        # Always the supervisor (uvicorn's, whose workers retire without dropping a
        # connection), even for one worker: HTTP is served only in worker processes, never
        # in this one, which holds the root key (uvicorn.run would serve in-process).
        Supervisor(config, sockets=[config.bind_socket()]).run()
    finally:
        keyholder.stop()
        lock.release()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(0)


_WORKER_START_TIMEOUT = 60


def _check_port_free(host: str, port: int) -> None:
    """Say which address is taken and what to do, before uvicorn's bare ``[Errno 98]``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a port in TIME_WAIT after a stopped server is free to take.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as problem:
            if problem.errno != errno.EADDRINUSE:
                raise click.ClickException(f"cannot listen on {host}:{port}: {problem}") from None
            raise click.ClickException(
                f"port {port} on {host} is already in use (another Strongroom server, or "
                f"another program). Stop it, or choose another port: --port N, "
                f"STRONGROOM_PORT=N, or `make serve PORT=N`."
            ) from None


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with this handler
    # restored: exit normally (status 0, scratch data removed) instead of dying by signal.
    raise SystemExit(0)


for _command in COMMANDS:
    main.add_command(_command)
for _command in LIFECYCLE_COMMANDS:
    main.add_command(_command)
main.add_command(audit)
main.add_command(functions)
main.add_command(rotation)


if __name__ == "__main__":
    main()
