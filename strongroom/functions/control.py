"""The control plane of functions: create, read, list, update and delete."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert

from strongroom.clock import now_ms
from strongroom.functions import event_queue
from strongroom.functions import repository as repo
from strongroom.functions.base import FunctionsBase, Output, Params, check_revision
from strongroom.functions.common import (
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    RESERVED_VARIABLES,
    RUNTIMES,
    conflict,
    function_arn,
    invalid_parameter,
    name_parts,
)
from strongroom.functions.repository import code_sha256
from strongroom.functions.runtime import check_package
from strongroom.protocol.errors import ServiceError
from strongroom.store import schema
from strongroom.types import Caller

_LIST_SCOPE = "lambda:ListFunctions"


class FunctionControl(FunctionsBase):
    # ------------------------------------------------------------------ control plane

    def create_function(self, caller: Caller, params: Params) -> Output:
        region, account, name = name_parts(params["FunctionName"], caller.region, caller.account_id)
        if account != caller.account_id or region != caller.region:
            raise invalid_parameter("A function is created in the caller's account and Region.")
        _refuse_unserved(params)
        runtime = params.get("Runtime")
        if runtime is None:
            raise invalid_parameter(
                "Runtime and Handler are mandatory parameters for functions "
                "created with deployment packages."
            )
        _check_runtime(runtime)
        handler = params.get("Handler")
        if not handler:
            raise invalid_parameter(
                "Runtime and Handler are mandatory parameters for functions "
                "created with deployment packages."
            )
        code = params["Code"].get("ZipFile")
        if code is None:
            raise invalid_parameter(
                "Strongroom takes a function's code as Code.ZipFile (S3 and container images "
                "are not served)."
            )
        check_package(code)
        variables = _variables(params)
        arn = function_arn(region, account, name)
        if name in self._builtins:
            raise conflict(f"Function already exist: {name}")
        self._check_role(params["Role"], account)
        now = now_ms(self._clock)
        key, sealed_key = self._vault.new_key(arn)
        with self._store.write() as conn:
            if repo.find(conn, arn) is not None:
                raise conflict(f"Function already exist: {name}")
            conn.execute(
                insert(schema.lambda_functions).values(
                    arn=arn,
                    account_id=account,
                    region=region,
                    name=name,
                    runtime=runtime,
                    role=params["Role"],
                    handler=handler,
                    description=params.get("Description", ""),
                    timeout=int(params.get("Timeout") or DEFAULT_TIMEOUT),
                    memory_size=int(params.get("MemorySize") or DEFAULT_MEMORY),
                    data_key=sealed_key,
                    environment=self._vault.seal_variables(key, arn, variables),
                    code=self._vault.seal_code(key, arn, code),
                    code_sha256=code_sha256(code),
                    code_size=len(code),
                    policy=None,
                    tags=dict(params.get("Tags") or {}) or None,
                    revision_id=str(uuid.uuid4()),
                    created_ms=now,
                    modified_ms=now,
                )
            )
            record = repo.find(conn, arn)
        assert record is not None
        return self.configuration(record)

    def get_function(self, caller: Caller, params: Params) -> Output:
        record = self._existing(caller, params["FunctionName"])
        out: Output = {
            "Configuration": self.configuration(record),
            "Code": {"RepositoryType": "S3"},
        }
        if record.tags:
            out["Tags"] = record.tags
        return out

    def get_function_configuration(self, caller: Caller, params: Params) -> Output:
        return self.configuration(self._existing(caller, params["FunctionName"]))

    def list_functions(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            stored = repo.listing(conn, caller.account_id, caller.region)
        builtins = [
            self._builtin_record(caller.region, caller.account_id, builtin)
            for builtin in self._builtins.values()
        ]
        every = sorted([*builtins, *stored], key=lambda record: record.name)
        after = ""
        if params.get("Marker"):
            try:
                after = str(self._tokens.decode(_LIST_SCOPE, params["Marker"])["after"])
            except (ServiceError, KeyError):
                raise invalid_parameter("Invalid Marker value.") from None
        remaining = [record for record in every if record.name > after]
        limit = int(params.get("MaxItems") or 50)
        page = remaining[:limit]
        out: Output = {"Functions": [self.configuration(record) for record in page]}
        if len(remaining) > limit:
            out["NextMarker"] = self._tokens.encode(_LIST_SCOPE, {"after": page[-1].name})
        return out

    def update_function_code(self, caller: Caller, params: Params) -> Output:
        record = self._changeable(caller, params["FunctionName"])
        check_revision(record, params)
        code = params.get("ZipFile")
        if code is None:
            raise invalid_parameter(
                "Strongroom takes a function's code as ZipFile (S3 and container images are "
                "not served)."
            )
        check_package(code)
        key = self._vault.key(record)
        return self._update(
            record,
            code=self._vault.seal_code(key, record.arn, code),
            code_sha256=code_sha256(code),
            code_size=len(code),
        )

    def update_function_configuration(self, caller: Caller, params: Params) -> Output:
        record = self._changeable(caller, params["FunctionName"])
        check_revision(record, params)
        _refuse_unserved(params)
        values: dict[str, Any] = {}
        if params.get("Role"):
            self._check_role(params["Role"], record.account_id)
            values["role"] = params["Role"]
        if params.get("Runtime"):
            _check_runtime(params["Runtime"])
            values["runtime"] = params["Runtime"]
        for member, column in (
            ("Handler", "handler"),
            ("Description", "description"),
            ("Timeout", "timeout"),
            ("MemorySize", "memory_size"),
        ):
            if params.get(member) is not None:
                values[column] = params[member]
        if "Environment" in params:
            values["environment"] = self._vault.seal_variables(
                self._vault.key(record), record.arn, _variables(params)
            )
        return self._update(record, **values)

    def delete_function(self, caller: Caller, params: Params) -> Output:
        if params.get("Qualifier") not in (None, "$LATEST"):
            raise invalid_parameter("Strongroom serves $LATEST only: functions have no versions.")
        record = self._changeable(caller, params["FunctionName"])
        t = schema.lambda_functions
        with self._store.write() as conn:
            conn.execute(delete(t).where(t.c.arn == record.arn))
            # Its event invoke config and the events still queued go with it, as on Lambda.
            event_queue.forget_function(conn, record.arn)
        return {"StatusCode": 204, "FunctionArn": record.arn}


def _check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise invalid_parameter(
            f"The runtime parameter of {runtime} is not served: Strongroom runs Python "
            f"functions ({', '.join(RUNTIMES)})."
        )


def _refuse_unserved(params: Params) -> None:
    for member in (
        "Layers",
        "VpcConfig",
        "CodeSigningConfigArn",
        "ImageConfig",
        "FileSystemConfigs",
    ):
        if params.get(member):
            raise invalid_parameter(f"{member} is not served by Strongroom.")
    if params.get("PackageType") not in (None, "Zip"):
        raise invalid_parameter("Strongroom serves functions with PackageType Zip only.")


def _variables(params: Params) -> dict[str, str]:
    variables = dict((params.get("Environment") or {}).get("Variables") or {})
    reserved = sorted(set(variables) & RESERVED_VARIABLES)
    if reserved:
        raise invalid_parameter(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not supported "
            f"for modification. Reserved keys used in this request: {','.join(reserved)}"
        )
    return variables
