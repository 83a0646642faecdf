"""IAM's shared vocabulary: quotas, errors with IAM's codes, policy and ARN checks, tags and
Marker pagination, used by every noun module of the service."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError

from strongroom.iam.repository import Kind, Tags
from strongroom.policy.document import parse_policy
from strongroom.policy.principal_ids import ENTITY_ARN
from strongroom.protocol.errors import ServiceError, validation_error
from strongroom.protocol.pagination import TokenCodec
from strongroom.protocol.query_codec import modeled_error
from strongroom.types import Caller

Params = Mapping[str, Any]
Output = dict[str, Any]
T = TypeVar("T")
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
_ASSUMED_ROLE = re.compile(r"arn:aws:sts::([0-9]{12}):assumed-role/([^/]+)/(.+)")
_WHITESPACE = re.compile(r"\s")


# Errors, with IAM's codes; their status codes come from IAM's model.


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


def _no_such_version(arn: str, version_id: str) -> ServiceError:
    return _no_such_entity(
        f"Policy {arn} version {version_id} does not exist or is not attachable."
    )


@contextmanager
def _unique(error: ServiceError) -> Iterator[None]:
    """Inserting a name a concurrent request has just taken (on a database where writers
    do not queue as they do on SQLite) answers as if the name had been seen taken."""
    try:
        yield
    except IntegrityError:
        raise error from None


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


def _principal_name(arn: str) -> tuple[str, Kind, str] | None:
    """(account id, "user" | "role", name) of a user, role or role-session ARN."""
    match = ENTITY_ARN.fullmatch(arn)
    if match is not None:
        return match.group(1), "user" if match.group(2) == "user" else "role", match.group(4)
    match = _ASSUMED_ROLE.fullmatch(arn)
    if match is not None:
        return match.group(1), "role", match.group(2)
    return None
