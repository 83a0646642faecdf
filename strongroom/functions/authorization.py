"""What each Lambda operation asks of the authorizer: generated from the Service
Authorization Reference (:mod:`strongroom.policy.operation_checks`), with the function
resolved here. Invoke is authorized as ``lambda:InvokeFunction``; CreateFunction, and
UpdateFunctionConfiguration with a Role, also need ``iam:PassRole`` on the role, as on AWS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.functions.common import SERVICE_PRINCIPAL, function_arn, name_parts
from strongroom.functions.service import FunctionService
from strongroom.policy import reference
from strongroom.policy.checks import Check
from strongroom.policy.operation_checks import (
    Authorization,
    CheckBuilder,
    ContextValues,
    OperationPlan,
    Resource,
    plan_checks,
    reference_checks,
)
from strongroom.protocol.errors import ServiceError
from strongroom.types import Caller


def _tag_keys(tags: Mapping[str, str], kind: str) -> dict[str, tuple[str, ...]]:
    return {f"aws:{kind}/{key}": (value,) for key, value in tags.items()}


def function_resolver(service: FunctionService) -> Any:
    def resolve(caller: Caller, operation: str, params: Mapping[str, Any]) -> Sequence[Resource]:
        reference_name = str(params.get("FunctionName", ""))
        try:
            region, account, name = name_parts(reference_name, caller.region, caller.account_id)
        except ServiceError:
            return []  # a malformed name: the action on "*", then the operation refuses it
        arn = function_arn(region, account, name)
        if operation == "CreateFunction":
            return [Resource(arn, account)]
        record = service.find(caller, reference_name)
        if record is None:
            return [Resource(arn, account)]
        return [
            Resource(
                record.arn,
                record.account_id,
                record.policy,
                keys=_tag_keys(record.tags, "ResourceTag"),
            )
        ]

    return resolve


def request_keys_of(service: FunctionService) -> Any:
    def keys(caller: Caller, operation: str, params: Mapping[str, Any]) -> ContextValues:
        found: dict[str, tuple[str, ...]] = {}
        tags = params.get("Tags")
        if operation == "CreateFunction" and tags:
            found.update(_tag_keys(tags, "RequestTag"))
            found["aws:TagKeys"] = tuple(tags)
        if operation == "AddPermission" and params.get("Principal"):
            found["lambda:Principal"] = (str(params["Principal"]),)
        if operation == "RemovePermission":
            principal = service.statement_principal(caller, params)
            if principal is not None:
                found["lambda:Principal"] = (principal,)
        return found

    return keys


def _pass_role(caller: Caller, params: Mapping[str, Any], found: Sequence[Check]) -> list[Check]:
    # CreateFunction API reference: the caller needs iam:PassRole on the execution role.
    role = params.get("Role")
    if not role:
        return []
    parts = str(role).split(":")
    account = parts[4] if len(parts) > 4 and parts[4] else caller.account_id
    associated = found[0].resource if found else "*"
    return [
        Check(
            "iam:PassRole",
            str(role),
            account,
            context={
                "iam:PassedToService": (SERVICE_PRINCIPAL,),
                "iam:AssociatedResourceArn": (associated,),
            },
        )
    ]


def lambda_authorization(service: FunctionService) -> Authorization:
    resolve = function_resolver(service)
    keys = request_keys_of(service)
    invoke_plan = OperationPlan(
        reference.action("lambda", "InvokeFunction"), (("function", resolve),)
    )

    def invoke(caller: Caller, operation: str, params: Mapping[str, Any]) -> list[Check]:
        # Invoke is authorized as lambda:InvokeFunction (the reference has no lambda:Invoke).
        return plan_checks(invoke_plan, caller, operation, params, keys(caller, operation, params))

    return Authorization(
        "lambda",
        {"function": resolve},
        keys,
        replace={"Invoke": invoke},
        dependent={"CreateFunction": _pass_role, "UpdateFunctionConfiguration": _pass_role},
    )


def lambda_checks(service: FunctionService, operations: Sequence[str]) -> CheckBuilder:
    return reference_checks(lambda_authorization(service), operations)
