# long module: to be split by noun (users, groups, roles, policies, login profiles) after the
# parallel changes of this wave merge (issue 13 section 3).
"""IAM's domain logic: users, access keys, groups, roles, inline and managed policies,
permissions boundaries and login profiles, over the store.

Every public method named after an operation is one operation: it takes the caller and
the parsed input members (the botocore ``iam`` model's names) and returns the output
members of the model's output shape. Checks come before writes and each write operation
is one transaction, so a refused request changes nothing. Errors carry IAM's codes and,
where AWS's wording is on record, its messages.

Besides the operations, the authorizer and STS read identities through
:meth:`IdentityService.principal_policies`, :meth:`IdentityService.role` and
:meth:`IdentityService.generation` (the authorizer through the
:class:`strongroom.types.Identities` protocol). :meth:`IdentityService.verify_password`
checks a login profile's password; no sign-in is served yet.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from strongroom.clock import Clock, from_ms, to_ms
from strongroom.iam import managed_policies, passwords
from strongroom.iam import repository as repo
from strongroom.iam.credentials import CredentialStore
from strongroom.iam.managed_policies import AwsManagedPolicy
from strongroom.iam.repository import (
    Entity,
    GroupRecord,
    Kind,
    LoginProfileRecord,
    PolicyRecord,
    RoleRecord,
    Tags,
    UserRecord,
    VersionRecord,
)
from strongroom.keys.envelope import Barrier
from strongroom.policy.document import parse_policy
from strongroom.protocol.errors import ServiceError, validation_error
from strongroom.protocol.pagination import MIN_KEY_LENGTH, TokenCodec
from strongroom.protocol.query_codec import modeled_error
from strongroom.store.cache import EVERYTHING, Namespace
from strongroom.store.engine import Store, cached
from strongroom.types import Caller, PrincipalPolicies

Params = Mapping[str, Any]
Output = dict[str, Any]
T = TypeVar("T")

# Read by every authorization: cached per process (store/cache.py).
_GENERATION = Namespace("iam-generation", ("iam_generation",))
_ORGANIZATION = Namespace("account-organization", ("organization_accounts",))


MALFORMED = "MalformedPolicyDocument"

# Quotas (IAM User Guide, "IAM and AWS STS quotas"): the defaults AWS applies.
MAX_ACCESS_KEYS = 2
MAX_GROUPS_PER_USER = 10
MAX_ATTACHED_POLICIES = 10
MAX_POLICY_VERSIONS = 5
MAX_TAGS = 50
# Policy sizes are counted in characters without whitespace, as IAM counts them.
INLINE_POLICY_SIZE: dict[Kind, int] = {"user": 2048, "group": 5120, "role": 10240}
MANAGED_POLICY_SIZE = 6144
TRUST_POLICY_SIZE = 2048
DEFAULT_SESSION_DURATION = 3600
MIN_SESSION_DURATION = 3600
MAX_SESSION_DURATION = 43200
DEFAULT_MAX_ITEMS = 100
MAX_MAX_ITEMS = 1000

ADMIN_USER = "admin"
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_NAME_MEMBER: dict[Kind, str] = {"user": "UserName", "group": "GroupName", "role": "RoleName"}
_TITLE: dict[Kind, str] = {"user": "User", "group": "Group", "role": "Role"}
_POLICY_ARN = re.compile(r"arn:aws:iam::(aws|[0-9]{12}):policy(/(?:[^/]+/)*)([^/]+)")
_IAM_PRINCIPAL = re.compile(r"arn:aws:iam::([0-9]{12}):(user|role)(/(?:[^/]+/)*)([^/]+)")
_ASSUMED_ROLE = re.compile(r"arn:aws:sts::([0-9]{12}):assumed-role/([^/]+)/(.+)")
_WHITESPACE = re.compile(r"\s")


@dataclass(frozen=True)
class RoleInfo:
    """A role as STS AssumeRole needs it."""

    arn: str
    role_id: str
    role_name: str
    path: str
    trust_policy: str
    max_session_duration: int
    permissions_boundary: str | None  # the boundary policy's ARN
    tags: dict[str, str]


# Errors, with IAM's codes; their status codes come from IAM's model ---------------------


def _no_such_entity(message: str) -> ServiceError:
    return modeled_error("iam", "NoSuchEntity", message)


def _already_exists(message: str) -> ServiceError:
    return modeled_error("iam", "EntityAlreadyExists", message)


def _delete_conflict(message: str) -> ServiceError:
    return modeled_error("iam", "DeleteConflict", message)


def _limit_exceeded(message: str) -> ServiceError:
    return modeled_error("iam", "LimitExceeded", message)


def _invalid_input(message: str) -> ServiceError:
    return modeled_error("iam", "InvalidInput", message)


def _validation_error(message: str) -> ServiceError:
    return validation_error(message, "query")


def _entity_not_found(kind: Kind, name: str) -> ServiceError:
    return _no_such_entity(f"The {kind} with name {name} cannot be found.")


def _policy_not_found(arn: str) -> ServiceError:
    return _no_such_entity(f"Policy {arn} was not found.")


def _not_attachable(arn: str) -> ServiceError:
    return _no_such_entity(f"Policy {arn} does not exist or is not attachable.")


def _access_key_not_found(access_key_id: str) -> ServiceError:
    return _no_such_entity(f"The Access Key with id {access_key_id} cannot be found.")


def _aws_managed_is_read_only(caller: Caller, action: str, arn: str) -> ServiceError:
    # AWS managed policies live in AWS's account: changing one is a cross-account write
    # nobody is allowed, so AWS answers it as an authorization failure.
    return modeled_error(
        "iam",
        "AccessDenied",
        f"User: {caller.principal_arn} is not authorized to perform: iam:{action} "
        f"on resource: policy {arn}",
    )


@contextmanager
def _unique(error: ServiceError) -> Iterator[None]:
    """Inserting a name a concurrent request has just taken (on a database where writers
    do not queue as they do on SQLite) answers as if the name had been seen taken."""
    try:
        yield
    except IntegrityError:
        raise error from None


# Small helpers -------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    """An IAM unique id: a four-letter prefix and 17 base32 characters, 21 in all."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def entity_arn(account_id: str, kind: Kind, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:{kind}{path}{name}"


def _policy_size(document: str) -> int:
    return len(_WHITESPACE.sub("", document))


def _url_encoded(document: str) -> str:
    # IAM returns policy documents URL-encoded (RFC 3986); botocore decodes them.
    return quote(document, safe="")


def _parse_identity_policy(document: str) -> None:
    parse_policy(document, kind="identity", error_code=MALFORMED)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _value in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _parse_trust_policy(document: str) -> None:
    """A role trust policy: a resource-based policy whose statements name no resource (the
    role is the resource). The parser wants one, so each statement gets ``"*"`` for the
    check; the document stored is the one given."""
    try:
        parsed = json.loads(document, object_pairs_hook=_unique_keys)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        parse_policy(document, kind="resource", error_code=MALFORMED)  # says what is wrong
        raise ServiceError(MALFORMED, "Syntax errors in policy.")
    raw = parsed.get("Statement")
    for statement in raw if isinstance(raw, list) else [raw]:
        if isinstance(statement, dict):
            for element in ("Resource", "NotResource"):
                if element in statement:
                    raise ServiceError(MALFORMED, f"Has prohibited field {element}")
            statement["Resource"] = "*"
    parse_policy(json.dumps(parsed), kind="resource", error_code=MALFORMED)
    if _policy_size(document) > TRUST_POLICY_SIZE:
        raise _limit_exceeded(f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_SIZE}")


def _check_session_duration(seconds: int) -> None:
    if seconds < MIN_SESSION_DURATION:
        bound = f"greater than or equal to {MIN_SESSION_DURATION}"
    elif seconds > MAX_SESSION_DURATION:
        bound = f"less than or equal to {MAX_SESSION_DURATION}"
    else:
        return
    raise _validation_error(
        f"1 validation error detected: Value '{seconds}' at 'maxSessionDuration' failed to "
        f"satisfy constraint: Member must have value {bound}"
    )


def _parse_policy_arn(arn: str) -> tuple[str, str, str]:
    """(account id or "aws", path, name) of a managed policy ARN."""
    match = _POLICY_ARN.fullmatch(arn)
    if match is None:
        raise _invalid_input(f"ARN {arn} is not valid.")
    return match.group(1), match.group(2), match.group(3)


# Tags: keys compare ignoring case, as IAM's do; a tag keeps the spelling last written.


def _tags_in(raw: Sequence[Mapping[str, str]] | None) -> Tags:
    tags: Tags = []
    seen: set[str] = set()
    for tag in raw or []:
        key = tag["Key"]
        if key.lower() in seen:
            raise _invalid_input(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        seen.add(key.lower())
        tags.append([key, tag.get("Value", "")])
    return tags


def _check_tag_quota(tags: Tags, holder: str) -> Tags:
    """``tags``, unless there are more than IAM allows a ``holder`` (User, Role, Policy)."""
    if len(tags) > MAX_TAGS:
        raise _limit_exceeded(f"Cannot exceed quota for TagsPer{holder}: {MAX_TAGS}")
    return tags


def _merge_tags(existing: Tags | None, new: Tags, kind: Kind) -> Tags:
    merged = [list(tag) for tag in existing or []]
    for key, value in new:
        for tag in merged:
            if tag[0].lower() == key.lower():
                tag[0], tag[1] = key, value
                break
        else:
            merged.append([key, value])
    _check_tag_quota(merged, _TITLE[kind])
    return merged


def _tags_out(tags: Tags | None) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags or []]


def _tag_dict(tags: Tags | None) -> dict[str, str]:
    return {key: value for key, value in tags or []}


# Pagination: Marker is a NextToken of the shared codec (protocol/pagination.py): signed,
# bound to its operation, holding the last item's sort key.


def _max_items(params: Params) -> int:
    return max(1, min(int(params.get("MaxItems") or DEFAULT_MAX_ITEMS), MAX_MAX_ITEMS))


def _encode_marker(tokens: TokenCodec, scope: str, key: Sequence[str]) -> str:
    return tokens.encode(scope, {"after": list(key)})


def _decode_marker(tokens: TokenCodec, scope: str, params: Params) -> tuple[str, ...] | None:
    marker = params.get("Marker")
    if not marker:
        return None
    try:
        after = tokens.decode(scope, marker).get("after")
    except ServiceError:
        after = None  # IAM answers a bad Marker with its own error
    if not isinstance(after, list) or not after or not all(isinstance(p, str) for p in after):
        raise _invalid_input("Invalid Marker.")
    return tuple(after)


def _page(
    tokens: TokenCodec,
    scope: str,
    params: Params,
    items: Sequence[T],
    key: Callable[[T], tuple[str, ...]],
) -> tuple[list[T], Output]:
    """One page of ``items`` (sorted by ``key``) and its IsTruncated/Marker members."""
    after = _decode_marker(tokens, scope, params)
    rest = [item for item in items if after is None or key(item) > after]
    limit = _max_items(params)
    page = rest[:limit]
    extra: Output = {"IsTruncated": len(rest) > limit}
    if len(rest) > limit:
        extra["Marker"] = _encode_marker(tokens, scope, key(page[-1]))
    return page, extra


def _position(index: int) -> tuple[str, ...]:
    return (f"{index:08d}",)


# Output shapes ---------------------------------------------------------------------------


def _boundary_out(arn: str) -> dict[str, str]:
    return {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": arn}


def _user_out(user: UserRecord, *, full: bool) -> Output:
    """A User; list operations leave out PermissionsBoundary and Tags, as IAM's do."""
    out: Output = {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.id,
        "Arn": user.arn,
        "CreateDate": from_ms(user.created_ms),
    }
    if user.password_last_used_ms is not None:
        out["PasswordLastUsed"] = from_ms(user.password_last_used_ms)
    if full and user.permissions_boundary:
        out["PermissionsBoundary"] = _boundary_out(user.permissions_boundary)
    if full and user.tags:
        out["Tags"] = _tags_out(user.tags)
    return out


def _group_out(group: GroupRecord) -> Output:
    return {
        "Path": group.path,
        "GroupName": group.name,
        "GroupId": group.id,
        "Arn": group.arn,
        "CreateDate": from_ms(group.created_ms),
    }


def _role_out(role: RoleRecord, *, full: bool, last_used: bool = False) -> Output:
    """A Role; ListRoles leaves out PermissionsBoundary, RoleLastUsed and Tags."""
    out: Output = {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.id,
        "Arn": role.arn,
        "CreateDate": from_ms(role.created_ms),
        "AssumeRolePolicyDocument": _url_encoded(role.trust_policy),
        "MaxSessionDuration": role.max_session_duration,
    }
    if role.description is not None:
        out["Description"] = role.description
    if full and role.permissions_boundary:
        out["PermissionsBoundary"] = _boundary_out(role.permissions_boundary)
    if full and role.tags:
        out["Tags"] = _tags_out(role.tags)
    if last_used:
        used: Output = {}
        if role.last_used_ms is not None:
            used["LastUsedDate"] = from_ms(role.last_used_ms)
            used["Region"] = role.last_used_region
        out["RoleLastUsed"] = used
    return out


@dataclass(frozen=True)
class _Managed:
    """A managed policy: customer managed (``record``) or AWS managed (``aws``)."""

    arn: str
    policy_id: str
    name: str
    path: str
    description: str | None
    default_version: str
    created_ms: int
    updated_ms: int
    tags: Tags | None
    record: PolicyRecord | None = None
    aws: AwsManagedPolicy | None = None

    @classmethod
    def local(cls, record: PolicyRecord) -> _Managed:
        return cls(
            record.arn,
            record.id,
            record.name,
            record.path,
            record.description,
            record.default_version,
            record.created_ms,
            record.updated_ms,
            record.tags,
            record=record,
        )

    @classmethod
    def of_aws(cls, policy: AwsManagedPolicy) -> _Managed:
        return cls(
            policy.arn,
            policy.policy_id,
            policy.name,
            policy.path,
            policy.description,
            policy.version_id,
            to_ms(policy.created),
            to_ms(policy.updated),
            None,
            aws=policy,
        )

    def out(self, attachments: int, boundaries: int, *, full: bool) -> Output:
        """A Policy; ListPolicies leaves out Description and Tags, as IAM's does."""
        out: Output = {
            "PolicyName": self.name,
            "PolicyId": self.policy_id,
            "Arn": self.arn,
            "Path": self.path,
            "DefaultVersionId": self.default_version,
            "AttachmentCount": attachments,
            "PermissionsBoundaryUsageCount": boundaries,
            "IsAttachable": True,
            "CreateDate": from_ms(self.created_ms),
            "UpdateDate": from_ms(self.updated_ms),
        }
        if full:
            if self.description:
                out["Description"] = self.description
            out["Tags"] = _tags_out(self.tags)
        return out


def _version_out(version: VersionRecord, default: str, *, document: bool) -> Output:
    """A PolicyVersion; only GetPolicyVersion returns its Document (URL-encoded)."""
    out: Output = {
        "VersionId": version.version_id,
        "IsDefaultVersion": version.version_id == default,
        "CreateDate": from_ms(version.created_ms),
    }
    if document:
        out["Document"] = _url_encoded(version.document)
    return out


def _principal_name(arn: str) -> tuple[str, Kind, str] | None:
    """(account id, "user" | "role", name) of a user, role or role-session ARN."""
    match = _IAM_PRINCIPAL.fullmatch(arn)
    if match is not None:
        return match.group(1), "user" if match.group(2) == "user" else "role", match.group(4)
    match = _ASSUMED_ROLE.fullmatch(arn)
    if match is not None:
        return match.group(1), "role", match.group(2)
    return None


def create_admin_user(conn: Connection, account_id: str, now_ms: int) -> UserRecord:
    """The bootstrap administrator ``user/admin`` with AdministratorAccess attached, inside
    the caller's transaction (``strongroom init`` and ``--dev``). Its access key is made by
    the caller, for :func:`strongroom.iam.credentials.admin_arn`."""
    user = UserRecord(
        id=new_id("AIDA"),
        account_id=account_id,
        name=ADMIN_USER,
        name_key=ADMIN_USER,
        path="/",
        arn=entity_arn(account_id, "user", "/", ADMIN_USER),
        permissions_boundary=None,
        tags=None,
        created_ms=now_ms,
        password_last_used_ms=None,
    )
    repo.insert_entity(conn, "user", user)
    repo.attach(
        conn, "user", user.id, account_id, managed_policies.ADMINISTRATOR_ACCESS.arn, now_ms
    )
    repo.bump_generation(conn)
    return user


def trust_account_document(trusted_account_id: str) -> str:
    """A trust policy that lets ``trusted_account_id`` (its identity policies deciding who)
    assume the role: the one AWS Organizations gives OrganizationAccountAccessRole."""
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{trusted_account_id}:root"},
        "Action": "sts:AssumeRole",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def create_account_access_role(
    conn: Connection, account_id: str, role_name: str, trusted_account_id: str, now_ms: int
) -> RoleRecord:
    """The administrator role AWS Organizations creates in a new member account: trusted by
    the management account, with AdministratorAccess attached; inside the caller's
    transaction (Organizations CreateAccount)."""
    role = RoleRecord(
        id=new_id("AROA"),
        account_id=account_id,
        name=role_name,
        name_key=role_name.lower(),
        path="/",
        arn=entity_arn(account_id, "role", "/", role_name),
        description=None,
        trust_policy=trust_account_document(trusted_account_id),
        max_session_duration=DEFAULT_SESSION_DURATION,
        permissions_boundary=None,
        tags=None,
        created_ms=now_ms,
        last_used_ms=None,
        last_used_region=None,
    )
    repo.insert_entity(conn, "role", role)
    repo.attach(
        conn, "role", role.id, account_id, managed_policies.ADMINISTRATOR_ACCESS.arn, now_ms
    )
    repo.bump_generation(conn)
    return role


class IdentityService:
    def __init__(
        self,
        store: Store,
        barrier: Barrier,
        clock: Clock,
        credentials: CredentialStore | None = None,
        tokens: TokenCodec | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._credentials = credentials or CredentialStore(store, barrier, clock)
        # Markers sign with the deployment's shared key, so every worker reads another's;
        # without one (a standalone service), with a key of this instance's own.
        self._tokens = tokens or TokenCodec(os.urandom(MIN_KEY_LENGTH))

    @property
    def store(self) -> Store:
        """IAM's store, for the policy simulator's reads (:mod:`strongroom.iam.simulate`)."""
        return self._store

    @property
    def tokens(self) -> TokenCodec:
        """The codec of IAM's Marker values, shared with the policy simulator."""
        return self._tokens

    # Plumbing ---------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction; every IAM write moves the generation on."""
        with self._store.write() as conn:
            yield conn
            repo.bump_generation(conn)

    def _require(self, conn: Connection, kind: Kind, account_id: str, name: str) -> Any:
        entity = repo.find(conn, kind, account_id, name)
        if entity is None:
            raise _entity_not_found(kind, name)
        return entity

    def _user(self, conn: Connection, caller: Caller, name: str) -> UserRecord:
        user: UserRecord = self._require(conn, "user", caller.account_id, name)
        return user

    def _group(self, conn: Connection, caller: Caller, name: str) -> GroupRecord:
        group: GroupRecord = self._require(conn, "group", caller.account_id, name)
        return group

    def _role(self, conn: Connection, caller: Caller, name: str) -> RoleRecord:
        role: RoleRecord = self._require(conn, "role", caller.account_id, name)
        return role

    @staticmethod
    def _user_name(caller: Caller, params: Params) -> str:
        """UserName, or the calling user's own name when it is left out."""
        name = params.get("UserName")
        if name:
            return str(name)
        principal = _principal_name(caller.principal_arn)
        if (
            principal is None
            or principal[1] != "user"
            or principal[0] != caller.account_id
            or ":sts::" in caller.principal_arn
        ):
            raise _validation_error("Must specify userName when calling with non-User credentials")
        return principal[2]

    def _managed(self, conn: Connection, caller: Caller, arn: str) -> _Managed | None:
        """The managed policy ``arn`` as the caller's account sees it, or None."""
        account, _path, _name = _parse_policy_arn(arn)
        if account == "aws":
            policy = managed_policies.find(arn)
            return _Managed.of_aws(policy) if policy is not None else None
        if account != caller.account_id:
            return None
        record = repo.find_policy(conn, arn)
        return _Managed.local(record) if record is not None else None

    def _require_policy(self, conn: Connection, caller: Caller, arn: str) -> _Managed:
        policy = self._managed(conn, caller, arn)
        if policy is None:
            raise _policy_not_found(arn)
        return policy

    def _local_policy(
        self, conn: Connection, caller: Caller, arn: str, action: str
    ) -> PolicyRecord:
        policy = self._require_policy(conn, caller, arn)
        if policy.record is None:
            raise _aws_managed_is_read_only(caller, action, arn)
        return policy.record

    def _check_boundary(self, conn: Connection, caller: Caller, arn: str) -> None:
        if self._managed(conn, caller, arn) is None:
            raise _no_such_entity(f"Scope ARN: {arn} does not exist or is not attachable.")

    def _counts(
        self, conn: Connection, caller: Caller, arns: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """(attachment count, permissions boundary use count) of each policy ARN."""
        return (
            repo.attachment_counts(conn, caller.account_id, arns),
            repo.boundary_counts(conn, caller.account_id, arns),
        )

    def _list(self, kind: Kind, caller: Caller, params: Params) -> tuple[list[Any], Output]:
        """A page of ListUsers, ListGroups or ListRoles, read in name order from the store."""
        scope = f"List{_TITLE[kind]}s"
        after = _decode_marker(self._tokens, scope, params)
        limit = _max_items(params)
        with self._store.read() as conn:
            found = repo.scan(
                conn,
                kind,
                caller.account_id,
                params.get("PathPrefix") or "/",
                after[0] if after else None,
                limit + 1,
            )
        page = found[:limit]
        extra: Output = {"IsTruncated": len(found) > limit}
        if len(found) > limit:
            extra["Marker"] = _encode_marker(self._tokens, scope, (page[-1].name_key,))
        return page, extra

    # Users ------------------------------------------------------------------------------

    def create_user(self, caller: Caller, params: Params) -> Output:
        name: str = params["UserName"]
        path: str = params.get("Path") or "/"
        tags = _check_tag_quota(_tags_in(params.get("Tags")), "User")
        boundary: str | None = params.get("PermissionsBoundary") or None
        with self._write() as conn:
            if repo.find_user(conn, caller.account_id, name) is not None:
                raise _already_exists(f"User with name {name} already exists.")
            if boundary is not None:
                self._check_boundary(conn, caller, boundary)
            user = UserRecord(
                id=new_id("AIDA"),
                account_id=caller.account_id,
                name=name,
                name_key=name.lower(),
                path=path,
                arn=entity_arn(caller.account_id, "user", path, name),
                permissions_boundary=boundary,
                tags=tags or None,
                created_ms=self._now_ms(),
                password_last_used_ms=None,
            )
            with _unique(_already_exists(f"User with name {name} already exists.")):
                repo.insert_entity(conn, "user", user)
        return {"User": _user_out(user, full=True)}

    def get_user(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        with self._store.read() as conn:
            user = self._user(conn, caller, name)
        return {"User": _user_out(user, full=True)}

    def list_users(self, caller: Caller, params: Params) -> Output:
        users, extra = self._list("user", caller, params)
        return {"Users": [_user_out(user, full=False) for user in users], **extra}

    def update_user(self, caller: Caller, params: Params) -> Output:
        new_name: str | None = params.get("NewUserName") or None
        new_path: str | None = params.get("NewPath") or None
        with self._write() as conn:
            user = self._user(conn, caller, params["UserName"])
            if (
                new_name is not None
                and new_name.lower() != user.name_key
                and repo.find_user(conn, caller.account_id, new_name) is not None
            ):
                raise _already_exists(f"User with name {new_name} already exists.")
            name = new_name or user.name
            path = new_path or user.path
            arn = entity_arn(caller.account_id, "user", path, name)
            if (name, path) != (user.name, user.path):
                old_arn = user.arn
                repo.update_entity(
                    conn, "user", user, name=name, name_key=name.lower(), path=path, arn=arn
                )
                if arn != old_arn:
                    repo.move_access_keys(conn, old_arn, arn)
        return {}

    def delete_user(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            user = self._user(conn, caller, params["UserName"])
            # What must go first, in the order of the DeleteUser documentation.
            if repo.login_profile(conn, user.id) is not None:
                raise _delete_conflict("Cannot delete entity, must delete login profile first.")
            if repo.access_keys_of(conn, user.arn):
                raise _delete_conflict("Cannot delete entity, must delete access keys first.")
            if repo.has_mfa_devices(conn, user.id):
                raise _delete_conflict("Cannot delete entity, must delete MFA device first.")
            if repo.inline_policies(conn, user.id):
                raise _delete_conflict("Cannot delete entity, must delete policies first.")
            if repo.attached(conn, user.id):
                raise _delete_conflict("Cannot delete entity, must detach all policies first.")
            if repo.groups_of(conn, user.id):
                raise _delete_conflict("Cannot delete entity, must remove users from group first.")
            repo.delete_entity(conn, "user", user.id)
        return {}

    def tag_user(self, caller: Caller, params: Params) -> Output:
        return self._tag("user", caller, params)

    def untag_user(self, caller: Caller, params: Params) -> Output:
        return self._untag("user", caller, params)

    def list_user_tags(self, caller: Caller, params: Params) -> Output:
        return self._list_tags("user", caller, params)

    # Tags of users and roles ------------------------------------------------------------

    def _tag(self, kind: Kind, caller: Caller, params: Params) -> Output:
        new = _tags_in(params["Tags"])
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            repo.update_entity(conn, kind, entity, tags=_merge_tags(entity.tags, new, kind))
        return {}

    def _untag(self, kind: Kind, caller: Caller, params: Params) -> Output:
        gone = {key.lower() for key in params["TagKeys"]}
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            kept = [tag for tag in entity.tags or [] if tag[0].lower() not in gone]
            repo.update_entity(conn, kind, entity, tags=kept or None)
        return {}

    def _list_tags(self, kind: Kind, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
        indexed = list(enumerate(_tags_out(entity.tags)))
        page, extra = _page(
            self._tokens, f"List{_TITLE[kind]}Tags", params, indexed, lambda i: _position(i[0])
        )
        return {"Tags": [tag for _index, tag in page], **extra}

    # Access keys ------------------------------------------------------------------------

    def create_access_key(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        with self._write() as conn:
            user = self._user(conn, caller, name)
            if len(repo.access_keys_of(conn, user.arn)) >= MAX_ACCESS_KEYS:
                raise _limit_exceeded(
                    f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}"
                )
            key_id, secret = self._credentials.create_access_key(conn, caller.account_id, user.arn)
            key = repo.access_key(conn, key_id)
            assert key is not None
        return {
            "AccessKey": {
                "UserName": user.name,
                "AccessKeyId": key_id,
                "Status": key.status,
                "SecretAccessKey": secret,
                "CreateDate": from_ms(key.created_ms),
            }
        }

    def list_access_keys(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        with self._store.read() as conn:
            user = self._user(conn, caller, name)
            keys = repo.access_keys_of(conn, user.arn)
        page, extra = _page(
            self._tokens,
            "ListAccessKeys",
            params,
            keys,
            lambda k: (f"{k.created_ms:015d}", k.access_key_id),
        )
        return {
            "AccessKeyMetadata": [
                {
                    "UserName": user.name,
                    "AccessKeyId": key.access_key_id,
                    "Status": key.status,
                    "CreateDate": from_ms(key.created_ms),
                }
                for key in page
            ],
            **extra,
        }

    def _user_key(self, conn: Connection, caller: Caller, params: Params) -> repo.AccessKeyRecord:
        user = self._user(conn, caller, self._user_name(caller, params))
        key_id: str = params["AccessKeyId"]
        key = repo.access_key(conn, key_id)
        if key is None or key.principal_arn != user.arn:
            raise _access_key_not_found(key_id)
        return key

    def update_access_key(self, caller: Caller, params: Params) -> Output:
        status: str = params["Status"]
        if status not in ("Active", "Inactive"):
            raise _invalid_input(
                f"Invalid value for parameter Status, value: {status}, "
                "valid values: Active, Inactive"
            )
        with self._write() as conn:
            key = self._user_key(conn, caller, params)
            repo.set_access_key_status(conn, key.access_key_id, status)
        return {}

    def delete_access_key(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            key = self._user_key(conn, caller, params)
            repo.delete_access_key(conn, key.access_key_id)
        return {}

    def get_access_key_last_used(self, caller: Caller, params: Params) -> Output:
        key_id: str = params["AccessKeyId"]
        with self._store.read() as conn:
            key = repo.access_key(conn, key_id)
        if key is None or key.account_id != caller.account_id:
            raise _access_key_not_found(key_id)
        used: Output = {
            "ServiceName": key.last_used_service or "N/A",
            "Region": key.last_used_region or "N/A",
        }
        if key.last_used_ms is not None:
            used["LastUsedDate"] = from_ms(key.last_used_ms)
        out: Output = {"AccessKeyLastUsed": used}
        owner = _principal_name(key.principal_arn)
        if owner is not None and owner[1] == "user":
            out["UserName"] = owner[2]
        return out

    # Groups -----------------------------------------------------------------------------

    def create_group(self, caller: Caller, params: Params) -> Output:
        name: str = params["GroupName"]
        path: str = params.get("Path") or "/"
        with self._write() as conn:
            if repo.find_group(conn, caller.account_id, name) is not None:
                raise _already_exists(f"Group with name {name} already exists.")
            group = GroupRecord(
                id=new_id("AGPA"),
                account_id=caller.account_id,
                name=name,
                name_key=name.lower(),
                path=path,
                arn=entity_arn(caller.account_id, "group", path, name),
                created_ms=self._now_ms(),
            )
            with _unique(_already_exists(f"Group with name {name} already exists.")):
                repo.insert_entity(conn, "group", group)
        return {"Group": _group_out(group)}

    def get_group(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            group = self._group(conn, caller, params["GroupName"])
            users = repo.members(conn, group.id)
        page, extra = _page(self._tokens, "GetGroup", params, users, lambda u: (u.name_key,))
        return {
            "Group": _group_out(group),
            "Users": [_user_out(user, full=False) for user in page],
            **extra,
        }

    def list_groups(self, caller: Caller, params: Params) -> Output:
        groups, extra = self._list("group", caller, params)
        return {"Groups": [_group_out(group) for group in groups], **extra}

    def delete_group(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            group = self._group(conn, caller, params["GroupName"])
            if repo.members(conn, group.id):
                raise _delete_conflict("Cannot delete entity, must remove users from group first.")
            if repo.inline_policies(conn, group.id):
                raise _delete_conflict("Cannot delete entity, must delete policies first.")
            if repo.attached(conn, group.id):
                raise _delete_conflict("Cannot delete entity, must detach all policies first.")
            repo.delete_entity(conn, "group", group.id)
        return {}

    def add_user_to_group(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            group = self._group(conn, caller, params["GroupName"])
            user = self._user(conn, caller, params["UserName"])
            if repo.is_member(conn, group.id, user.id):
                return {}
            if len(repo.groups_of(conn, user.id)) >= MAX_GROUPS_PER_USER:
                raise _limit_exceeded(
                    f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}"
                )
            repo.add_member(conn, group.id, user.id, self._now_ms())
        return {}

    def remove_user_from_group(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            group = self._group(conn, caller, params["GroupName"])
            user = self._user(conn, caller, params["UserName"])
            if not repo.is_member(conn, group.id, user.id):
                raise _no_such_entity(f"User {user.name} is not in group {group.name}.")
            repo.remove_member(conn, group.id, user.id)
        return {}

    def list_groups_for_user(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            user = self._user(conn, caller, params["UserName"])
            groups = repo.groups_of(conn, user.id)
        page, extra = _page(
            self._tokens, "ListGroupsForUser", params, groups, lambda g: (g.name_key,)
        )
        return {"Groups": [_group_out(group) for group in page], **extra}

    # Roles ------------------------------------------------------------------------------

    def create_role(self, caller: Caller, params: Params) -> Output:
        name: str = params["RoleName"]
        path: str = params.get("Path") or "/"
        trust_policy: str = params["AssumeRolePolicyDocument"]
        duration = int(params.get("MaxSessionDuration") or DEFAULT_SESSION_DURATION)
        _check_session_duration(duration)
        _parse_trust_policy(trust_policy)
        tags = _check_tag_quota(_tags_in(params.get("Tags")), "Role")
        boundary: str | None = params.get("PermissionsBoundary") or None
        with self._write() as conn:
            if repo.find_role(conn, caller.account_id, name) is not None:
                raise _already_exists(f"Role with name {name} already exists.")
            if boundary is not None:
                self._check_boundary(conn, caller, boundary)
            role = RoleRecord(
                id=new_id("AROA"),
                account_id=caller.account_id,
                name=name,
                name_key=name.lower(),
                path=path,
                arn=entity_arn(caller.account_id, "role", path, name),
                description=params.get("Description"),
                trust_policy=trust_policy,
                max_session_duration=duration,
                permissions_boundary=boundary,
                tags=tags or None,
                created_ms=self._now_ms(),
                last_used_ms=None,
                last_used_region=None,
            )
            with _unique(_already_exists(f"Role with name {name} already exists.")):
                repo.insert_entity(conn, "role", role)
        return {"Role": _role_out(role, full=True)}

    def get_role(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            role = self._role(conn, caller, params["RoleName"])
        return {"Role": _role_out(role, full=True, last_used=True)}

    def list_roles(self, caller: Caller, params: Params) -> Output:
        roles, extra = self._list("role", caller, params)
        return {"Roles": [_role_out(role, full=False) for role in roles], **extra}

    def delete_role(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            role = self._role(conn, caller, params["RoleName"])
            if repo.inline_policies(conn, role.id):
                raise _delete_conflict("Cannot delete entity, must delete policies first.")
            if repo.attached(conn, role.id):
                raise _delete_conflict("Cannot delete entity, must detach all policies first.")
            repo.delete_entity(conn, "role", role.id)
        return {}

    def update_assume_role_policy(self, caller: Caller, params: Params) -> Output:
        document: str = params["PolicyDocument"]
        _parse_trust_policy(document)
        with self._write() as conn:
            role = self._role(conn, caller, params["RoleName"])
            repo.update_entity(conn, "role", role, trust_policy=document)
        return {}

    def update_role(self, caller: Caller, params: Params) -> Output:
        values: dict[str, Any] = {}
        if params.get("Description") is not None:
            values["description"] = params["Description"]
        if params.get("MaxSessionDuration") is not None:
            _check_session_duration(int(params["MaxSessionDuration"]))
            values["max_session_duration"] = int(params["MaxSessionDuration"])
        with self._write() as conn:
            role = self._role(conn, caller, params["RoleName"])
            if values:
                repo.update_entity(conn, "role", role, **values)
        return {}

    def tag_role(self, caller: Caller, params: Params) -> Output:
        return self._tag("role", caller, params)

    def untag_role(self, caller: Caller, params: Params) -> Output:
        return self._untag("role", caller, params)

    def list_role_tags(self, caller: Caller, params: Params) -> Output:
        return self._list_tags("role", caller, params)

    # Inline policies --------------------------------------------------------------------

    def _put_inline(self, kind: Kind, caller: Caller, params: Params) -> Output:
        policy_name: str = params["PolicyName"]
        document: str = params["PolicyDocument"]
        _parse_identity_policy(document)
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            documents = repo.inline_policies(conn, entity.id)
            documents[policy_name] = document
            limit = INLINE_POLICY_SIZE[kind]
            if sum(_policy_size(text) for text in documents.values()) > limit:
                raise _limit_exceeded(
                    f"Maximum policy size of {limit} bytes exceeded for {kind} {entity.name}"
                )
            repo.put_inline(conn, kind, entity.id, policy_name, document)
        return {}

    def _get_inline(self, kind: Kind, caller: Caller, params: Params) -> Output:
        policy_name: str = params["PolicyName"]
        with self._store.read() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            document = repo.inline_policies(conn, entity.id).get(policy_name)
        if document is None:
            raise _no_such_entity(f"The {kind} policy with name {policy_name} cannot be found.")
        return {
            _NAME_MEMBER[kind]: entity.name,
            "PolicyName": policy_name,
            "PolicyDocument": _url_encoded(document),
        }

    def _list_inline(self, kind: Kind, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            names = list(repo.inline_policies(conn, entity.id))
        page, extra = _page(
            self._tokens, f"List{_TITLE[kind]}Policies", params, names, lambda n: (n,)
        )
        return {"PolicyNames": page, **extra}

    def _delete_inline(self, kind: Kind, caller: Caller, params: Params) -> Output:
        policy_name: str = params["PolicyName"]
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            if policy_name not in repo.inline_policies(conn, entity.id):
                raise _no_such_entity(f"The {kind} policy with name {policy_name} cannot be found.")
            repo.delete_inline(conn, entity.id, policy_name)
        return {}

    def put_user_policy(self, caller: Caller, params: Params) -> Output:
        return self._put_inline("user", caller, params)

    def get_user_policy(self, caller: Caller, params: Params) -> Output:
        return self._get_inline("user", caller, params)

    def list_user_policies(self, caller: Caller, params: Params) -> Output:
        return self._list_inline("user", caller, params)

    def delete_user_policy(self, caller: Caller, params: Params) -> Output:
        return self._delete_inline("user", caller, params)

    def put_group_policy(self, caller: Caller, params: Params) -> Output:
        return self._put_inline("group", caller, params)

    def get_group_policy(self, caller: Caller, params: Params) -> Output:
        return self._get_inline("group", caller, params)

    def list_group_policies(self, caller: Caller, params: Params) -> Output:
        return self._list_inline("group", caller, params)

    def delete_group_policy(self, caller: Caller, params: Params) -> Output:
        return self._delete_inline("group", caller, params)

    def put_role_policy(self, caller: Caller, params: Params) -> Output:
        return self._put_inline("role", caller, params)

    def get_role_policy(self, caller: Caller, params: Params) -> Output:
        return self._get_inline("role", caller, params)

    def list_role_policies(self, caller: Caller, params: Params) -> Output:
        return self._list_inline("role", caller, params)

    def delete_role_policy(self, caller: Caller, params: Params) -> Output:
        return self._delete_inline("role", caller, params)

    # Managed policies -------------------------------------------------------------------

    def create_policy(self, caller: Caller, params: Params) -> Output:
        name: str = params["PolicyName"]
        path: str = params.get("Path") or "/"
        document: str = params["PolicyDocument"]
        _parse_identity_policy(document)
        if _policy_size(document) > MANAGED_POLICY_SIZE:
            raise _limit_exceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")
        tags = _check_tag_quota(_tags_in(params.get("Tags")), "Policy")
        with self._write() as conn:
            if repo.find_policy_named(conn, caller.account_id, name) is not None:
                raise _already_exists(
                    f"A policy called {name} already exists. Duplicate names are not allowed."
                )
            now = self._now_ms()
            record = PolicyRecord(
                id=new_id("ANPA"),
                account_id=caller.account_id,
                name=name,
                name_key=name.lower(),
                path=path,
                arn=f"arn:aws:iam::{caller.account_id}:policy{path}{name}",
                description=params.get("Description") or None,
                default_version="v1",
                next_version=2,
                tags=tags or None,
                created_ms=now,
                updated_ms=now,
            )
            with _unique(
                _already_exists(
                    f"A policy called {name} already exists. Duplicate names are not allowed."
                )
            ):
                repo.insert_policy(conn, record)
            repo.insert_version(conn, record.id, VersionRecord("v1", document, now))
        return {"Policy": _Managed.local(record).out(0, 0, full=True)}

    def get_policy(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        with self._store.read() as conn:
            policy = self._require_policy(conn, caller, arn)
            attachments, boundaries = self._counts(conn, caller, [arn])
        return {"Policy": policy.out(attachments[arn], boundaries[arn], full=True)}

    def list_policies(self, caller: Caller, params: Params) -> Output:
        scope: str = params.get("Scope") or "All"
        prefix: str = params.get("PathPrefix") or "/"
        only_attached = bool(params.get("OnlyAttached"))
        usage: str | None = params.get("PolicyUsageFilter")
        with self._store.read() as conn:
            candidates: list[_Managed] = []
            if scope in ("All", "AWS"):
                candidates += [_Managed.of_aws(p) for p in managed_policies.CATALOGUE.values()]
            if scope in ("All", "Local"):
                candidates += [_Managed.local(p) for p in repo.policies(conn, caller.account_id)]
            candidates = [p for p in candidates if p.path.startswith(prefix)]
            attachments, boundaries = self._counts(conn, caller, [p.arn for p in candidates])

        def wanted(policy: _Managed) -> bool:
            if usage == "PermissionsBoundary":
                return boundaries[policy.arn] > 0
            return not only_attached or attachments[policy.arn] > 0

        chosen = sorted((p for p in candidates if wanted(p)), key=lambda p: (p.name.lower(), p.arn))
        page, extra = _page(
            self._tokens, "ListPolicies", params, chosen, lambda p: (p.name.lower(), p.arn)
        )
        return {
            "Policies": [p.out(attachments[p.arn], boundaries[p.arn], full=False) for p in page],
            **extra,
        }

    def delete_policy(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        with self._write() as conn:
            record = self._local_policy(conn, caller, arn, "DeletePolicy")
            attachments, boundaries = self._counts(conn, caller, [arn])
            if attachments[arn] or boundaries[arn]:
                raise _delete_conflict("Cannot delete a policy attached to entities.")
            if len(repo.versions(conn, record.id)) > 1:
                raise _delete_conflict(
                    "This policy has more than one version. Before you delete a policy, you "
                    "must delete the policy's versions. The default version is deleted with "
                    "the policy."
                )
            repo.delete_policy(conn, record.id)
        return {}

    def create_policy_version(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        document: str = params["PolicyDocument"]
        set_as_default = bool(params.get("SetAsDefault"))
        _parse_identity_policy(document)
        if _policy_size(document) > MANAGED_POLICY_SIZE:
            raise _limit_exceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")
        with self._write() as conn:
            record = self._local_policy(conn, caller, arn, "CreatePolicyVersion")
            if len(repo.versions(conn, record.id)) >= MAX_POLICY_VERSIONS:
                raise _limit_exceeded(
                    f"A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before "
                    "you create a new version, you must delete an existing version."
                )
            now = self._now_ms()
            version = VersionRecord(f"v{record.next_version}", document, now)
            repo.insert_version(conn, record.id, version)
            changes: dict[str, Any] = {"next_version": record.next_version + 1, "updated_ms": now}
            if set_as_default:
                changes["default_version"] = version.version_id
            repo.update_policy(conn, record, **changes)
        return {"PolicyVersion": _version_out(version, record.default_version, document=False)}

    def _versions(self, conn: Connection, policy: _Managed) -> list[VersionRecord]:
        if policy.aws is not None:
            aws = policy.aws
            return [VersionRecord(aws.version_id, aws.document, to_ms(aws.updated))]
        assert policy.record is not None
        return repo.versions(conn, policy.record.id)

    def get_policy_version(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        version_id: str = params["VersionId"]
        with self._store.read() as conn:
            policy = self._require_policy(conn, caller, arn)
            found = [v for v in self._versions(conn, policy) if v.version_id == version_id]
        if not found:
            raise _no_such_version(arn, version_id)
        return {"PolicyVersion": _version_out(found[0], policy.default_version, document=True)}

    def list_policy_versions(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        with self._store.read() as conn:
            policy = self._require_policy(conn, caller, arn)
            versions = self._versions(conn, policy)
        page, extra = _page(
            self._tokens,
            "ListPolicyVersions",
            params,
            versions,
            lambda v: (f"{10**9 - int(v.version_id[1:]):010d}",),
        )
        return {
            "Versions": [_version_out(v, policy.default_version, document=False) for v in page],
            **extra,
        }

    def delete_policy_version(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        version_id: str = params["VersionId"]
        with self._write() as conn:
            record = self._local_policy(conn, caller, arn, "DeletePolicyVersion")
            if repo.version(conn, record.id, version_id) is None:
                raise _no_such_version(arn, version_id)
            if version_id == record.default_version:
                raise _delete_conflict("Cannot delete the default version of a policy.")
            repo.delete_version(conn, record.id, version_id)
        return {}

    def set_default_policy_version(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        version_id: str = params["VersionId"]
        with self._write() as conn:
            record = self._local_policy(conn, caller, arn, "SetDefaultPolicyVersion")
            if repo.version(conn, record.id, version_id) is None:
                raise _no_such_version(arn, version_id)
            repo.update_policy(conn, record, default_version=version_id)
        return {}

    # Attachments ------------------------------------------------------------------------

    def _attach(self, kind: Kind, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        _parse_policy_arn(arn)
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            if self._managed(conn, caller, arn) is None:
                raise _not_attachable(arn)
            current = repo.attached(conn, entity.id)
            if arn in current:
                return {}
            if len(current) >= MAX_ATTACHED_POLICIES:
                raise _limit_exceeded(
                    f"Cannot exceed quota for PoliciesPer{_TITLE[kind]}: {MAX_ATTACHED_POLICIES}"
                )
            repo.attach(conn, kind, entity.id, caller.account_id, arn, self._now_ms())
        return {}

    def _detach(self, kind: Kind, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        _parse_policy_arn(arn)
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            if arn not in repo.attached(conn, entity.id):
                raise _policy_not_found(arn)
            repo.detach(conn, entity.id, arn)
        return {}

    def _list_attached(self, kind: Kind, caller: Caller, params: Params) -> Output:
        prefix: str = params.get("PathPrefix") or "/"
        with self._store.read() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            arns = repo.attached(conn, entity.id)
        listed: list[tuple[int, dict[str, str]]] = []
        for index, arn in enumerate(arns):
            _account, path, name = _parse_policy_arn(arn)
            if path.startswith(prefix):
                listed.append((index, {"PolicyName": name, "PolicyArn": arn}))
        scope = f"ListAttached{_TITLE[kind]}Policies"
        page, extra = _page(self._tokens, scope, params, listed, lambda item: _position(item[0]))
        return {"AttachedPolicies": [item for _index, item in page], **extra}

    def attach_user_policy(self, caller: Caller, params: Params) -> Output:
        return self._attach("user", caller, params)

    def detach_user_policy(self, caller: Caller, params: Params) -> Output:
        return self._detach("user", caller, params)

    def list_attached_user_policies(self, caller: Caller, params: Params) -> Output:
        return self._list_attached("user", caller, params)

    def attach_group_policy(self, caller: Caller, params: Params) -> Output:
        return self._attach("group", caller, params)

    def detach_group_policy(self, caller: Caller, params: Params) -> Output:
        return self._detach("group", caller, params)

    def list_attached_group_policies(self, caller: Caller, params: Params) -> Output:
        return self._list_attached("group", caller, params)

    def attach_role_policy(self, caller: Caller, params: Params) -> Output:
        return self._attach("role", caller, params)

    def detach_role_policy(self, caller: Caller, params: Params) -> Output:
        return self._detach("role", caller, params)

    def list_attached_role_policies(self, caller: Caller, params: Params) -> Output:
        return self._list_attached("role", caller, params)

    def list_entities_for_policy(self, caller: Caller, params: Params) -> Output:
        arn: str = params["PolicyArn"]
        entity_filter: str | None = params.get("EntityFilter")
        prefix: str = params.get("PathPrefix") or "/"
        usage: str | None = params.get("PolicyUsageFilter")
        kinds: tuple[Kind, ...] = ("group", "user", "role")
        filters: dict[str | None, Kind] = {"Group": "group", "User": "user", "Role": "role"}
        if entity_filter in filters:
            kinds = (filters[entity_filter],)
        with self._store.read() as conn:
            self._require_policy(conn, caller, arn)
            found: dict[str, tuple[int, Kind, Entity]] = {}
            if usage != "PermissionsBoundary":
                ids: dict[Kind, list[str]] = {"user": [], "group": [], "role": []}
                for kind, principal_id in repo.attached_to(conn, caller.account_id, arn):
                    ids[kind].append(principal_id)
                for order, kind in enumerate(kinds):
                    for entity in repo.by_ids(conn, kind, ids[kind]):
                        found[entity.id] = (order, kind, entity)
            if usage != "PermissionsPolicy":
                for order, kind in enumerate(kinds):
                    if kind != "group":
                        for entity in repo.with_boundary(conn, kind, caller.account_id, arn):
                            found[entity.id] = (order, kind, entity)
        chosen = sorted(
            (item for item in found.values() if item[2].path.startswith(prefix)),
            key=lambda item: (item[0], item[2].name_key),
        )
        page, extra = _page(
            self._tokens,
            "ListEntitiesForPolicy",
            params,
            chosen,
            lambda item: (str(item[0]), item[2].name_key),
        )
        return {
            "PolicyGroups": [
                {"GroupName": e.name, "GroupId": e.id} for _o, k, e in page if k == "group"
            ],
            "PolicyUsers": [
                {"UserName": e.name, "UserId": e.id} for _o, k, e in page if k == "user"
            ],
            "PolicyRoles": [
                {"RoleName": e.name, "RoleId": e.id} for _o, k, e in page if k == "role"
            ],
            **extra,
        }

    # Permissions boundaries -------------------------------------------------------------

    def _put_boundary(self, kind: Kind, caller: Caller, params: Params) -> Output:
        arn: str = params["PermissionsBoundary"]
        _parse_policy_arn(arn)
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            self._check_boundary(conn, caller, arn)
            repo.update_entity(conn, kind, entity, permissions_boundary=arn)
        return {}

    def _delete_boundary(self, kind: Kind, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            entity = self._require(conn, kind, caller.account_id, params[_NAME_MEMBER[kind]])
            repo.update_entity(conn, kind, entity, permissions_boundary=None)
        return {}

    def put_user_permissions_boundary(self, caller: Caller, params: Params) -> Output:
        return self._put_boundary("user", caller, params)

    def delete_user_permissions_boundary(self, caller: Caller, params: Params) -> Output:
        return self._delete_boundary("user", caller, params)

    def put_role_permissions_boundary(self, caller: Caller, params: Params) -> Output:
        return self._put_boundary("role", caller, params)

    def delete_role_permissions_boundary(self, caller: Caller, params: Params) -> Output:
        return self._delete_boundary("role", caller, params)

    # Login profiles ---------------------------------------------------------------------

    @staticmethod
    def _new_password_hash(params: Params) -> str | None:
        password: str | None = params.get("Password")
        if password is None:
            return None
        passwords.check_policy(password)
        return passwords.hash_password(password)

    def create_login_profile(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        if params.get("Password") is None:
            raise _validation_error("Password is required to create a login profile.")
        # Hashing is slow on purpose: do it before the write lock is taken.
        password_hash = self._new_password_hash(params)
        assert password_hash is not None
        reset = bool(params.get("PasswordResetRequired"))
        max_session: int | None = params.get("MaxSigninSessionDuration")
        with self._write() as conn:
            user = self._user(conn, caller, name)
            if repo.login_profile(conn, user.id) is not None:
                raise _already_exists(f"Login Profile for user {user.name} already exists.")
            profile = LoginProfileRecord(user.id, password_hash, reset, max_session, self._now_ms())
            repo.insert_login_profile(conn, profile)
        return {"LoginProfile": _login_profile_out(user, profile)}

    def _profile(
        self, conn: Connection, caller: Caller, name: str
    ) -> tuple[UserRecord, LoginProfileRecord]:
        user = self._user(conn, caller, name)
        profile = repo.login_profile(conn, user.id)
        if profile is None:
            raise _no_such_entity(f"Login Profile for User {user.name} cannot be found.")
        return user, profile

    def get_login_profile(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        with self._store.read() as conn:
            user, profile = self._profile(conn, caller, name)
        return {"LoginProfile": _login_profile_out(user, profile)}

    def update_login_profile(self, caller: Caller, params: Params) -> Output:
        password_hash = self._new_password_hash(params)
        values: dict[str, Any] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if params.get("PasswordResetRequired") is not None:
            values["password_reset_required"] = bool(params["PasswordResetRequired"])
        if params.get("MaxSigninSessionDuration") is not None:
            values["max_signin_session_duration"] = int(params["MaxSigninSessionDuration"])
        if params.get("ResetMaxSigninSessionDuration"):
            values["max_signin_session_duration"] = None
        with self._write() as conn:
            user, _profile = self._profile(conn, caller, params["UserName"])
            if values:
                repo.update_login_profile(conn, user.id, **values)
        return {}

    def delete_login_profile(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        with self._write() as conn:
            user, _profile = self._profile(conn, caller, name)
            repo.delete_login_profile(conn, user.id)
        return {}

    def verify_password(self, account_id: str, user_name: str, password: str) -> bool:
        """Whether ``password`` is the console password of ``user_name``; a user without
        one (or no such user) costs the same time and answers False. A match is recorded
        as the user's PasswordLastUsed."""
        with self._store.read() as conn:
            user = repo.find_user(conn, account_id, user_name)
            profile = repo.login_profile(conn, user.id) if user is not None else None
        if user is None or profile is None:
            passwords.burn_time(password)
            return False
        if not passwords.verify_password(password, profile.password_hash):
            return False
        with self._store.write() as conn:
            repo.update_entity(conn, "user", user, password_last_used_ms=self._now_ms())
        return True

    # What the authorizer and STS read ----------------------------------------------------

    def reads_uncommitted(self) -> bool:
        """Whether IAM reads here may see IAM writes that could still roll back."""
        return any(
            table == EVERYTHING or table.startswith("iam_")
            for table in self._store.uncommitted_writes()
        )

    def generation(self) -> int:
        """A number that changes whenever IAM changes: anything computed from IAM state
        (policies of a principal) stays valid while the generation stays the same."""
        with self._store.read() as conn:
            return cached(conn, _GENERATION, None, lambda: repo.generation(conn))

    def organization_id(self, account_id: str) -> str | None:
        """The organization ``account_id`` belongs to (``aws:PrincipalOrgID``). Joining an
        organization moves IAM's generation (iam/organizations.py), so what is computed from
        it stays valid while the generation stays the same."""
        with self._store.read() as conn:
            return cached(
                conn, _ORGANIZATION, account_id, lambda: repo.organization_id(conn, account_id)
            )

    def principal_policies(self, principal_arn: str) -> PrincipalPolicies | None:
        """The identity-based policies, permissions boundary and tags of a user, a role or
        a role session (``arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION``); None if there
        is no such principal."""
        principal = _principal_name(principal_arn)
        if principal is None:
            return None
        account_id, kind, name = principal
        with self._store.read() as conn:
            entity: UserRecord | RoleRecord | None = repo.find(conn, kind, account_id, name)
            if entity is None:
                return None
            if ":sts::" not in principal_arn and entity.arn != principal_arn:
                return None  # a stale ARN: the entity has been renamed or moved since
            identity: list[tuple[str, str]] = []
            seen: set[str] = set()
            self._gather(conn, kind, entity, identity, seen, None)
            if isinstance(entity, UserRecord):
                for group in repo.groups_of(conn, entity.id):
                    self._gather(conn, "group", group, identity, seen, group.name)
            boundary = None
            if entity.permissions_boundary:
                boundary = self._default_document(conn, account_id, entity.permissions_boundary)
        return PrincipalPolicies(
            identity=identity,
            permissions_boundary=boundary,
            tags=_tag_dict(entity.tags),
            user_id=entity.id,
            user_name=entity.name if isinstance(entity, UserRecord) else None,
        )

    def _gather(
        self,
        conn: Connection,
        kind: Kind,
        entity: Entity,
        identity: list[tuple[str, str]],
        seen: set[str],
        via_group: str | None,
    ) -> None:
        owner = f"{kind} {entity.name}"
        for policy_name, document in repo.inline_policies(conn, entity.id).items():
            identity.append((f"inline policy {policy_name} of {owner}", document))
        for arn in repo.attached(conn, entity.id):
            if arn in seen:
                continue
            managed = self._default_document(conn, entity.account_id, arn)
            if managed is not None:
                seen.add(arn)
                suffix = f" (via group {via_group})" if via_group else ""
                identity.append((f"managed policy {arn}{suffix}", managed))

    @staticmethod
    def _default_document(conn: Connection, account_id: str, arn: str) -> str | None:
        aws = managed_policies.find(arn)
        if aws is not None:
            return aws.document
        record = repo.find_policy(conn, arn)
        if record is None or record.account_id != account_id:
            return None
        version = repo.version(conn, record.id, record.default_version)
        return version.document if version is not None else None

    def managed_policy_document(self, account_id: str, arn: str) -> str | None:
        """The default version's document of managed policy ``arn`` as ``account_id`` sees
        it (an AWS managed policy, or one of the account's own), or None (STS session
        policies given by ARN)."""
        with self._store.read() as conn:
            return self._default_document(conn, account_id, arn)

    def role(self, account_id: str, role_name: str) -> RoleInfo | None:
        """The role STS AssumeRole is asked for, or None."""
        with self._store.read() as conn:
            role = repo.find_role(conn, account_id, role_name)
        if role is None:
            return None
        return RoleInfo(
            arn=role.arn,
            role_id=role.id,
            role_name=role.name,
            path=role.path,
            trust_policy=role.trust_policy,
            max_session_duration=role.max_session_duration,
            permissions_boundary=role.permissions_boundary,
            tags=_tag_dict(role.tags),
        )

    def record_role_use(self, account_id: str, role_name: str, region: str) -> None:
        """Note that the role was assumed now (GetRole's RoleLastUsed)."""
        with self._store.write() as conn:
            role = repo.find_role(conn, account_id, role_name)
            if role is not None:
                repo.update_entity(
                    conn, "role", role, last_used_ms=self._now_ms(), last_used_region=region
                )


def _no_such_version(arn: str, version_id: str) -> ServiceError:
    return _no_such_entity(
        f"Policy {arn} version {version_id} does not exist or is not attachable."
    )


def _login_profile_out(user: UserRecord, profile: LoginProfileRecord) -> Output:
    out: Output = {
        "UserName": user.name,
        "CreateDate": from_ms(profile.created_ms),
        "PasswordResetRequired": profile.password_reset_required,
    }
    if profile.max_signin_session_duration is not None:
        out["MaxSigninSessionDuration"] = profile.max_signin_session_duration
    return out
