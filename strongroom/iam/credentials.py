"""Accounts, access keys and STS sessions: who a signed request claims to be.

Secret access keys are needed to recompute SigV4 signatures, so they are stored sealed
by the barrier (bound to their key id), never hashed and never in the clear. Temporary
credentials (``ASIA...`` keys from STS) are kept the same way, with their session token,
which is only ever compared, as a SHA-256 hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import string
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from strongroom.clock import Clock, from_ms, now_ms
from strongroom.keys.envelope import Barrier
from strongroom.keys.rekey import SealedColumn
from strongroom.store import schema
from strongroom.store.cache import Namespace
from strongroom.store.engine import Store, cached
from strongroom.types import Principal as Principal  # re-exported: the shared caller types
from strongroom.types import PrincipalKind as PrincipalKind
from strongroom.types import admin_arn as admin_arn

_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"
USE_RECORD_INTERVAL_MS = 60_000  # last use is kept to the minute, no finer
SESSION_KEY_PREFIX = "ASIA"  # AWS's prefix for temporary access key ids
# An expired session is kept this long before it is purged, so its key still answers
# "expired" (ExpiredToken) rather than "unknown" while clients notice and refresh.
EXPIRED_SESSION_RETENTION = timedelta(days=1)
_SESSION_TOKEN_BYTES = 96  # 128 base64 characters

log = logging.getLogger("strongroom.credentials")


# Every request looks its access key up: cached per process (store/cache.py). A session's
# entry holds only while the user or role it is bound to exists (``_bound``), so the
# namespace depends on the users' and roles' tables too: deleting either drops it.
_KEYS = Namespace(
    "access-key",
    ("access_keys", "sts_sessions", "iam_users", "iam_roles"),
    remember_absent=False,
)


@dataclass(frozen=True)
class AccessKey:
    """A key that can sign requests: long-term (``AKIA...``), or temporary (``ASIA...``),
    which also needs its session token and stops working at ``expires_at``."""

    principal: Principal
    status: str
    secret_access_key: str
    token_hash: bytes | None = None  # SHA-256 of the session token of temporary credentials
    expires_at: datetime | None = None

    def __repr__(self) -> str:
        return f"AccessKey(principal={self.principal!r}, status={self.status!r})"

    @property
    def temporary(self) -> bool:
        return self.token_hash is not None

    def accepts_token(self, presented: str | None) -> bool:
        """Whether ``presented`` (X-Amz-Security-Token) is this key's session token, in
        constant time; a long-term key accepts none at all."""
        if self.token_hash is None:
            return not presented
        if not presented:
            return False
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        return hmac.compare_digest(digest, self.token_hash)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True)
class SessionGrant:
    """What STS decided a new session is; :meth:`CredentialStore.create_session` issues
    its credentials. ``principal_arn`` is the session's ARN (``assumed-role/...``), or the
    user's for GetSessionToken; ``identity_arn`` the role's ARN (with its path) or the
    user's. ``session_policies`` are policy documents: the inline one, then the managed
    ones, resolved when the session is issued. ``user_id`` is the unique id (AIDA...) of
    the IAM user a user's or federated user's session belongs to: the session acts as
    that user, never as another one later given its name."""

    account_id: str
    kind: PrincipalKind
    principal_arn: str
    identity_arn: str
    duration_seconds: int
    role_id: str | None = None
    user_id: str | None = None
    session_name: str | None = None
    session_policies: tuple[str, ...] = ()
    session_tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None
    minimum_token_size: int = 0
    mfa_authenticated_ms: int | None = None  # when the MFA code was verified, if one was


@dataclass(frozen=True)
class IssuedSession:
    """The credentials of a new session, handed out once."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime


@dataclass(frozen=True)
class SessionRecord:
    """A stored session, without its secret or token."""

    access_key_id: str
    account_id: str
    kind: PrincipalKind
    principal_arn: str
    identity_arn: str
    role_id: str | None
    session_name: str | None
    session_policies: tuple[str, ...]
    session_tags: tuple[tuple[str, str], ...]
    transitive_tag_keys: tuple[str, ...]
    source_identity: str | None
    created_ms: int
    expires_ms: int
    mfa_authenticated_ms: int | None = None
    user_id: str | None = None  # the IAM user's AIDA... (SessionGrant.user_id)

    @property
    def expiration(self) -> datetime:
        return from_ms(self.expires_ms)

    def _unique_id(self) -> str | None:
        if self.kind == "assumed-role" and self.role_id and self.session_name:
            return f"{self.role_id}:{self.session_name}"
        if self.kind == "federated-user" and self.session_name:
            return f"{self.account_id}:{self.session_name}"
        if self.kind == "user":
            # GetSessionToken's credentials act as the IAM user: its unique id (AIDA...)
            # is their principalId, as CloudTrail records it.
            return self.user_id
        return None

    def principal(self) -> Principal:
        return Principal(
            self.account_id,
            self.principal_arn,
            self.access_key_id,
            kind=self.kind,
            identity_arn=self.identity_arn,
            session_policies=self.session_policies,
            session_tags=self.session_tags,
            source_identity=self.source_identity,
            session_token=True,
            unique_id=self._unique_id(),
            token_issued_ms=self.created_ms,
            mfa_authenticated_ms=self.mfa_authenticated_ms,
        )


def new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def new_session_key_id() -> str:
    return SESSION_KEY_PREFIX + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def new_session_token(minimum_size: int = 0) -> str:
    """An opaque session token of at least ``minimum_size`` characters."""
    size = max(_SESSION_TOKEN_BYTES, -(-minimum_size * 3 // 4))
    return base64.b64encode(secrets.token_bytes(size)).decode()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_secret_access_key() -> str:
    return secrets.token_urlsafe(30)[:40]


def new_account_id() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(12))


class CredentialStore:
    def __init__(self, store: Store, barrier: Barrier, clock: Clock) -> None:
        self._store = store
        self._barrier = barrier
        self._clock = clock
        self._noted: dict[str, int] = {}  # access key id -> when its use was last written
        self._noted_lock = threading.Lock()

    def management_account(self) -> str:
        """The deployment's management account: its first, made by ``strongroom init``
        (accounts of an organization come later). Only its principals may seal."""
        with self._store.read() as conn:
            return str(
                conn.execute(
                    select(schema.accounts.c.account_id)
                    .order_by(schema.accounts.c.created_ms, schema.accounts.c.account_id)
                    .limit(1)
                ).scalar_one()
            )

    def create_account(self, conn: Connection, account_id: str, name: str) -> None:
        conn.execute(
            insert(schema.accounts).values(
                account_id=account_id, name=name, created_ms=self._now_ms()
            )
        )

    def create_access_key(
        self,
        conn: Connection,
        account_id: str,
        principal_arn: str,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> tuple[str, str]:
        key_id = access_key_id or new_access_key_id()
        secret = secret_access_key or new_secret_access_key()
        conn.execute(
            insert(schema.access_keys).values(
                access_key_id=key_id,
                account_id=account_id,
                principal_arn=principal_arn,
                secret_ciphertext=self._barrier.seal(secret.encode(), _aad(key_id)),
                status="Active",
                created_ms=self._now_ms(),
            )
        )
        return key_id, secret

    def lookup(self, access_key_id: str) -> AccessKey | None:
        """The long-term key or the STS session ``access_key_id`` names, expired or not
        (the caller checks :meth:`AccessKey.expired`), or None."""
        with self._store.read() as conn:
            return cached(conn, _KEYS, access_key_id, lambda: self._load(conn, access_key_id))

    def _load(self, conn: Connection, access_key_id: str) -> AccessKey | None:
        row = conn.execute(
            select(schema.access_keys).where(schema.access_keys.c.access_key_id == access_key_id)
        ).first()
        session = None if row is not None else self._session_row(conn, access_key_id)
        user_id = (
            conn.execute(
                select(schema.iam_users.c.id).where(schema.iam_users.c.arn == row.principal_arn)
            ).scalar_one_or_none()
            if row is not None
            else None
        )
        if row is not None:
            secret = self._barrier.open(row.secret_ciphertext, _aad(access_key_id)).decode()
            kind: PrincipalKind = "root" if row.principal_arn.endswith(":root") else "user"
            principal = Principal(
                row.account_id, row.principal_arn, access_key_id, kind=kind, unique_id=user_id
            )
            return AccessKey(principal, row.status, secret)
        if session is None:
            return None
        record = _bound(conn, _session_record(session))
        if record is None:
            # The user or role the session was issued to is gone (one of its name now is
            # another): the session is nobody's, and authenticates as nobody (``_bound``).
            return None
        opened = self._barrier.open(session.secret_ciphertext, _session_aad(access_key_id))
        principal = record.principal()
        return AccessKey(
            principal,
            "Active",
            opened.decode(),
            token_hash=bytes(session.token_hash),
            expires_at=record.expiration,
        )

    # STS sessions -------------------------------------------------------------------------

    def create_session(self, conn: Connection, grant: SessionGrant) -> IssuedSession:
        """Issue temporary credentials for ``grant``, inside the caller's transaction."""
        key_id = new_session_key_id()
        secret = new_secret_access_key()
        token = new_session_token(grant.minimum_token_size)
        now = self._now_ms()
        expires_ms = now + grant.duration_seconds * 1000
        conn.execute(
            insert(schema.sts_sessions).values(
                access_key_id=key_id,
                account_id=grant.account_id,
                kind=grant.kind,
                principal_arn=grant.principal_arn,
                identity_arn=grant.identity_arn,
                role_id=grant.role_id,
                user_id=grant.user_id,
                session_name=grant.session_name,
                secret_ciphertext=self._barrier.seal(secret.encode(), _session_aad(key_id)),
                token_hash=token_hash(token),
                session_policies=list(grant.session_policies) or None,
                session_tags=[list(tag) for tag in grant.session_tags] or None,
                transitive_tag_keys=list(grant.transitive_tag_keys) or None,
                source_identity=grant.source_identity,
                created_ms=now,
                expires_ms=expires_ms,
                mfa_authenticated_ms=grant.mfa_authenticated_ms,
            )
        )
        return IssuedSession(key_id, secret, token, from_ms(expires_ms))

    def session(self, access_key_id: str) -> SessionRecord | None:
        """The STS session of ``access_key_id`` (expired or not), or None."""
        with self._store.read() as conn:
            row = self._session_row(conn, access_key_id)
        return _session_record(row) if row is not None else None

    def end_session(self, access_key_id: str) -> None:
        """Revoke a session now (a console sign-out): its key no longer authenticates."""
        if not access_key_id.startswith(SESSION_KEY_PREFIX):
            return
        with self._store.write() as conn:
            conn.execute(
                delete(schema.sts_sessions).where(
                    schema.sts_sessions.c.access_key_id == access_key_id
                )
            )

    def account_of(self, access_key_id: str) -> str | None:
        """The account a long-term key or a session belongs to (STS GetAccessKeyInfo)."""
        with self._store.read() as conn:
            for table in (schema.access_keys, schema.sts_sessions):
                found = conn.execute(
                    select(table.c.account_id).where(table.c.access_key_id == access_key_id)
                ).scalar_one_or_none()
                if found is not None:
                    return str(found)
        return None

    def purge_expired_sessions(self) -> int:
        """Delete the sessions that expired more than EXPIRED_SESSION_RETENTION ago; one
        idempotent transaction (the background loop runs it on every worker)."""
        cutoff = self._now_ms() - int(EXPIRED_SESSION_RETENTION.total_seconds() * 1000)
        with self._store.write() as conn:
            result = conn.execute(
                delete(schema.sts_sessions).where(schema.sts_sessions.c.expires_ms <= cutoff)
            )
        return int(result.rowcount or 0)

    @staticmethod
    def _session_row(conn: Connection, access_key_id: str) -> Any:
        if not access_key_id.startswith(SESSION_KEY_PREFIX):
            return None
        return conn.execute(
            select(schema.sts_sessions).where(schema.sts_sessions.c.access_key_id == access_key_id)
        ).first()

    def note_use(self, access_key_id: str, service: str, region: str) -> None:
        """Record that ``access_key_id`` signed a request for ``service`` in ``region``
        (GetAccessKeyLastUsed). Cheap on the request path: this process writes a key's
        use at most once a minute; other calls return without touching the store.

        Call it once the request is authenticated. Inside the pipeline's unit of work the
        write joins the request's transaction. Failures are logged, never raised: a lost
        last-use record must not fail a request."""
        now = self._now_ms()
        with self._noted_lock:
            last = self._noted.get(access_key_id)
            if last is not None and now - last < USE_RECORD_INTERVAL_MS:
                return
            self._noted[access_key_id] = now
        try:
            with self._store.write() as conn:
                conn.execute(
                    update(schema.access_keys)
                    .where(schema.access_keys.c.access_key_id == access_key_id)
                    .values(last_used_ms=now, last_used_service=service, last_used_region=region)
                )
        except Exception:
            log.exception("could not record the use of an access key")

    def _now_ms(self) -> int:
        return now_ms(self._clock)


def _aad(access_key_id: str) -> bytes:
    return b"access-key|" + access_key_id.encode()


def _session_aad(access_key_id: str) -> bytes:
    return b"sts-session|" + access_key_id.encode()


def _session_record(row: Any) -> SessionRecord:
    return SessionRecord(
        access_key_id=row.access_key_id,
        account_id=row.account_id,
        kind=row.kind,
        principal_arn=row.principal_arn,
        identity_arn=row.identity_arn,
        role_id=row.role_id,
        session_name=row.session_name,
        session_policies=tuple(row.session_policies or ()),
        session_tags=tuple((str(key), str(value)) for key, value in row.session_tags or ()),
        transitive_tag_keys=tuple(row.transitive_tag_keys or ()),
        source_identity=row.source_identity,
        created_ms=row.created_ms,
        expires_ms=row.expires_ms,
        mfa_authenticated_ms=row.mfa_authenticated_ms,
        user_id=row.user_id,
    )


def _bound(conn: Connection, record: SessionRecord) -> SessionRecord | None:
    """``record`` as the user or role it belongs to is now, or None if that one is gone.

    A session belongs to the unique id of its principal: a role session to its role's
    (``role_id``, AROA...), a user's or federated user's session to its user's
    (``user_id``, AIDA...). Resolved through the id, a user renamed or moved since keeps
    its sessions (their ARNs follow it); a user or role deleted leaves its sessions
    unusable, even once another of the same name is created (it has another id). Root's
    sessions (and a federated user root made) belong to the account.

    What AWS documents: temporary credentials' permissions "are bound to either the role
    that was assumed (AssumeRole or AssumeRoleWithWebIdentity) or to the IAM user that
    made the request (GetFederationToken or GetSessionToken)", and "the effective
    permissions are evaluated when a request is made that uses the credentials, based on
    the current permissions of the associated IAM user or role"
    (https://docs.aws.amazon.com/STS/latest/UsingSTS/TokenPermissions.html). A trust
    policy naming a user or role is bound to its unique principal ID: "if you delete the
    role or user, then the relationship is broken. The policy no longer applies, even if
    you recreate the user or role because it does not match the principal ID stored in
    the trust policy"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_policy-examples.html),
    and "the roleID or userID ... is different for the recreated IAM principal than it
    was for the original IAM principal" (EKS, AccessEntry.principalArn). AWS documents
    no error code for a request signed by a session whose user or role is gone.

    Decision: such a session authenticates nothing, whichever kind it is (fail closed,
    one behaviour for role and user sessions): its key is no key, so every request,
    GetCallerIdentity included (which needs no permission, so would otherwise still
    answer), is refused in authentication with the invalid security token error
    (``InvalidClientTokenId`` 403 over Query, ``UnrecognizedClientException`` 400 over
    JSON) and audited as unauthenticated (server/stages.py ``Stages.authenticate``)."""
    if record.kind == "root" or record.identity_arn.endswith(":root"):
        return record
    if record.kind == "assumed-role":
        if record.role_id is None:
            return None  # a role session that names no role: nobody's
        found = conn.execute(
            select(schema.iam_roles.c.id).where(
                schema.iam_roles.c.id == record.role_id,
                schema.iam_roles.c.account_id == record.account_id,
            )
        ).scalar_one_or_none()
        # A role is never renamed or moved (IAM has no such operation): its ARNs stand.
        return record if found is not None else None
    if record.user_id is None:
        return None  # a user's session that could not be bound (migration 0014)
    arn = conn.execute(
        select(schema.iam_users.c.arn).where(
            schema.iam_users.c.id == record.user_id,
            schema.iam_users.c.account_id == record.account_id,
        )
    ).scalar_one_or_none()
    if arn is None:
        return None
    if record.kind == "user":
        return replace(record, principal_arn=arn, identity_arn=arn)
    return replace(record, identity_arn=arn)


# What IAM seals with the root barrier, for a rekey to re-wrap (strongroom.server.keyring):
# secret access keys and the secrets of live STS sessions, each bound to its key id.
ROOT_SEALED = (
    SealedColumn(schema.access_keys, "secret_ciphertext", lambda row: _aad(row.access_key_id)),
    SealedColumn(
        schema.sts_sessions, "secret_ciphertext", lambda row: _session_aad(row.access_key_id)
    ),
)
