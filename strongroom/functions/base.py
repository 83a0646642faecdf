"""What the function service's parts share: the store, the vault of code and variables,
the runtime, finding a function (stored, or a built-in of :data:`strongroom.rotators.BUILTINS`,
which exists in every account and region without a row) and writing its configuration."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

from sqlalchemy import update

from strongroom.audit.sink import AuditSink
from strongroom.clock import Clock, from_ms, now_ms
from strongroom.functions import repository as repo
from strongroom.functions.common import (
    LOG_GROUP,
    SERVICE_PRINCIPAL,
    builtin_refused,
    function_arn,
    invalid_parameter,
    name_parts,
    not_found,
)
from strongroom.functions.log_groups import LogGroups
from strongroom.functions.repository import CodeVault, FunctionRecord, code_sha256
from strongroom.functions.runtime import UNSANDBOXED_VARIABLE, Runtime
from strongroom.iam.credentials import CredentialStore
from strongroom.iam.service import IdentityService
from strongroom.iam.sts import role_named
from strongroom.iam.sts_authorization import trust_policy_text
from strongroom.policy.evaluate import PolicySet, RequestContext, evaluate, load_policy
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec
from strongroom.rotators import BUILTIN_ROLE_NAME, BUILTINS, CODE_DIRECTORY, BuiltinFunction
from strongroom.store import schema
from strongroom.store.engine import Store
from strongroom.types import Caller, Sealer

log = logging.getLogger("strongroom.functions")

Params = Mapping[str, Any]
Output = dict[str, Any]


def builtin_role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/service-role/{BUILTIN_ROLE_NAME}"


def builtin_policy(arn: str, account: str) -> str:
    """A built-in's resource policy: Secrets Manager of the same account may invoke it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "default",
            "Statement": [
                {
                    "Sid": "SecretsManagerAccess",
                    "Effect": "Allow",
                    "Principal": {"Service": "secretsmanager.amazonaws.com"},
                    "Action": "lambda:InvokeFunction",
                    "Resource": arn,
                    "Condition": {"StringEquals": {"AWS:SourceAccount": account}},
                }
            ],
        }
    )


def _last_modified(ms: int) -> str:
    moment = from_ms(ms).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


class FunctionsBase:
    def __init__(
        self,
        store: Store,
        barrier: Sealer,
        clock: Clock,
        identities: IdentityService,
        credentials: CredentialStore,
        *,
        endpoint: str,
        scratch: Path,
        builtins: Mapping[str, BuiltinFunction] | None = None,
        builtin_code: Path = CODE_DIRECTORY,
        concurrency: int = 4,
        hidden: tuple[Path, ...] = (),
        audit: AuditSink | None = None,
        tokens: TokenCodec | None = None,
    ) -> None:
        self._store = store
        self._audit = audit  # where the execution roles' sessions are recorded
        self._tokens = tokens or TokenCodec(os.urandom(32))  # ListFunctions' Marker
        self._clock = clock
        self._identities = identities
        self._credentials = credentials
        self._vault = CodeVault(barrier)
        # The invocation logs, sealed under their log groups' keys (log_groups.py).
        self.log_groups = LogGroups(store, self._vault, clock)
        self._endpoint = endpoint
        self._builtins = BUILTINS if builtins is None else builtins
        self._builtin_code = builtin_code
        self.scratch = scratch
        # What an invocation's sandbox covers up: the data directory above all.
        self._runtime = Runtime(
            scratch,
            concurrency,
            hidden,
            clock=clock,
            unsandboxed=os.environ.get(UNSANDBOXED_VARIABLE) == "1",
        )
        self._background: set[asyncio.Task[None]] = set()
        # (function ARN, role ARN) -> the role session invocations reuse while it lasts.
        self._sessions: dict[tuple[str, str], tuple[dict[str, str], int]] = {}

    def close(self) -> None:
        """Kill what still runs and remove the invocations' working directories."""
        self._runtime.kill_all()
        for task in list(self._background):
            task.cancel()
        shutil.rmtree(self.scratch, ignore_errors=True)

    # ------------------------------------------------------------------ lookups

    def find(self, caller: Caller, reference: str) -> FunctionRecord | None:
        """The function a FunctionName names (a stored one or a built-in), or None."""
        region, account, name = name_parts(reference, caller.region, caller.account_id)
        return self._find(region, account, name)

    def _find(self, region: str, account: str, name: str) -> FunctionRecord | None:
        builtin = self._builtins.get(name)
        if builtin is not None:
            return self._builtin_record(region, account, builtin)
        with self._store.read() as conn:
            return repo.find(conn, function_arn(region, account, name))

    def _existing(self, caller: Caller, reference: str) -> FunctionRecord:
        record = self.find(caller, reference)
        if record is None:
            region, account, name = name_parts(reference, caller.region, caller.account_id)
            raise not_found(function_arn(region, account, name))
        return record

    def _changeable(self, caller: Caller, reference: str) -> FunctionRecord:
        record = self._existing(caller, reference)
        if record.name in self._builtins:
            raise builtin_refused(record.name)
        return record

    def _builtin_record(
        self, region: str, account: str, builtin: BuiltinFunction
    ) -> FunctionRecord:
        arn = function_arn(region, account, builtin.name)
        return FunctionRecord(
            arn=arn,
            account_id=account,
            region=region,
            name=builtin.name,
            runtime="python3.11",
            role=builtin_role_arn(account),
            handler=builtin.handler,
            description=builtin.description,
            timeout=builtin.timeout_seconds,
            memory_size=builtin.memory_mb,
            code_sha256=_builtin_sha(self._builtin_code),
            code_size=0,
            policy=builtin_policy(arn, account),
            tags={},
            revision_id="builtin",
            created_ms=0,
            modified_ms=0,
            data_key=b"",
            environment=None,
            code=b"",
        )

    # ------------------------------------------------------------------ outputs

    def configuration(self, record: FunctionRecord) -> Output:
        variables = self._vault.open_variables(record)
        out: Output = {
            "FunctionName": record.name,
            "FunctionArn": record.arn,
            "Runtime": record.runtime,
            "Role": record.role,
            "Handler": record.handler,
            "CodeSize": record.code_size,
            "Description": record.description,
            "Timeout": record.timeout,
            "MemorySize": record.memory_size,
            "LastModified": _last_modified(record.modified_ms),
            "CodeSha256": record.code_sha256,
            "Version": "$LATEST",
            "RevisionId": record.revision_id,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": LOG_GROUP + record.name},
        }
        if variables:
            out["Environment"] = {"Variables": variables}
        return out

    # ------------------------------------------------------------------ roles

    def _update(self, record: FunctionRecord, **values: Any) -> Output:
        t = schema.lambda_functions
        with self._store.write() as conn:
            conn.execute(
                update(t)
                .where(t.c.arn == record.arn)
                .values(**values, revision_id=str(uuid.uuid4()), modified_ms=now_ms(self._clock))
            )
            updated = repo.find(conn, record.arn)
        if updated is None:
            raise not_found(record.arn)
        return self.configuration(updated)

    def _check_role(self, role_arn: str, account: str) -> None:
        """The execution role exists and trusts lambda.amazonaws.com (as Lambda checks at
        CreateFunction): its trust policy evaluated for the service principal."""
        role = role_named(self._identities, role_arn)
        if role is None or not trusts_lambda(role.trust_policy, role.arn, account):
            raise invalid_parameter(
                "The role defined for the function cannot be assumed by Lambda."
            )

    # ------------------------------------------------------------------ as types.Functions

    def _target(self, arn: str) -> FunctionRecord | None:
        try:
            region, account, name = name_parts(arn, "", "")
        except ServiceError:
            return None
        if not arn.startswith("arn:"):
            return None
        return self._find(region, account, name)


def trusts_lambda(trust_policy: str, role_arn: str, account: str) -> bool:
    """Whether a role's trust policy lets lambda.amazonaws.com assume it."""
    request = RequestContext(SERVICE_PRINCIPAL, account, "sts:AssumeRole", role_arn, account)
    trust = load_policy(trust_policy_text(trust_policy), "key")
    return evaluate(request, PolicySet(resource=trust), key_policy=True).allowed


def check_revision(record: FunctionRecord, params: Params) -> None:
    wanted = params.get("RevisionId")
    if wanted is not None and wanted != record.revision_id:
        raise ServiceError(
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. Call the "
            "GetFunction/GetAlias API to retrieve the latest Revision Id",
            412,
        )


_BUILTIN_SHA: dict[Path, str] = {}


def _builtin_sha(directory: Path) -> str:
    """The CodeSha256 of the built-ins: over the package's Python files, once."""
    found = _BUILTIN_SHA.get(directory)
    if found is None:
        parts = b"".join(
            str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes()
            for path in sorted(directory.rglob("*.py"))
        )
        found = _BUILTIN_SHA[directory] = code_sha256(parts)
    return found
