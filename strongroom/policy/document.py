"""IAM policy documents: a strict parser into a typed AST. The static analyses Secrets
Manager runs on a secret's resource policy are in :mod:`strongroom.policy.secret_policy`.

The grammar is IAM's ("Grammar of the IAM JSON policy language", IAM User Guide), with
the per-kind rules of the policy notes: identity policies carry no ``Principal`` and use
``Version`` 2012-10-17; resource policies must name a ``Principal`` or ``NotPrincipal``.
Anything the grammar does not allow is rejected with a message that says what and where,
so that a later evaluator can trust every node it is given.

Error messages quote policy text only. A policy is configuration, never secret material.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeGuard, cast, get_args

from strongroom.policy.dates import parse_date
from strongroom.protocol.errors import ServiceError

# "key": a KMS key policy, a resource policy whose Sid may contain spaces (AWS's own
# default key policy has "Enable IAM User Permissions").
PolicyKind = Literal["identity", "resource", "key"]
Effect = Literal["Allow", "Deny"]
PrincipalKind = Literal["AWS", "Service", "Federated", "CanonicalUser"]

MALFORMED_POLICY = "MalformedPolicyDocumentException"
"""Secrets Manager's and KMS's error code; IAM and STS answer ``MalformedPolicyDocument``."""

CURRENT_VERSION = "2012-10-17"
LEGACY_VERSION = "2008-10-17"

ConditionBlock = Mapping[str, Mapping[str, tuple[str, ...]]]
"""Operator (canonical spelling) -> condition key (as written) -> values (as strings)."""

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


def _empty() -> Mapping[Any, Any]:
    return _EMPTY


# --------------------------------------------------------------------------- the AST


@dataclass(frozen=True)
class Principal:
    """Who a resource-policy statement is about.

    ``wildcard`` is the bare ``"*"`` form; otherwise ``entries`` maps each principal
    kind to its values, in document order. ``{"AWS": "*"}`` is kept as written; both
    forms mean everyone, anonymous callers included (see :attr:`is_everyone`).
    """

    wildcard: bool = False
    entries: Mapping[PrincipalKind, tuple[str, ...]] = field(default_factory=_empty, hash=False)

    @property
    def is_everyone(self) -> bool:
        return self.wildcard or "*" in self.entries.get("AWS", ())


@dataclass(frozen=True)
class Statement:
    """One statement. Exactly one of each ``x`` / ``not_x`` pair is set, except that
    identity-policy statements have neither principal field."""

    sid: str | None
    effect: Effect
    principal: Principal | None
    not_principal: Principal | None
    action: tuple[str, ...] | None
    not_action: tuple[str, ...] | None
    resource: tuple[str, ...] | None
    not_resource: tuple[str, ...] | None
    condition: ConditionBlock = field(default_factory=_empty, hash=False)


@dataclass(frozen=True)
class PolicyDocument:
    # None only for a resource policy without ``Version``: IAM then applies the
    # 2008-10-17 language, in which ``${...}`` policy variables are plain text.
    version: str | None
    id: str | None
    statements: tuple[Statement, ...]


# --------------------------------------------------------------------------- parsing


class PolicyError(ValueError):
    """The document breaks the policy grammar."""


class PolicyJsonError(PolicyError):
    """The text is not JSON at all."""


class _Number(str):
    """A JSON number, kept as its source text so ``1.50`` stays ``"1.50"``."""


def _is_text(value: object) -> TypeGuard[str]:
    # Numbers arrive as a str subclass; elements other than condition values need real strings.
    return isinstance(value, str) and not isinstance(value, _Number)


def parse_policy(
    text: str, *, kind: PolicyKind, error_code: str = MALFORMED_POLICY
) -> PolicyDocument:
    """Parse and validate ``text`` as a policy of ``kind``.

    Raises ``ServiceError(error_code, message)`` for anything that is not a valid
    policy; IAM callers pass ``error_code="MalformedPolicyDocument"``.
    """
    try:
        return parse_document(text, kind)
    except PolicyError as exc:
        raise ServiceError(error_code, str(exc)) from None


INVALID_JSON = "This policy contains invalid Json"


def parse_document(text: str, kind: PolicyKind) -> PolicyDocument:
    """Like :func:`parse_policy`, raising :class:`PolicyError` (:class:`PolicyJsonError`
    for text that is not JSON) for the analyses that report rather than refuse."""
    return _document(_load_json(text), kind)


def _load_json(text: str) -> object:
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_int=_Number,
            parse_float=_Number,
            parse_constant=_reject_constant,
        )
    except (json.JSONDecodeError, RecursionError):
        # AWS's own text; Python's parser message would describe our parser, not the policy.
        raise PolicyJsonError(INVALID_JSON) from None


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # The grammar forbids repeating a key; json.loads would silently keep the last one,
    # so a reviewer and the evaluator could read different policies from the same text.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise PolicyError(f'Syntax errors in policy. Duplicate element "{key}".')
        result[key] = value
    return result


def _reject_constant(name: str) -> object:
    raise PolicyJsonError(INVALID_JSON)  # NaN, Infinity: not JSON, though Python reads them


_TOP_LEVEL_ELEMENTS = ("Version", "Id", "Statement")
_STATEMENT_ELEMENTS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)


def _document(obj: object, kind: PolicyKind) -> PolicyDocument:
    if not isinstance(obj, dict):
        raise PolicyError("Syntax errors in policy. The policy must be a JSON object.")
    _reject_unknown_elements(obj, _TOP_LEVEL_ELEMENTS, "the policy")
    version = _version(obj, kind)
    policy_id = _optional_text(obj, "Id", "Syntax errors in policy. Id must be a string.")

    if "Statement" not in obj:
        raise PolicyError("Syntax errors in policy. Missing required element Statement.")
    raw = obj["Statement"]
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise PolicyError(
            "Syntax errors in policy. Statement must be an object or a list of objects."
        )
    if not items:
        raise PolicyError("Syntax errors in policy. Statement must not be empty.")
    statements = tuple(_statement(item, index, kind) for index, item in enumerate(items))

    seen: set[str] = set()
    for statement in statements:
        # IAM insists on unique Sids; KMS does not (its own aws/secretsmanager policy
        # repeats one).
        if statement.sid is not None and kind != "key":
            if statement.sid in seen:
                raise PolicyError(
                    "Statement IDs (SID) in a single policy must be unique. "
                    f'Sid "{statement.sid}" is used more than once.'
                )
            seen.add(statement.sid)
    return PolicyDocument(version=version, id=policy_id, statements=statements)


def _optional_text(obj: dict[str, object], name: str, message: str) -> str | None:
    if name not in obj:
        return None
    value = obj[name]
    if not _is_text(value):
        raise PolicyError(message)
    return value


def _reject_unknown_elements(obj: dict[str, object], allowed: Iterable[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise PolicyError(f'Syntax errors in policy. Unknown element "{key}" in {where}.')


def _version(obj: dict[str, object], kind: PolicyKind) -> str | None:
    version = obj.get("Version")
    if kind == "identity":
        # IAM's own answer for a missing or 2008-10-17 version on identity policies.
        if version is None or version == LEGACY_VERSION:
            raise PolicyError("Policy document must be version 2012-10-17 or greater.")
        allowed: tuple[str, ...] = (CURRENT_VERSION,)
    else:
        if "Version" not in obj:
            return None
        allowed = (CURRENT_VERSION, LEGACY_VERSION)
    if not _is_text(version) or version not in allowed:
        raise PolicyError(
            f"Syntax errors in policy. Unsupported Version {json.dumps(version)}: "
            f'use "{CURRENT_VERSION}".'
        )
    return version


_IAM_SID = re.compile(r"[A-Za-z0-9]*")
_NO_SPACES = re.compile(r"\S*")


def _statement(item: object, index: int, kind: PolicyKind) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(item, dict):
        raise PolicyError(f"Syntax errors in policy. {where} must be a JSON object.")
    _reject_unknown_elements(item, _STATEMENT_ELEMENTS, where)

    sid = _optional_text(item, "Sid", f"Syntax errors in policy. {where}: Sid must be a string.")
    if sid is not None:
        # IAM allows only letters and digits; Secrets Manager only forbids spaces.
        if kind == "identity" and not _IAM_SID.fullmatch(sid):
            raise PolicyError(
                f'{where}: Sid "{sid}" is not valid: use only letters and digits (A-Z, a-z, 0-9).'
            )
        if kind == "resource" and not _NO_SPACES.fullmatch(sid):
            raise PolicyError(f'{where}: Sid "{sid}" is not valid: it must not contain spaces.')
        where = f'{where} (Sid "{sid}")'

    if "Effect" not in item:
        raise PolicyError(f"{where}: Missing required field Effect.")
    effect = item["Effect"]
    if effect not in ("Allow", "Deny") or not _is_text(effect):
        raise PolicyError(f'{where}: Effect must be "Allow" or "Deny", not {json.dumps(effect)}.')

    principal = not_principal = None
    if kind == "identity":
        if "Principal" in item or "NotPrincipal" in item:
            raise PolicyError(f"{where}: Policy document should not specify a principal.")
    else:
        if _exactly_one(item, "Principal", "NotPrincipal", where) == "Principal":
            principal = _principal(item["Principal"], "Principal", where)
        else:
            not_principal = _principal(item["NotPrincipal"], "NotPrincipal", where)

    if not (item.get("Action") or item.get("NotAction")):
        raise PolicyError(f"{where}: Policy statement must contain actions.")
    action = not_action = None
    if _exactly_one(item, "Action", "NotAction", where) == "Action":
        action = _actions(item["Action"], "Action", where)
    else:
        not_action = _actions(item["NotAction"], "NotAction", where)

    if not (item.get("Resource") or item.get("NotResource")):
        raise PolicyError(f"{where}: Policy statement must contain resources.")
    resource = not_resource = None
    if _exactly_one(item, "Resource", "NotResource", where) == "Resource":
        resource = _resources(item["Resource"], "Resource", where)
    else:
        not_resource = _resources(item["NotResource"], "NotResource", where)

    condition = _condition(item["Condition"], where) if "Condition" in item else _EMPTY
    return Statement(
        sid=sid,
        effect="Allow" if effect == "Allow" else "Deny",
        principal=principal,
        not_principal=not_principal,
        action=action,
        not_action=not_action,
        resource=resource,
        not_resource=not_resource,
        condition=condition,
    )


def _exactly_one(item: dict[str, object], name: str, negated: str, where: str) -> str:
    if name in item and negated in item:
        raise PolicyError(
            f"Syntax errors in policy. {where} must not contain both {name} and {negated}."
        )
    if name in item:
        return name
    if negated in item:
        return negated
    raise PolicyError(f"{where}: Missing required field {name}.")


def _strings(value: object, element: str, where: str) -> tuple[str, ...]:
    """A string or a non-empty list of strings (the grammar's single-value shorthand)."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(_is_text(v) for v in values):
        raise PolicyError(
            f"Syntax errors in policy. {where}: {element} must be a string or a list of strings."
        )
    return tuple(str(v) for v in values)


_VENDOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")
_ACTION_NAME = re.compile(r"[A-Za-z0-9_*?-]+")


def _actions(value: object, element: str, where: str) -> tuple[str, ...]:
    actions = _strings(value, element, where)
    for action in actions:
        if action == "*":
            continue
        # The first three messages are IAM's own wording for these mistakes.
        if ":" not in action:
            raise PolicyError(
                f"{where}: Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, "
                f'ec2, etc. Got "{action}".'
            )
        if action.count(":") > 1:
            raise PolicyError(
                f'{where}: Actions/Condition can contain only one colon. Got "{action}".'
            )
        vendor, name = action.split(":")
        if not _VENDOR.fullmatch(vendor):
            raise PolicyError(f"{where}: Vendor {vendor} is not valid.")
        if not _ACTION_NAME.fullmatch(name):
            raise PolicyError(
                f'{where}: Action "{action}" is not valid: after the colon use an action '
                "name made of letters, digits and the wildcards * and ?."
            )
    return actions


def _resources(value: object, element: str, where: str) -> tuple[str, ...]:
    resources = _strings(value, element, where)
    for resource in resources:
        parts = resource.split(":", 5)
        if resource != "*" and (len(parts) < 6 or parts[0] != "arn" or not all(parts[1:3])):
            raise PolicyError(f'{where}: Resource {resource} must be in ARN format or "*".')
    return resources


_PRINCIPAL_KINDS: tuple[PrincipalKind, ...] = get_args(PrincipalKind)
# ASCII classes throughout: \d would also accept other scripts' digits.
ACCOUNT_ID = re.compile(r"[0-9]{12}")
_PRINCIPAL_FORMATS: Mapping[PrincipalKind, re.Pattern[str]] = {
    # An account id, an IAM or STS principal ARN, or the unique id (AIDA..., AROA...)
    # AWS shows in place of an ARN whose principal has been deleted.
    "AWS": re.compile(
        r"[0-9]{12}"
        r"|arn:aws[a-z-]*:iam::[0-9]{12}:(root|user/\S+|role/\S+)"
        r"|arn:aws[a-z-]*:sts::[0-9]{12}:(assumed-role/\S+/\S+|federated-user/\S+)"
        r"|A[A-Z0-9]{15,127}"
    ),
    "Service": re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"),
    "Federated": re.compile(r"\S+"),
    "CanonicalUser": re.compile(r"[0-9a-fA-F]{64}"),
}


def _principal(value: object, element: str, where: str) -> Principal:
    if value == "*" and _is_text(value):
        return Principal(wildcard=True)
    if not isinstance(value, dict) or not value:
        raise PolicyError(
            f'Syntax errors in policy. {where}: {element} must be "*" or an object such as '
            '{"AWS": "arn:aws:iam::111122223333:root"}.'
        )
    entries: dict[PrincipalKind, tuple[str, ...]] = {}
    for kind_name, raw in value.items():
        if kind_name not in _PRINCIPAL_KINDS:
            raise PolicyError(
                f'{where}: Invalid principal in policy: unknown principal type "{kind_name}" '
                "(use AWS, Service, Federated or CanonicalUser)."
            )
        kind = cast(PrincipalKind, kind_name)
        values = _strings(raw, f"{element}.{kind}", where)
        for principal in values:
            # "*" may stand for everyone, never for part of a name (IAM grammar notes).
            everyone = kind == "AWS" and principal == "*"
            if not everyone and (
                "*" in principal or not _PRINCIPAL_FORMATS[kind].fullmatch(principal)
            ):
                raise PolicyError(f'{where}: Invalid principal in policy: "{kind}":"{principal}".')
        entries[kind] = values
    return Principal(entries=MappingProxyType(entries))


# Condition operators ("IAM JSON policy elements: Condition operators").
_STRING_OPERATORS = (
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
)
_COMPARISONS = (
    "Equals",
    "NotEquals",
    "LessThan",
    "LessThanEquals",
    "GreaterThan",
    "GreaterThanEquals",
)
_NUMERIC_OPERATORS = tuple(f"Numeric{comparison}" for comparison in _COMPARISONS)
_DATE_OPERATORS = tuple(f"Date{comparison}" for comparison in _COMPARISONS)
_IP_OPERATORS = ("IpAddress", "NotIpAddress")
_ARN_OPERATORS = ("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike")
BASE_OPERATORS = (
    *_STRING_OPERATORS,
    *_NUMERIC_OPERATORS,
    *_DATE_OPERATORS,
    "Bool",
    "BinaryEquals",
    *_IP_OPERATORS,
    *_ARN_OPERATORS,
    "Null",
)
_SET_PREFIXES = ("ForAnyValue", "ForAllValues")


def _all_operators() -> dict[str, str]:
    """Lower-cased spelling -> canonical spelling of every valid operator.

    Every base operator takes ``...IfExists`` and a ``ForAnyValue:``/``ForAllValues:``
    prefix, except ``Null``, which tests existence itself and takes neither.
    """
    names = ["Null"]
    for base in BASE_OPERATORS[:-1]:
        for name in (base, f"{base}IfExists"):
            names += [name, *(f"{prefix}:{name}" for prefix in _SET_PREFIXES)]
    return {name.lower(): name for name in names}


_OPERATORS = _all_operators()


def split_operator(operator: str) -> tuple[str | None, str, bool]:
    """``"ForAnyValue:StringLikeIfExists"`` -> ``("ForAnyValue", "StringLike", True)``."""
    prefix, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    return (prefix or None, name.removesuffix("IfExists") if if_exists else name, if_exists)


def _condition(raw: object, where: str) -> ConditionBlock:
    if not isinstance(raw, dict):
        raise PolicyError(
            f"Syntax errors in policy. {where}: Condition must be an object mapping "
            "condition operators to {key: value} blocks."
        )
    result: dict[str, Mapping[str, tuple[str, ...]]] = {}
    for written, block in raw.items():
        # Operator names are matched without regard to case, like condition keys.
        operator = _OPERATORS.get(written.lower())
        if operator is None:
            raise PolicyError(f'{where}: Unknown condition operator "{written}".')
        if operator in result:
            raise PolicyError(f'{where}: Condition operator "{operator}" appears more than once.')
        if not isinstance(block, dict):
            raise PolicyError(
                f"Syntax errors in policy. {where}: Condition operator {written} must map "
                "to an object of condition keys."
            )
        keys: dict[str, tuple[str, ...]] = {}
        for key, value in block.items():
            if not key:
                raise PolicyError(f"{where}: Condition operator {written} has an empty key.")
            if any(key.lower() == seen.lower() for seen in keys):
                raise PolicyError(
                    f'{where}: Condition key "{key}" appears more than once under {operator} '
                    "(condition keys are case-insensitive)."
                )
            values = _condition_values(value, operator, key, where)
            _check_value_types(operator, key, values, where)
            keys[key] = values
        result[operator] = MappingProxyType(keys)
    return MappingProxyType(result)


def _condition_values(value: object, operator: str, key: str, where: str) -> tuple[str, ...]:
    # An empty list is accepted (IAM does): it is a condition no request can satisfy.
    values = value if isinstance(value, list) else [value]
    result = []
    for item in values:
        if isinstance(item, bool):
            result.append("true" if item else "false")
        elif isinstance(item, str):
            result.append(str(item))
        else:
            raise PolicyError(
                f"Syntax errors in policy. {where}: the value of {key} under {operator} must "
                "be a string, number or Boolean, or a list of them."
            )
    return tuple(result)


def _check_value_types(operator: str, key: str, values: tuple[str, ...], where: str) -> None:
    _, base, _ = split_operator(operator)
    check = _VALUE_CHECKS.get(base)
    if check is None:
        return
    kind, valid = check
    for value in values:
        # A policy variable is substituted at evaluation time; its type is checked then.
        if "${" not in value and not valid(value):
            raise PolicyError(
                f'{where}: "{value}" is not a valid {kind} for {key} under {operator}.'
            )


def _is_number(value: str) -> bool:
    return re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", value) is not None


def _is_date(value: str) -> bool:
    return parse_date(value) is not None


def _is_boolean(value: str) -> bool:
    return value.lower() in ("true", "false")


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


_VALUE_CHECKS: Mapping[str, tuple[str, Callable[[str], bool]]] = {
    **{op: ("number", _is_number) for op in _NUMERIC_OPERATORS},
    **{op: ("date (ISO 8601 or epoch seconds)", _is_date) for op in _DATE_OPERATORS},
    **{op: ("IP address or CIDR block", _is_cidr) for op in _IP_OPERATORS},
    "Bool": ("Boolean (true or false)", _is_boolean),
    "Null": ("Boolean (true or false)", _is_boolean),
    "BinaryEquals": ("base64 value", _is_base64),
}
