"""The IAM service facade: operation names (botocore's ``iam`` model) to domain methods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.iam.authorization import iam_checks
from strongroom.iam.mfa import OPERATIONS as MFA_OPERATIONS
from strongroom.iam.mfa import MfaDevices, mfa_operations
from strongroom.iam.service import IdentityService
from strongroom.iam.simulate import PolicySimulator
from strongroom.protocol.service import Handler, ServiceSpec, snake_case

OPERATIONS = (
    # users
    "CreateUser",
    "GetUser",
    "ListUsers",
    "UpdateUser",
    "DeleteUser",
    "TagUser",
    "UntagUser",
    "ListUserTags",
    # access keys
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "GetAccessKeyLastUsed",
    # groups
    "CreateGroup",
    "GetGroup",
    "ListGroups",
    "DeleteGroup",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "ListGroupsForUser",
    # roles
    "CreateRole",
    "GetRole",
    "ListRoles",
    "DeleteRole",
    "UpdateAssumeRolePolicy",
    "UpdateRole",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    # inline policies
    "PutUserPolicy",
    "GetUserPolicy",
    "ListUserPolicies",
    "DeleteUserPolicy",
    "PutGroupPolicy",
    "GetGroupPolicy",
    "ListGroupPolicies",
    "DeleteGroupPolicy",
    "PutRolePolicy",
    "GetRolePolicy",
    "ListRolePolicies",
    "DeleteRolePolicy",
    # managed policies
    "CreatePolicy",
    "GetPolicy",
    "ListPolicies",
    "DeletePolicy",
    "CreatePolicyVersion",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "AttachGroupPolicy",
    "DetachGroupPolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedUserPolicies",
    "ListAttachedGroupPolicies",
    "ListAttachedRolePolicies",
    "ListEntitiesForPolicy",
    # permissions boundaries
    "PutUserPermissionsBoundary",
    "DeleteUserPermissionsBoundary",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    # login profiles
    "CreateLoginProfile",
    "GetLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
    # the policy simulator
    "SimulatePrincipalPolicy",
    "SimulateCustomPolicy",
)
_SIMULATOR = ("SimulatePrincipalPolicy", "SimulateCustomPolicy")


def iam_operations(service: IdentityService, mfa: MfaDevices) -> dict[str, Handler]:
    """Operation name -> handler(caller, params), the caller a :class:`strongroom.types.Caller`."""
    simulator = PolicySimulator(service.store, service.tokens)
    return {
        **{
            name: getattr(simulator if name in _SIMULATOR else service, snake_case(name))
            for name in OPERATIONS
        },
        **mfa_operations(mfa),
    }


def iam_resources(params: Mapping[str, Any], output: Mapping[str, Any] | None) -> list[str]:
    """The ARNs an IAM event is about, for the audit record (a ServiceSpec's
    ``resources_of``): the entity or policy the output names, else a policy ARN given."""
    if output:
        for member in ("User", "Group", "Role", "Policy"):
            item = output.get(member)
            if isinstance(item, Mapping) and item.get("Arn"):
                return [str(item["Arn"])]
        device = output.get("VirtualMFADevice")
        if isinstance(device, Mapping) and device.get("SerialNumber"):
            return [str(device["SerialNumber"])]
    for member in ("PolicyArn", "PermissionsBoundary", "PolicySourceArn", "SerialNumber"):
        if params.get(member):
            return [str(params[member])]
    return []


def iam_spec(service: IdentityService, mfa: MfaDevices) -> ServiceSpec:
    return ServiceSpec(
        "iam",
        iam_operations(service, mfa),
        "AWS::IAM::Resource",
        iam_resources,
        iam_checks(service.store, (*OPERATIONS, *MFA_OPERATIONS)),
    )
