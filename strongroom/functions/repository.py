"""The function tables: records, and how code and variables are kept.

A function's zip and its environment variables are customer data: each function has its
own 256-bit data key, sealed by the root barrier and bound to the function's ARN
(:data:`ROOT_SEALED`, re-wrapped by a rekey); the zip and the variables are AES-256-GCM
under it, bound to the ARN and (for the code) its SHA-256, which is checked again
whenever the code is opened. So the database alone reveals neither, and a zip moved to
another function's row, or altered, does not open.

A function's invocation logs are kept the same way under their log group's own data key
(the group outlives the function), bound to the group's ARN and each invocation's request
id: :mod:`strongroom.functions.log_groups`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Row, select

from strongroom.keys.rekey import SealedColumn
from strongroom.store import schema
from strongroom.types import Sealer

_NONCE = 12

ROOT_SEALED = (
    SealedColumn(schema.lambda_functions, "data_key", lambda row: _key_aad(row.arn)),
    SealedColumn(schema.lambda_log_groups, "data_key", lambda row: _log_key_aad(row.arn)),
    SealedColumn(schema.lambda_event_queue, "data_key", lambda row: _event_key_aad(row.request_id)),
)
"""What the function service seals with the root barrier: each function's data key, each
log group's and each queued asynchronous event's."""


def _key_aad(arn: str) -> bytes:
    return f"lambda-function-key:{arn}".encode()


def _log_key_aad(group_arn: str) -> bytes:
    return f"logs-group-key:{group_arn}".encode()


def _log_aad(group_arn: str, request_id: str, attempt: int) -> bytes:
    # An asynchronous invocation's retries share its request id: each attempt's log is
    # bound to its number too (the first keeps the binding logs had before retries).
    suffix = "" if attempt == 1 else f":{attempt}"
    return f"logs-invocation:{group_arn}:{request_id}{suffix}".encode()


def _event_key_aad(request_id: str) -> bytes:
    return f"lambda-event-key:{request_id}".encode()


def _event_aad(function_arn: str, request_id: str) -> bytes:
    return f"lambda-event:{function_arn}:{request_id}".encode()


def code_sha256(code: bytes) -> str:
    """Lambda's CodeSha256: the base64 SHA-256 of the zip."""
    return base64.b64encode(hashlib.sha256(code).digest()).decode("ascii")


@dataclass(frozen=True)
class FunctionRecord:
    arn: str
    account_id: str
    region: str
    name: str
    runtime: str
    role: str
    handler: str
    description: str
    timeout: int
    memory_size: int
    code_sha256: str
    code_size: int
    policy: str | None
    tags: dict[str, str]
    revision_id: str
    created_ms: int
    modified_ms: int
    data_key: bytes = field(repr=False)
    environment: bytes | None = field(repr=False)
    code: bytes = field(repr=False)


def _record(row: Row[Any]) -> FunctionRecord:
    return FunctionRecord(
        arn=row.arn,
        account_id=row.account_id,
        region=row.region,
        name=row.name,
        runtime=row.runtime,
        role=row.role,
        handler=row.handler,
        description=row.description,
        timeout=row.timeout,
        memory_size=row.memory_size,
        code_sha256=row.code_sha256,
        code_size=row.code_size,
        policy=row.policy,
        tags=dict(row.tags or {}),
        revision_id=row.revision_id,
        created_ms=row.created_ms,
        modified_ms=row.modified_ms,
        data_key=row.data_key,
        environment=row.environment,
        code=row.code,
    )


def find(conn: Connection, arn: str) -> FunctionRecord | None:
    t = schema.lambda_functions
    row = conn.execute(select(t).where(t.c.arn == arn)).first()
    return _record(row) if row is not None else None


def listing(conn: Connection, account: str, region: str) -> list[FunctionRecord]:
    t = schema.lambda_functions
    rows = conn.execute(
        select(t).where(t.c.account_id == account, t.c.region == region).order_by(t.c.name)
    )
    return [_record(row) for row in rows]


class CodeVault:
    """Seals and opens a function's code and variables under its own data key."""

    def __init__(self, barrier: Sealer) -> None:
        self._barrier = barrier

    def new_key(self, arn: str) -> tuple[bytes, bytes]:
        """A fresh data key and its root-sealed form."""
        key = AESGCM.generate_key(bit_length=256)
        return key, self._barrier.seal(key, _key_aad(arn))

    def new_log_key(self, group_arn: str) -> tuple[bytes, bytes]:
        """A fresh data key for a log group and its root-sealed form, bound to its ARN."""
        key = AESGCM.generate_key(bit_length=256)
        return key, self._barrier.seal(key, _log_key_aad(group_arn))

    def log_key(self, group_arn: str, sealed_key: bytes) -> bytes:
        return self._barrier.open(sealed_key, _log_key_aad(group_arn))

    def seal_log(
        self, key: bytes, group_arn: str, request_id: str, log: str, attempt: int = 1
    ) -> bytes:
        return self.seal(key, log.encode(), _log_aad(group_arn, request_id, attempt))

    def open_log(
        self, key: bytes, group_arn: str, request_id: str, sealed: bytes, attempt: int = 1
    ) -> str:
        return self.open(key, sealed, _log_aad(group_arn, request_id, attempt)).decode()

    def seal_event(self, function_arn: str, request_id: str, payload: bytes) -> tuple[bytes, bytes]:
        """A queued event's payload (customer data) sealed under a data key of its own:
        (the root-sealed key, the sealed payload)."""
        key = AESGCM.generate_key(bit_length=256)
        sealed_key = self._barrier.seal(key, _event_key_aad(request_id))
        return sealed_key, self.seal(key, payload, _event_aad(function_arn, request_id))

    def open_event(
        self, function_arn: str, request_id: str, sealed_key: bytes, sealed: bytes
    ) -> bytes:
        key = self._barrier.open(sealed_key, _event_key_aad(request_id))
        return self.open(key, sealed, _event_aad(function_arn, request_id))

    def key(self, record: FunctionRecord) -> bytes:
        return self._barrier.open(record.data_key, _key_aad(record.arn))

    @staticmethod
    def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)

    @staticmethod
    def open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)

    def seal_code(self, key: bytes, arn: str, code: bytes) -> bytes:
        return self.seal(key, code, _code_aad(arn, code_sha256(code)))

    def open_code(self, record: FunctionRecord) -> bytes:
        code = self.open(self.key(record), record.code, _code_aad(record.arn, record.code_sha256))
        if code_sha256(code) != record.code_sha256:  # cannot happen unless GCM failed open
            raise ValueError(f"the code of {record.arn} does not match its CodeSha256")
        return code

    def seal_variables(self, key: bytes, arn: str, variables: Mapping[str, str]) -> bytes | None:
        if not variables:
            return None
        return self.seal(key, json.dumps(dict(variables)).encode(), _variables_aad(arn))

    def open_variables(self, record: FunctionRecord) -> dict[str, str]:
        if record.environment is None:
            return {}
        plain = self.open(self.key(record), record.environment, _variables_aad(record.arn))
        loaded: dict[str, str] = json.loads(plain)
        return loaded


def _code_aad(arn: str, sha: str) -> bytes:
    return f"lambda-code:{arn}:{sha}".encode()


def _variables_aad(arn: str) -> bytes:
    return f"lambda-environment:{arn}".encode()
