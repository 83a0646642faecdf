"""What each IAM operation asks of the authorizer: the action on the user, group, role or
policy it names (the ARN IAM's own authorization uses), or on "*"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.policy.checks import Check
from strongroom.protocol.service import CheckBuilder


def _arn(account: str, kind: str, name: str) -> str:
    return f"arn:aws:iam::{account}:{kind}/{name}"


def iam_resource(account: str, params: Mapping[str, Any]) -> str:
    if params.get("PolicyArn"):
        return str(params["PolicyArn"])
    if params.get("PolicySourceArn"):  # SimulatePrincipalPolicy: the user, group or role
        return str(params["PolicySourceArn"])
    if params.get("RoleName"):
        return _arn(account, "role", params["RoleName"])
    if params.get("GroupName") and not params.get("UserName"):
        return _arn(account, "group", params["GroupName"])
    if params.get("UserName"):
        return _arn(account, "user", params["UserName"])
    if params.get("PolicyName") and params.get("PolicyDocument") is not None:
        return f"arn:aws:iam::{account}:policy/{params['PolicyName']}"  # CreatePolicy
    return "*"


_MFA_ON_USER = frozenset(
    {"EnableMFADevice", "DeactivateMFADevice", "ListMFADevices", "ResyncMFADevice"}
)


def mfa_resource(caller: Any, operation: str, params: Mapping[str, Any]) -> str | None:
    """The resource of an MFA operation (Service Authorization Reference): the ``mfa``
    device for CreateVirtualMFADevice and DeleteVirtualMFADevice, the user for the
    others (the caller itself when UserName is left out). None for other operations."""
    account = caller.account_id
    if operation == "CreateVirtualMFADevice":
        path = params.get("Path") or "/"
        return f"arn:aws:iam::{account}:mfa{path}{params['VirtualMFADeviceName']}"
    if operation == "DeleteVirtualMFADevice":
        return str(params["SerialNumber"])
    if operation in _MFA_ON_USER:
        if params.get("UserName"):
            return _arn(account, "user", params["UserName"])
        return str(caller.principal_arn)
    return None


def iam_checks() -> CheckBuilder:
    def checks(caller: Any, operation: str, params: Mapping[str, Any]) -> list[Check]:
        context: dict[str, tuple[str, ...]] = {}
        tags = params.get("Tags")
        if tags:
            for tag in tags:
                context[f"aws:RequestTag/{tag.get('Key', '')}"] = (tag.get("Value", ""),)
            context["aws:TagKeys"] = tuple(tag.get("Key", "") for tag in tags)
        if params.get("PolicyArn") and operation.startswith(("Attach", "Detach")):
            context["iam:PolicyARN"] = (str(params["PolicyArn"]),)
        if params.get("PermissionsBoundary"):
            context["iam:PermissionsBoundary"] = (str(params["PermissionsBoundary"]),)
        resource = mfa_resource(caller, operation, params) or iam_resource(
            caller.account_id, params
        )
        return [Check(f"iam:{operation}", resource, caller.account_id, context=context)]

    return checks
