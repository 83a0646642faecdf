"""A data directory and everything opened from it: the store, the barrier, the
credentials and the services."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select

from strongroom.audit import signing
from strongroom.audit.api import PublicKeys, cloudtrail_spec
from strongroom.audit.log import AuditLog, AuditLogOptions
from strongroom.audit.lookup import EventLookup
from strongroom.audit.writers import StoreRegistry
from strongroom.clock import Clock, SystemClock, now_ms
from strongroom.functions.api import lambda_spec
from strongroom.functions.logs import FunctionLogs, logs_spec
from strongroom.functions.service import FunctionService
from strongroom.iam.api import iam_spec
from strongroom.iam.credentials import CredentialStore, admin_arn, new_account_id
from strongroom.iam.mfa import MfaDevices
from strongroom.iam.organizations import Organizations, organizations_spec
from strongroom.iam.principal_ids import IamPrincipalIds
from strongroom.iam.service import IdentityService, create_admin_user
from strongroom.iam.sts import SecurityTokenService, sts_spec
from strongroom.keys import providers
from strongroom.keys.api import kms_spec
from strongroom.keys.envelope import Barrier
from strongroom.keys.kms import KeyService
from strongroom.policy.authorizer import PolicyAuthorizer
from strongroom.protocol.pagination import TokenCodec
from strongroom.rotation.runner import RotationRunner
from strongroom.secrets.api import secretsmanager_spec
from strongroom.secrets.service import SecretsManager
from strongroom.server.pipeline import Pipeline
from strongroom.server.startup import retry_locking_protocol
from strongroom.store import schema
from strongroom.store.cache import DEFAULT_CACHE_ENTRIES
from strongroom.store.engine import Store, secure_directory, sqlite_url
from strongroom.types import Functions

DEV_ACCOUNT = "000000000000"
DEV_ACCESS_KEY = "test"
DEV_SECRET_KEY = "test"  # noqa: S105 - the documented development credential
TOKEN_KEY = "next-token-key"  # noqa: S105 - the name of a setting
# Where a function's process reaches this server (AWS_ENDPOINT_URL), unless told otherwise.
DEFAULT_ENDPOINT = "http://127.0.0.1:8420"


@dataclass(frozen=True)
class BootstrapCredentials:
    account_id: str
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"BootstrapCredentials(account_id={self.account_id!r}, access_key_id=...)"


def is_initialized(data_dir: Path) -> bool:
    return providers.has_root_key(data_dir) and (data_dir / "strongroom.db").exists()


def initialize(
    data_dir: Path,
    *,
    dev: bool,
    clock: Clock | None = None,
    protection: providers.Protection | None = None,
) -> BootstrapCredentials:
    """Create a data directory: root key, schema, first account and its admin key.

    ``protection`` is the new root key as its provider keeps it (strongroom init);
    by default a key file."""
    if is_initialized(data_dir):
        raise FileExistsError(f"{data_dir} already holds a Strongroom deployment")
    secure_directory(data_dir)
    old_umask = os.umask(0o077)  # the database, its WAL and journals: owner only
    try:
        protection = protection or providers.protect(providers.FileChoice())
        providers.install(data_dir, protection)
        root_key = protection.root_key
        store = Store(sqlite_url(data_dir))
        store.migrate()
        barrier = Barrier(root_key)
        clock = clock or SystemClock()
        credentials = CredentialStore(store, barrier, clock)
        account = DEV_ACCOUNT if dev else new_account_id()
        with store.write() as conn:
            conn.execute(
                insert(schema.settings).values(
                    name=TOKEN_KEY,
                    value=barrier.seal(os.urandom(32), TOKEN_KEY.encode()),
                )
            )
            credentials.create_account(conn, account, "dev" if dev else "management")
            # The key's owner is a real IAM user, user/admin, with AdministratorAccess.
            create_admin_user(conn, account, now_ms(clock))
            key_id, secret = credentials.create_access_key(
                conn,
                account,
                admin_arn(account),
                DEV_ACCESS_KEY if dev else None,
                DEV_SECRET_KEY if dev else None,
            )
        store.dispose()
    finally:
        os.umask(old_umask)
    return BootstrapCredentials(account, key_id, secret)


@dataclass
class Deployment:
    data_dir: Path
    store: Store
    barrier: Barrier
    clock: Clock
    credentials: CredentialStore
    keys: KeyService
    secrets: SecretsManager
    pipeline: Pipeline
    audit: AuditLog
    rotations: RotationRunner
    identities: IdentityService
    # The deployment's MAC key (pagination tokens; keyed digests such as the sign-in
    # throttle's): sealed in the store, the same in every worker.
    tokens: TokenCodec
    # The Lambda-compatible function service; as types.Functions, what rotation invokes.
    functions: FunctionService | None = None

    def close(self) -> None:
        if self.functions is not None:
            self.functions.close()  # no invocation's process outlives the deployment
        self.pipeline.close()  # the writes still waiting are served (and audited) first
        self.audit.close()  # the queued records, a final signed digest
        self.store.dispose()
        self.barrier.close()


def token_codec(store: Store, barrier: Barrier) -> TokenCodec:
    """The codec of every NextToken and Marker, under the deployment's one sealed key: the
    same in every worker, so a page begun on one continues on another."""
    with store.read() as conn:
        sealed = conn.execute(
            select(schema.settings.c.value).where(schema.settings.c.name == TOKEN_KEY)
        ).scalar_one()
    return TokenCodec(barrier.open(sealed, TOKEN_KEY.encode()))


def open_deployment(
    data_dir: Path,
    *,
    clock: Clock | None = None,
    root_key: bytes | None = None,
    audit: AuditLogOptions | None = None,
    cache_entries: int = DEFAULT_CACHE_ENTRIES,
    barrier: Barrier | None = None,
    endpoint: str = DEFAULT_ENDPOINT,
    functions: Functions | None = None,
) -> Deployment:
    """Open ``data_dir`` behind ``barrier`` (a server worker's: the keyholder's), or under
    ``root_key``; without either, recover the key unattended (key file, or PIN/passphrase
    from the environment)."""
    os.umask(0o077)
    # What opened so far is closed again if a later step fails: a worker tries again
    # (server/sealing.py), and each try must not leave a store, its checkpoint thread, an
    # audit writer or a barrier connection behind.
    with contextlib.ExitStack() as opened:
        if barrier is not None:
            opened.callback(barrier.close)
        deployment = _open(
            opened, data_dir, clock, root_key, audit, cache_entries, barrier, endpoint, functions
        )
        opened.pop_all()
    return deployment


def _open(
    opened: contextlib.ExitStack,
    data_dir: Path,
    clock: Clock | None,
    root_key: bytes | None,
    audit: AuditLogOptions | None,
    cache_entries: int,
    barrier: Barrier | None,
    endpoint: str,
    functions: Functions | None,
) -> Deployment:
    clock = clock or SystemClock()
    store = Store(sqlite_url(data_dir), background_checkpoints=True)
    opened.callback(store.dispose)
    # Every worker runs these transactions at once when a server starts: each is tried
    # again (briefly, bounded) when SQLite answers "locking protocol" (server/startup.py).
    retry_locking_protocol(store.migrate, "migrating the database")
    store.enable_cache(cache_entries)
    if barrier is None:
        barrier = Barrier(
            root_key if root_key is not None else providers.unseal_unattended(data_dir)
        )
        opened.callback(barrier.close)
    opened_barrier = barrier
    tokens = retry_locking_protocol(
        lambda: token_codec(store, opened_barrier), "reading the pagination key"
    )
    credentials = CredentialStore(store, barrier, clock)
    # Resource, trust and key policies bind the IAM users and roles they name by id.
    principal_ids = IamPrincipalIds(store)
    keys = KeyService(store, barrier, clock, tokens, principal_ids)
    signing_key = retry_locking_protocol(
        lambda: signing.load_or_create(store, opened_barrier), "loading the audit signing key"
    )
    signing.write_public_key(data_dir / "audit", signing_key)
    audit_log = retry_locking_protocol(
        lambda: AuditLog(
            data_dir / "audit",
            signing_key,
            clock=clock,
            options=audit,
            registry=StoreRegistry(store),
        ),
        "registering the audit writer",
    )
    opened.callback(audit_log.close)
    identities = IdentityService(store, barrier, clock, credentials, tokens)
    mfa = MfaDevices(store, barrier, clock, tokens)
    service = FunctionService(
        store,
        barrier,
        clock,
        identities,
        credentials,
        endpoint=endpoint,
        # Invocations' working directories: outside the data directory, whose path a
        # function must not learn; removed when the deployment closes.
        scratch=Path(tempfile.mkdtemp(prefix="strongroom-functions-")),
        hidden=(data_dir.resolve(), Path.home() / ".aws"),
        audit=audit_log,
        tokens=tokens,
    )
    opened.callback(service.close)
    # Logs an older version stored in plaintext are sealed now that the root key is here.
    service.log_groups.seal_plaintext()
    # Rotation invokes through the function service (a test may hand in its own Functions).
    invoker: Functions = functions if functions is not None else service
    secrets = SecretsManager(
        store, keys, clock, tokens, principal_ids=principal_ids, functions=invoker
    )
    pipeline = Pipeline(
        [
            secretsmanager_spec(secrets),
            kms_spec(keys),
            cloudtrail_spec(
                EventLookup(data_dir / "audit", clock, tokens),
                PublicKeys(store, clock, signing_key.fingerprint),
            ),
            iam_spec(identities, mfa),
            sts_spec(SecurityTokenService(store, credentials, identities, clock, mfa)),
            organizations_spec(Organizations(store, credentials, clock, tokens)),
            lambda_spec(service),
            logs_spec(FunctionLogs(service.log_groups, tokens)),
        ],
        store,
        credentials,
        PolicyAuthorizer(identities, clock),
        audit_log,
        clock,
    )
    opened.callback(pipeline.close)
    rotations = RotationRunner(secrets, invoker, store, audit_log, clock)
    return Deployment(
        data_dir,
        store,
        barrier,
        clock,
        credentials,
        keys,
        secrets,
        pipeline,
        audit_log,
        rotations,
        identities,
        tokens,
        service,
    )
