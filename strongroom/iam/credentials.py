"""Accounts and access keys: who a signed request claims to be.

Secret access keys are needed to recompute SigV4 signatures, so they are stored sealed
by the barrier (bound to their key id), never hashed and never in the clear.
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from strongroom.clock import Clock
from strongroom.keys.envelope import Barrier
from strongroom.store import schema
from strongroom.store.engine import Store

_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"
USE_RECORD_INTERVAL_MS = 60_000  # last use is kept to the minute, no finer

log = logging.getLogger("strongroom.credentials")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    account_id: str
    arn: str
    access_key_id: str

    @property
    def is_account_admin(self) -> bool:
        return self.arn == admin_arn(self.account_id) or self.arn.endswith(":root")


@dataclass(frozen=True)
class AccessKey:
    principal: Principal
    status: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"AccessKey(principal={self.principal!r}, status={self.status!r})"


def admin_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:user/admin"


def new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


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
        with self._store.read() as conn:
            row = conn.execute(
                select(schema.access_keys).where(
                    schema.access_keys.c.access_key_id == access_key_id
                )
            ).first()
        if row is None:
            return None
        secret = self._barrier.open(row.secret_ciphertext, _aad(access_key_id)).decode()
        principal = Principal(row.account_id, row.principal_arn, access_key_id)
        return AccessKey(principal, row.status, secret)

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
        return int(self._clock.now().timestamp() * 1000)


def _aad(access_key_id: str) -> bytes:
    return b"access-key|" + access_key_id.encode()
