"""What each IAM operation asks of the authorizer, generated from the Service
Authorization Reference (:mod:`strongroom.policy.operation_checks`). IAM supplies the
resolvers of its resource types and its request keys.

A resolver authorizes on the *stored* entity, as IAM does (IAM User Guide, "IAM
identifiers" and "Controlling access to IAM resources"): names are looked up ignoring
case, and the ARN is the stored one, with the entity's path and letter case. An entity
that does not exist is authorized on the ARN its name gives at the root path (AWS
answers AccessDenied before NoSuchEntity). A Create* operation is authorized on the ARN
being created, path included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from strongroom.iam import policy_rows
from strongroom.iam import repository as repo
from strongroom.iam.repository import Kind
from strongroom.iam.service import entity_arn
from strongroom.policy.operation_checks import (
    Authorization,
    CheckBuilder,
    ContextValues,
    Params,
    Resource,
    reference_checks,
)
from strongroom.store.engine import Store

Keys = dict[str, tuple[str, ...]]

# Operations whose UserName defaults to the calling IAM user: without it they are
# authorized on the caller's own user (the API references of CreateAccessKey,
# ListAccessKeys, UpdateAccessKey, DeleteAccessKey, GetUser and the login profile
# operations: "If you do not specify a user name, IAM determines the user name
# implicitly based on the Amazon Web Services access key ID signing the request").
_DEFAULTS_TO_CALLER = {
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "GetUser",
    "CreateLoginProfile",
    "GetLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
    "ChangePassword",  # always the caller's own user (it has no UserName)
    # ...and the MFA device operations on a user (their API references likewise).
    "EnableMFADevice",
    "DeactivateMFADevice",
    "ListMFADevices",
    "ResyncMFADevice",
}
_CREATES = {"CreateUser": "user", "CreateGroup": "group", "CreateRole": "role"}
_NAME_MEMBER: dict[Kind, str] = {"user": "UserName", "group": "GroupName", "role": "RoleName"}


def entity_keys(kind: Kind, entity: Any) -> Keys:
    """The condition keys a stored user, group or role defines: its tags (users and roles
    under both ``aws:ResourceTag`` and ``iam:ResourceTag``) and its permissions boundary
    (``iam:PermissionsBoundary``, which the reference lists only for the operations that
    AWS evaluates it on; the builder keeps it only there)."""
    keys: Keys = {}
    for key, value in getattr(entity, "tags", None) or ():
        keys[f"aws:ResourceTag/{key}"] = (value,)
        keys[f"iam:ResourceTag/{key}"] = (value,)
    boundary = getattr(entity, "permissions_boundary", None)
    if boundary:
        keys["iam:PermissionsBoundary"] = (boundary,)
    return keys


def _stored(conn: Connection, kind: Kind, account: str, name: str) -> Resource:
    entity = repo.find(conn, kind, account, name)
    if entity is None:
        return Resource(entity_arn(account, kind, "/", name), account)
    return Resource(entity.arn, account, keys=entity_keys(kind, entity))


def _caller_user(conn: Connection, caller: Any) -> list[Resource]:
    """The calling IAM user, as stored; none for a role session or the root user."""
    principal = getattr(caller, "principal", None)
    if principal is None or principal.kind != "user" or principal.session_token:
        return []
    return [_stored(conn, "user", caller.account_id, principal.arn.rsplit("/", 1)[-1])]


def _source_arn(conn: Connection, params: Params, kind: Kind) -> list[Resource]:
    """SimulatePrincipalPolicy's PolicySourceArn when it is a ``kind``: the stored entity
    if the ARN is its own, else the ARN as given."""
    arn = str(params.get("PolicySourceArn") or "")
    if f":{kind}/" not in arn or arn.count(":") < 5:
        return []
    account = arn.split(":")[4]
    found = _stored(conn, kind, account, arn.rsplit("/", 1)[-1])
    return [found if found.arn == arn else Resource(arn, account)]


class IamResolvers:
    """The resolvers of IAM's resource types (user, group, role, policy), reading the
    stored entities."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _entity(self, kind: Kind, caller: Any, operation: str, params: Params) -> list[Resource]:
        account = caller.account_id
        name = params.get(_NAME_MEMBER[kind])
        if _CREATES.get(operation) == kind:
            return [
                Resource(entity_arn(account, kind, params.get("Path") or "/", str(name)), account)
            ]
        with self._store.read() as conn:
            if operation == "SimulatePrincipalPolicy":
                return _source_arn(conn, params, kind)
            if not name:
                return _caller_user(conn, caller) if operation in _DEFAULTS_TO_CALLER else []
            found = _stored(conn, kind, account, str(name))
            if operation == "UpdateUser" and kind == "user":
                return [found, *self._renamed(conn, found, account, params)]
        return [found]

    @staticmethod
    def _renamed(conn: Connection, found: Resource, account: str, params: Params) -> list[Resource]:
        """UpdateUser's target ARN: "you must have permission on both the source object and
        the target object" (IAM User Guide, "Renaming an IAM user")."""
        if not params.get("NewUserName") and not params.get("NewPath"):
            return []
        user = repo.find_user(conn, account, str(params["UserName"]))
        path = params.get("NewPath") or (user.path if user is not None else "/")
        name = params.get("NewUserName") or (user.name if user is not None else params["UserName"])
        target = entity_arn(account, "user", path, name)
        return [] if target == found.arn else [Resource(target, account)]

    def user(self, caller: Any, operation: str, params: Params) -> Sequence[Resource]:
        if operation == "GetAccessKeyLastUsed":
            return self._key_owner(caller, params)
        return self._entity("user", caller, operation, params)

    def group(self, caller: Any, operation: str, params: Params) -> Sequence[Resource]:
        return self._entity("group", caller, operation, params)

    def role(self, caller: Any, operation: str, params: Params) -> Sequence[Resource]:
        return self._entity("role", caller, operation, params)

    def policy(self, caller: Any, operation: str, params: Params) -> Sequence[Resource]:
        account = caller.account_id
        if operation == "CreatePolicy":
            path = params.get("Path") or "/"
            return [Resource(f"arn:aws:iam::{account}:policy{path}{params['PolicyName']}", account)]
        arn = str(params["PolicyArn"])
        with self._store.read() as conn:
            record = policy_rows.find_policy(conn, arn)
        if record is None:
            # An AWS managed policy (account "aws") belongs to no account: it is read
            # with the caller's own permissions, as any policy of the caller's account.
            owner = arn.split(":")[4] if arn.count(":") >= 5 else None
            return [Resource(arn, None if owner == "aws" else owner)]
        keys = {f"aws:ResourceTag/{key}": (value,) for key, value in record.tags or ()}
        return [Resource(record.arn, record.account_id, keys=keys)]

    def mfa(self, caller: Any, operation: str, params: Params) -> Sequence[Resource]:
        """A virtual MFA device: the one being created, or the one a SerialNumber names."""
        account = caller.account_id
        if operation == "CreateVirtualMFADevice":
            path = params.get("Path") or "/"
            name = params["VirtualMFADeviceName"]
            return [Resource(f"arn:aws:iam::{account}:mfa{path}{name}", account)]
        serial = str(params.get("SerialNumber") or "")
        if not serial:
            return []
        with self._store.read() as conn:
            tags = repo.mfa_device_tags(conn, account, serial)
        return [Resource(serial, account, keys={f"aws:ResourceTag/{k}": (v,) for k, v in tags})]

    @staticmethod
    def sms_mfa(caller: Any, operation: str, params: Params) -> Sequence[Resource]:
        """SMS MFA devices (a retired AWS feature) are not offered: none is ever named."""
        return []

    def _key_owner(self, caller: Any, params: Params) -> list[Resource]:
        """GetAccessKeyLastUsed is authorized on the user that owns the key."""
        with self._store.read() as conn:
            key = repo.access_key(conn, str(params["AccessKeyId"]))
            if (
                key is None
                or key.account_id != caller.account_id
                or ":user/" not in key.principal_arn
            ):
                return []
            return [_stored(conn, "user", key.account_id, key.principal_arn.rsplit("/", 1)[-1])]


def iam_request_keys(_caller: Any, operation: str, params: Params) -> ContextValues:
    """The condition keys IAM's request members define."""
    keys: Keys = {}
    tags = params.get("Tags")
    if tags:
        for tag in tags:
            keys[f"aws:RequestTag/{tag.get('Key', '')}"] = (tag.get("Value", ""),)
        keys["aws:TagKeys"] = tuple(tag.get("Key", "") for tag in tags)
    if operation in ("UntagUser", "UntagRole") and params.get("TagKeys"):
        keys["aws:TagKeys"] = tuple(params["TagKeys"])
    if params.get("PolicyArn") and operation.startswith(("Attach", "Detach")):
        keys["iam:PolicyARN"] = (str(params["PolicyArn"]),)
    if params.get("PermissionsBoundary"):
        # The boundary being set wins over the entity's current one.
        keys["iam:PermissionsBoundary"] = (str(params["PermissionsBoundary"]),)
    return keys


def iam_authorization(store: Store) -> Authorization:
    resolvers = IamResolvers(store)
    return Authorization(
        "iam",
        {
            "user": resolvers.user,
            "group": resolvers.group,
            "role": resolvers.role,
            "policy": resolvers.policy,
            "mfa": resolvers.mfa,
            "sms-mfa": resolvers.sms_mfa,
        },
        iam_request_keys,
    )


def iam_checks(store: Store, operations: Sequence[str]) -> CheckBuilder:
    return reference_checks(iam_authorization(store), operations)
