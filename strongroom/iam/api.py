"""The IAM service facade: operation names (botocore's ``iam`` model) to domain methods."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from strongroom.iam.authorization import iam_checks
from strongroom.iam.mfa import OPERATIONS as MFA_OPERATIONS
from strongroom.iam.mfa import MfaDevices, mfa_operations
from strongroom.iam.repository import Kind
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
    "ChangePassword",
    # the policy simulator
    "SimulatePrincipalPolicy",
    "SimulateCustomPolicy",
)
_SIMULATOR = ("SimulatePrincipalPolicy", "SimulateCustomPolicy")
# Operations that differ only in the kind of entity they are about: one handler of the
# service serves each family, bound here to its kind (operation -> (method, kind)).
_BY_KIND: dict[str, tuple[str, Kind]] = {
    "TagUser": ("tag", "user"),
    "UntagUser": ("untag", "user"),
    "ListUserTags": ("list_tags", "user"),
    "TagRole": ("tag", "role"),
    "UntagRole": ("untag", "role"),
    "ListRoleTags": ("list_tags", "role"),
    "PutUserPolicy": ("put_inline", "user"),
    "GetUserPolicy": ("get_inline", "user"),
    "ListUserPolicies": ("list_inline", "user"),
    "DeleteUserPolicy": ("delete_inline", "user"),
    "PutGroupPolicy": ("put_inline", "group"),
    "GetGroupPolicy": ("get_inline", "group"),
    "ListGroupPolicies": ("list_inline", "group"),
    "DeleteGroupPolicy": ("delete_inline", "group"),
    "PutRolePolicy": ("put_inline", "role"),
    "GetRolePolicy": ("get_inline", "role"),
    "ListRolePolicies": ("list_inline", "role"),
    "DeleteRolePolicy": ("delete_inline", "role"),
    "AttachUserPolicy": ("attach", "user"),
    "DetachUserPolicy": ("detach", "user"),
    "ListAttachedUserPolicies": ("list_attached", "user"),
    "AttachGroupPolicy": ("attach", "group"),
    "DetachGroupPolicy": ("detach", "group"),
    "ListAttachedGroupPolicies": ("list_attached", "group"),
    "AttachRolePolicy": ("attach", "role"),
    "DetachRolePolicy": ("detach", "role"),
    "ListAttachedRolePolicies": ("list_attached", "role"),
    "PutUserPermissionsBoundary": ("put_boundary", "user"),
    "DeleteUserPermissionsBoundary": ("delete_boundary", "user"),
    "PutRolePermissionsBoundary": ("put_boundary", "role"),
    "DeleteRolePermissionsBoundary": ("delete_boundary", "role"),
}


def iam_operations(service: IdentityService, mfa: MfaDevices) -> dict[str, Handler]:
    """Operation name -> handler(caller, params), the caller a :class:`strongroom.types.Caller`."""
    simulator = PolicySimulator(service.store, service.tokens)
    handlers: dict[str, Handler] = {}
    for name in OPERATIONS:
        if name in _BY_KIND:
            method, kind = _BY_KIND[name]
            handlers[name] = partial(getattr(service, method), kind)
        else:
            handlers[name] = getattr(simulator if name in _SIMULATOR else service, snake_case(name))
    return {**handlers, **mfa_operations(mfa)}


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
