# long module: IAM's policy simulator: two operations over one input model (policies, context
# entries, resource owners) and one result shape.
"""IAM's policy simulator: SimulatePrincipalPolicy and SimulateCustomPolicy.

Each action of ``ActionNames`` is evaluated on each resource of ``ResourceArns`` (``*``
when none is given) by the same engine that authorizes real requests
(:func:`strongroom.policy.evaluate.evaluate`), with:

- the identity policies of ``PolicySourceArn`` (a user, with its groups' policies; a
  group; a role), or only ``PolicyInputList`` for SimulateCustomPolicy, plus
  ``PolicyInputList``, less what ``PolicyExclusionList`` names;
- the permissions boundary given in ``PermissionsBoundaryPolicyInputList``, else the
  entity's own;
- ``ResourcePolicy`` as every resource's policy (a KMS key policy for ``kms:`` actions),
  the resource's account being ``ResourceOwner``, else the account in the resource's ARN,
  else the caller's;
- the caller ``CallerArn``, else ``PolicySourceArn`` (else, for SimulateCustomPolicy,
  whoever calls the simulator), and exactly the condition keys of ``ContextEntries``
  besides ``aws:PrincipalArn`` and ``aws:PrincipalAccount``, which the caller gives;
- for SimulateCustomPolicy, the SCPs of ``OrderedOrganizationPolicyInputList``: at every
  level one must allow and none deny.

The output follows the botocore ``iam`` model: one EvaluationResult per action carrying
the most restrictive decision over the resources (explicitDeny, then implicitDeny,
then allowed), with the decision on each resource in ``ResourceSpecificResults`` when
resources were named. ``EvalResourceName`` is the ARN format of the resources' type
(``arn:${Partition}:secretsmanager:${Region}:${Account}:secret:${SecretId}``), or ``*``.
A matched statement is named by ``SourcePolicyId`` (an inline policy's name, a managed
policy's name, ``PolicyInputList.N``, ``ResourcePolicy``) and ``SourcePolicyType``
(``user``/``group``/``role`` for inline policies, ``aws-managed``, ``user-managed``,
``resource``; ``IAM Policy`` for ``PolicyInputList`` entries, as AWS answers), with the
1-based line and column where the statement starts and just past its end.
``ResourceHandlingOption`` is accepted and ignored (it only concerns EC2 scenarios).

Decision: ``EvalDecisionDetails`` of a cross-account simulation maps ``IAM Policy``,
``Resource Policy`` and (with a boundary) ``Permissions Boundary Policy`` to the decision
of each side alone; AWS does not document its keys. For a same-account simulation with
resources named it is present and empty, as AWS documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection

from strongroom.iam import managed_policies, policy_rows
from strongroom.iam import repository as repo
from strongroom.iam.repository import Kind
from strongroom.policy.conditions import parse_address, parse_binary, parse_number
from strongroom.policy.dates import parse_date
from strongroom.policy.document import CURRENT_VERSION, PolicyDocument, PolicyKind, Statement
from strongroom.policy.evaluate import (
    Decision,
    PolicySet,
    RequestContext,
    evaluate,
    load_policy,
)
from strongroom.policy.matching import action_matches, arn_matches
from strongroom.policy.variables import Variable, tokenize
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec
from strongroom.protocol.query_codec import modeled_error
from strongroom.store.engine import Store

Params = Mapping[str, Any]
Output = dict[str, Any]
EvalDecision = Literal["allowed", "explicitDeny", "implicitDeny"]

DEFAULT_MAX_ITEMS = 100
MAX_MAX_ITEMS = 1000
_MARKER_SCOPE = "Simulate"

_ENTITY_ARN = re.compile(r"arn:aws:iam::([0-9]{12}):(user|group|role)(/(?:[^/]+/)*)([^/]+)")
_ACCOUNT = re.compile(r"[0-9]{12}")
_ROOT_ARN = re.compile(r"arn:aws:iam::([0-9]{12}):root")
_ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
_RANK: Mapping[EvalDecision, int] = {"allowed": 0, "implicitDeny": 1, "explicitDeny": 2}
_AUTOMATIC_KEYS = frozenset({"aws:principalarn", "aws:principalaccount"})

# The ARN formats of the resource types of the services Strongroom serves ("Actions,
# resources, and condition keys", Service Authorization Reference), by (service, type).
_ARN_FORMATS: Mapping[str, str] = {
    "secretsmanager:secret": (
        "arn:${Partition}:secretsmanager:${Region}:${Account}:secret:${SecretId}"
    ),
    "kms:key": "arn:${Partition}:kms:${Region}:${Account}:key/${KeyId}",
    "kms:alias": "arn:${Partition}:kms:${Region}:${Account}:alias/${Alias}",
    "iam:user": "arn:${Partition}:iam::${Account}:user/${UserNameWithPath}",
    "iam:group": "arn:${Partition}:iam::${Account}:group/${GroupNameWithPath}",
    "iam:role": "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}",
    "iam:policy": "arn:${Partition}:iam::${Account}:policy/${PolicyNameWithPath}",
    "lambda:function": "arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}",
}

# Condition-key types of ContextEntries and how a value of each is read.
_VALUE_READERS: Mapping[str, Callable[[str], bool]] = {
    "string": lambda _value: True,
    "numeric": lambda value: parse_number(value) is not None,
    "boolean": lambda value: value.lower() in ("true", "false"),
    "ip": lambda value: parse_address(value) is not None,
    "binary": lambda value: parse_binary(value) is not None,
    "date": lambda value: parse_date(value) is not None,
}


def _invalid_input(message: str) -> ServiceError:
    return modeled_error("iam", "InvalidInput", message)


def _no_such_entity(message: str) -> ServiceError:
    return modeled_error("iam", "NoSuchEntity", message)


# --------------------------------------------------------------------------- policy sources


@dataclass
class PolicySource:
    """One policy the simulation weighs, and how the output names it."""

    policy_id: str  # SourcePolicyId
    policy_type: str  # SourcePolicyType
    text: str
    arn: str | None = None  # a managed policy's ARN (for PolicyExclusionList)
    attachment: tuple[str, str] | None = None  # an inline policy's (entity type, entity name)
    # The resource policy is read as a KMS key policy would be (a Sid may have spaces).
    kind: PolicyKind = "identity"
    _document: PolicyDocument | None = field(default=None, repr=False)
    _spans: list[tuple[Output, Output]] | None = field(default=None, repr=False)

    @property
    def document(self) -> PolicyDocument:
        if self._document is None:
            self._document = _parse(self.text, self.kind, self.policy_id)
        return self._document

    def statement(self, index: int) -> Output:
        """A MatchedStatements entry for the statement at ``index``."""
        out: Output = {"SourcePolicyId": self.policy_id, "SourcePolicyType": self.policy_type}
        if self._spans is None:
            self._spans = statement_positions(self.text)
        if index < len(self._spans):
            out["StartPosition"], out["EndPosition"] = self._spans[index]
        return out


def _parse(text: str, kind: PolicyKind, source: str) -> PolicyDocument:
    """The simulator answers InvalidInput for a policy that does not parse."""
    try:
        return load_policy(text, kind, "InvalidInput")
    except ServiceError as error:
        raise _invalid_input(f"{source}: {error.message}") from None


def _managed_source(conn: Connection, account_id: str, arn: str) -> PolicySource | None:
    aws = managed_policies.find(arn)
    if aws is not None:
        return PolicySource(aws.name, "aws-managed", aws.document, arn=arn)
    record = policy_rows.find_policy(conn, arn)
    if record is None or record.account_id != account_id:
        return None
    version = policy_rows.version(conn, record.id, record.default_version)
    if version is None:
        return None
    return PolicySource(record.name, "user-managed", version.document, arn=arn)


def _gather(
    conn: Connection, kind: Kind, entity: Any, sources: list[PolicySource], seen: set[str]
) -> None:
    for name, text in policy_rows.inline_policies(conn, entity.id).items():
        sources.append(PolicySource(name, kind, text, attachment=(kind, entity.name)))
    for arn in policy_rows.attached(conn, entity.id):
        if arn in seen:
            continue
        source = _managed_source(conn, entity.account_id, arn)
        if source is not None:
            seen.add(arn)
            sources.append(source)


@dataclass
class _EntityPolicies:
    kind: Kind
    identity: list[PolicySource]
    boundary: PolicySource | None


def _entity_policies(store: Store, account_id: str, arn: str) -> _EntityPolicies:
    match = _ENTITY_ARN.fullmatch(arn)
    if match is None:
        raise _invalid_input(f"Invalid ARN: {arn}")
    kind: Kind = match.group(2)  # type: ignore[assignment]
    name = match.group(4)
    with store.read() as conn:
        entity = repo.find(conn, kind, account_id, name) if match.group(1) == account_id else None
        if entity is None or entity.arn != arn:
            raise _no_such_entity(f"The {kind} with name {name} cannot be found.")
        sources: list[PolicySource] = []
        seen: set[str] = set()
        _gather(conn, kind, entity, sources, seen)
        if kind == "user":
            for group in repo.groups_of(conn, entity.id):
                _gather(conn, "group", group, sources, seen)
        boundary = None
        boundary_arn = getattr(entity, "permissions_boundary", None)
        if boundary_arn:
            boundary = _managed_source(conn, account_id, boundary_arn)
    return _EntityPolicies(kind, sources, boundary)


# --------------------------------------------------------------------------- exclusions


def _wildcard(pattern: str, what: str) -> re.Pattern[str]:
    if pattern.count("*") > 1:
        raise _invalid_input(f"{what} {pattern} may contain at most one '*'.")
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(regex)


@dataclass
class _Exclusions:
    types: set[str] = field(default_factory=set)
    arns: list[re.Pattern[str]] = field(default_factory=list)
    inline: list[tuple[str, str, re.Pattern[str]]] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: Sequence[Mapping[str, Any]] | None) -> _Exclusions:
        found = cls()
        for item in raw or ():
            given = [member for member in item if item.get(member) is not None]
            if len(given) != 1:
                raise _invalid_input(
                    "Each PolicyExclusionList entry must specify exactly one of PolicyType, "
                    "PolicyArn or InlinePolicyIdentifier."
                )
            if item.get("PolicyType"):
                found.types.add(str(item["PolicyType"]))
            elif item.get("PolicyArn"):
                arn = str(item["PolicyArn"])
                prefix, _, _name = arn.partition(":policy/")
                if not _ or "*" in prefix or "?" in prefix:
                    raise _invalid_input(f"PolicyArn {arn} is not a valid policy ARN pattern.")
                found.arns.append(_wildcard(arn, "PolicyArn"))
            else:
                inline = item["InlinePolicyIdentifier"]
                found.inline.append(
                    (
                        str(inline["PolicyName"]),
                        str(inline["AttachmentType"]),
                        _wildcard(str(inline["AttachmentName"]), "AttachmentName"),
                    )
                )
        return found

    def excludes(self, source: PolicySource) -> bool:
        if source.attachment is not None:
            kind, name = source.attachment
            return "inline" in self.types or any(
                policy == source.policy_id and attachment == kind and entity.fullmatch(name)
                for policy, attachment, entity in self.inline
            )
        if source.policy_type in self.types:
            return True
        return self._names(source)

    def excludes_boundary(self, source: PolicySource | None) -> bool:
        return source is None or "permission-boundary" in self.types or self._names(source)

    def _names(self, source: PolicySource) -> bool:
        return source.arn is not None and any(p.fullmatch(source.arn) for p in self.arns)


# --------------------------------------------------------------------------- statement positions


def statement_positions(text: str) -> list[tuple[Output, Output]]:
    """For each statement of the policy ``text``, in order: where it starts (its ``{``)
    and where it ends (just past its ``}``), as 1-based ``{"Line", "Column"}``. Empty if
    the text is not the JSON object a parsed policy comes from."""
    try:
        offsets = _statement_offsets(text)
    except (ValueError, IndexError):
        return []
    return [(_position(text, start), _position(text, end)) for start, end in offsets]


def _position(text: str, offset: int) -> Output:
    line_start = text.rfind("\n", 0, offset) + 1
    return {"Line": text.count("\n", 0, offset) + 1, "Column": offset - line_start + 1}


_WS = " \t\n\r"


def _skip(text: str, at: int) -> int:
    while text[at] in _WS:
        at += 1
    return at


def _string_end(text: str, at: int) -> int:
    """Just past the JSON string whose opening quote is at ``at``."""
    at += 1
    while text[at] != '"':
        at += 2 if text[at] == "\\" else 1
    return at + 1


def _value_end(text: str, at: int) -> int:
    """Just past the JSON value that starts at ``at``."""
    char = text[at]
    if char == '"':
        return _string_end(text, at)
    if char not in "{[":
        end = at
        while end < len(text) and text[end] not in _WS + ",]}":
            end += 1
        return end
    depth = 0
    while True:
        char = text[at]
        if char == '"':
            at = _string_end(text, at)
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return at + 1
        at += 1


def _statement_offsets(text: str) -> list[tuple[int, int]]:
    at = _skip(text, 0)
    if text[at] != "{":
        raise ValueError("not an object")
    at = _skip(text, at + 1)
    while text[at] != "}":
        end = _string_end(text, at)
        key, at = json.loads(text[at:end]), end
        at = _skip(text, at)
        if text[at] != ":":
            raise ValueError("no colon")
        at = _skip(text, at + 1)
        end = _value_end(text, at)
        if key == "Statement":
            if text[at] == "{":
                return [(at, end)]
            spans: list[tuple[int, int]] = []
            item = _skip(text, at + 1)
            while text[item] != "]":
                item_end = _value_end(text, item)
                spans.append((item, item_end))
                item = _skip(text, item_end)
                if text[item] == ",":
                    item = _skip(text, item + 1)
            return spans
        at = _skip(text, end)
        if text[at] == ",":
            at = _skip(text, at + 1)
    return []


# --------------------------------------------------------------------------- context keys


def _context(entries: Sequence[Mapping[str, Any]] | None) -> dict[str, tuple[str, ...]]:
    context: dict[str, tuple[str, ...]] = {}
    for entry in entries or ():
        name = entry.get("ContextKeyName")
        if not name:
            raise _invalid_input("Each ContextEntries entry must have a ContextKeyName.")
        values = tuple(str(v) for v in entry.get("ContextKeyValues") or ())
        kind = str(entry.get("ContextKeyType") or "string")
        base = kind.removesuffix("List")
        reader = _VALUE_READERS.get(base, _VALUE_READERS["string"])
        for value in values:
            if not reader(value):
                raise _invalid_input(f"Value {value} of context key {name} is not a {base}.")
        context[str(name)] = values
    return context


def _required_keys(statement: Statement, variables: bool) -> list[str]:
    """The condition keys a statement reads: its Condition's and its policy variables'."""
    keys: list[str] = []
    texts: list[str] = list(statement.resource or statement.not_resource or ())
    for by_key in statement.condition.values():
        for key, values in by_key.items():
            keys.append(key)
            texts.extend(values)
    if variables:
        for text in texts:
            for token in tokenize(text, variables=True):
                if isinstance(token, Variable):
                    keys.append(token.key)
    return keys


def _covers(statement: Statement, action: str, resource: str) -> bool:
    if statement.action is not None:
        acts = any(action_matches(p, action) for p in statement.action)
    else:
        acts = not any(action_matches(p, action) for p in statement.not_action or ())
    if not acts:
        return False
    patterns = statement.resource or statement.not_resource or ("*",)
    hit = any("${" in p or arn_matches(p, resource) for p in patterns)
    return hit if statement.resource is not None or statement.not_resource is None else not hit


def _missing(
    sources: Iterable[PolicySource], request: RequestContext, keys: Mapping[str, Any]
) -> list[str]:
    missing: dict[str, str] = {}
    for source in sources:
        document = source.document
        variables = document.version == CURRENT_VERSION
        for statement in document.statements:
            if not _covers(statement, request.action, request.resource):
                continue
            for key in _required_keys(statement, variables):
                folded = key.lower()
                if folded not in keys and folded not in _AUTOMATIC_KEYS:
                    missing.setdefault(folded, key)
    return list(missing.values())


# --------------------------------------------------------------------------- the simulation


@dataclass
class Simulation:
    """Everything one SimulatePrincipalPolicy or SimulateCustomPolicy call weighs."""

    identity: list[PolicySource]
    boundary: PolicySource | None
    resource_policy: PolicySource | None
    organizations: list[list[PolicySource]] | None
    caller_arn: str
    caller_account: str
    resource_owner: str | None
    context: dict[str, tuple[str, ...]]

    def run(self, actions: Sequence[str], resources: Sequence[str] | None) -> list[Output]:
        named = bool(resources) and list(resources or ()) != ["*"]
        targets = list(resources) if resources else ["*"]
        return [self._action(action, targets, named) for action in actions]

    def _labels(self) -> dict[str, PolicySource]:
        labels = {f"identity[{n}]": source for n, source in enumerate(self.identity)}
        if self.boundary is not None:
            labels["permissions_boundary"] = self.boundary
        if self.resource_policy is not None:
            labels["resource"] = self.resource_policy
        return labels

    def _action(self, action: str, resources: list[str], named: bool) -> Output:
        if ":" not in action:
            raise _invalid_input(f"Action {action} must be given as service:action.")
        per_resource = [self._resource(action, resource, named) for resource in resources]
        decision = max((r["EvalResourceDecision"] for r in per_resource), key=_RANK.__getitem__)
        out: Output = {
            "EvalActionName": action,
            "EvalResourceName": _arn_format(action, resources),
            "EvalDecision": decision,
            "MatchedStatements": _union(
                r["MatchedStatements"]
                for r in per_resource
                if r["EvalResourceDecision"] == decision
            ),
            "MissingContextValues": list(
                dict.fromkeys(k for r in per_resource for k in r["MissingContextValues"])
            ),
        }
        if self.organizations is not None:
            out["OrganizationsDecisionDetail"] = {
                "AllowedByOrganizations": all(r.pop("_orgs") for r in per_resource)
            }
        if self.boundary is not None:
            out["PermissionsBoundaryDecisionDetail"] = {
                "AllowedByPermissionsBoundary": all(
                    r["PermissionsBoundaryDecisionDetail"]["AllowedByPermissionsBoundary"]
                    for r in per_resource
                )
            }
        if named:
            details: dict[str, EvalDecision] = {}
            for result in per_resource:
                for side, value in result.get("EvalDecisionDetails", {}).items():
                    if side not in details or _RANK[value] > _RANK[details[side]]:
                        details[side] = value
            out["EvalDecisionDetails"] = details
            for result in per_resource:
                result.pop("_orgs", None)
            out["ResourceSpecificResults"] = per_resource
        return out

    def _resource(self, action: str, resource: str, named: bool) -> Output:
        request = RequestContext(
            principal_arn=self.caller_arn,
            principal_account=self.caller_account,
            action=action,
            resource=resource,
            resource_account=self._owner(resource),
            context=self.context,
        )
        key_policy = self.resource_policy is not None and action.lower().startswith("kms:")
        decision = evaluate(request, self._policies(), key_policy=key_policy)
        result_decision = _decision(decision)
        labels = self._labels()
        matched = [labels[label].statement(index) for label, index in decision.matched]
        orgs = self._organizations(request)
        if orgs is not None and orgs != "allowed":
            result_decision, matched = orgs, []
        sources = [*self.identity, *filter(None, [self.boundary, self.resource_policy])]
        out: Output = {
            "EvalResourceName": resource,
            "EvalResourceDecision": result_decision,
            "MatchedStatements": matched,
            "MissingContextValues": _missing(sources, request, request.condition_keys),
            "_orgs": orgs in (None, "allowed"),
        }
        if self.boundary is not None:
            alone = evaluate(request, PolicySet(identity=(self.boundary.document,)))
            out["PermissionsBoundaryDecisionDetail"] = {
                "AllowedByPermissionsBoundary": alone.allowed
            }
        if named:
            out["EvalDecisionDetails"] = self._details(request, key_policy)
        return out

    def _policies(self) -> PolicySet:
        return PolicySet(
            identity=tuple(source.document for source in self.identity),
            resource=self.resource_policy.document if self.resource_policy else None,
            permissions_boundary=self.boundary.document if self.boundary else None,
        )

    def _owner(self, resource: str) -> str | None:
        if self.resource_owner:
            return self.resource_owner
        parts = resource.split(":", 5)
        if len(parts) == 6 and _ACCOUNT.fullmatch(parts[4]):
            return parts[4]
        return self.caller_account

    def _details(self, request: RequestContext, key_policy: bool) -> dict[str, EvalDecision]:
        """Each side's own decision, for a cross-account simulation (see the docstring)."""
        if request.resource_account in (None, self.caller_account):
            return {}
        own = RequestContext(
            principal_arn=request.principal_arn,
            principal_account=request.principal_account,
            action=request.action,
            resource=request.resource,
            resource_account=self.caller_account,
            context=request.context,
        )
        details: dict[str, EvalDecision] = {
            "IAM Policy": _decision(
                evaluate(own, PolicySet(identity=tuple(s.document for s in self.identity)))
            )
        }
        if self.resource_policy is None:
            details["Resource Policy"] = "implicitDeny"
        else:
            anything = load_policy(_ALLOW_ALL, "identity")
            policies = PolicySet(identity=(anything,), resource=self.resource_policy.document)
            details["Resource Policy"] = _decision(
                evaluate(request, policies, key_policy=key_policy)
            )
        if self.boundary is not None:
            alone = evaluate(own, PolicySet(identity=(self.boundary.document,)))
            details["Permissions Boundary Policy"] = _decision(alone)
        return details

    def _organizations(self, request: RequestContext) -> EvalDecision | None:
        """The SCPs' verdict: each level must allow, and none may deny."""
        if self.organizations is None:
            return None
        verdict: EvalDecision = "allowed"
        for level in self.organizations:
            decided = _decision(
                evaluate(request, PolicySet(identity=tuple(s.document for s in level)))
            )
            if _RANK[decided] > _RANK[verdict]:
                verdict = decided
        return verdict


def _decision(decision: Decision) -> EvalDecision:
    if decision.allowed:
        return "allowed"
    return "explicitDeny" if decision.reason == "explicit_deny" else "implicitDeny"


def _union(groups: Iterable[list[Output]]) -> list[Output]:
    seen: dict[str, Output] = {}
    for group in groups:
        for statement in group:
            seen.setdefault(json.dumps(statement, sort_keys=True), statement)
    return list(seen.values())


def _arn_format(action: str, resources: Sequence[str]) -> str:
    """The ARN format of the resource type the resources share, or ``*``."""
    service = action.split(":", 1)[0].lower()
    formats: set[str] = set()
    for resource in resources:
        parts = resource.split(":", 5)
        if len(parts) != 6 or parts[2] != service:
            return "*"
        kind = re.split(r"[/:]", parts[5], maxsplit=1)[0]
        found = _ARN_FORMATS.get(f"{service}:{kind}")
        if found is None:
            return "*"
        formats.add(found)
    return formats.pop() if len(formats) == 1 else "*"


# --------------------------------------------------------------------------- the operations


def _inputs(texts: Sequence[str] | None, member: str, policy_type: str) -> list[PolicySource]:
    sources = [
        PolicySource(f"{member}.{n}", policy_type, text) for n, text in enumerate(texts or (), 1)
    ]
    for source in sources:
        _ = source.document  # refuse a malformed policy before anything is evaluated
    return sources


def _boundary_input(params: Params) -> PolicySource | None:
    given = _inputs(
        params.get("PermissionsBoundaryPolicyInputList"),
        "PermissionsBoundaryPolicyInputList",
        "none",
    )
    if len(given) > 1:
        raise _invalid_input("Only one permissions boundary policy can be simulated at a time.")
    return given[0] if given else None


def _resource_policy(params: Params) -> PolicySource | None:
    text = params.get("ResourcePolicy")
    if not text:
        return None
    source = PolicySource("ResourcePolicy", "resource", str(text), kind="key")
    _ = source.document
    return source


def _caller_arn(params: Params) -> str | None:
    arn = params.get("CallerArn")
    if arn is None:
        return None
    if _ENTITY_ARN.fullmatch(str(arn)) is None:
        raise _invalid_input(
            f"Invalid CallerArn {arn}: give the ARN of an IAM user, group or role."
        )
    return str(arn)


def _resource_owner(params: Params) -> str | None:
    owner = params.get("ResourceOwner")
    if owner is None:
        return None
    owner = str(owner)
    root = _ROOT_ARN.fullmatch(owner)
    if root is not None:
        return root.group(1)
    if _ACCOUNT.fullmatch(owner) is None:
        raise _invalid_input(f"Invalid ResourceOwner {owner}: give a 12-digit account ID.")
    return owner


def _max_items(params: Params) -> int:
    return max(1, min(int(params.get("MaxItems") or DEFAULT_MAX_ITEMS), MAX_MAX_ITEMS))


def _start(tokens: TokenCodec, params: Params) -> int:
    marker = params.get("Marker")
    if not marker:
        return 0
    try:
        start = tokens.decode(_MARKER_SCOPE, marker).get("start")
    except ServiceError:
        start = None  # IAM answers a bad Marker with its own error
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise _invalid_input("Invalid Marker.")
    return start


def _page(tokens: TokenCodec, params: Params, simulation: Simulation) -> Output:
    """Results are per action: a page evaluates only its own actions."""
    actions: list[str] = list(params["ActionNames"])
    start = _start(tokens, params)
    limit = _max_items(params)
    page = actions[start : start + limit]
    out: Output = {
        "EvaluationResults": simulation.run(page, params.get("ResourceArns")),
        "IsTruncated": start + limit < len(actions),
    }
    if out["IsTruncated"]:
        out["Marker"] = tokens.encode(_MARKER_SCOPE, {"start": start + limit})
    return out


class PolicySimulator:
    """The two simulator operations, over IAM's store (read only)."""

    def __init__(self, store: Store, tokens: TokenCodec) -> None:
        self._store = store
        self._tokens = tokens  # IAM's Marker codec

    def simulate_principal_policy(self, caller: Any, params: Params) -> Output:
        source_arn = str(params["PolicySourceArn"])
        entity = _entity_policies(self._store, caller.account_id, source_arn)
        exclusions = _Exclusions.parse(params.get("PolicyExclusionList"))
        identity = [s for s in entity.identity if not exclusions.excludes(s)]
        identity += _inputs(params.get("PolicyInputList"), "PolicyInputList", "IAM Policy")
        boundary = _boundary_input(params)
        if boundary is None and not exclusions.excludes_boundary(entity.boundary):
            boundary = entity.boundary
        resource_policy = _resource_policy(params)
        caller_arn = _caller_arn(params)
        if resource_policy is not None and caller_arn is None and entity.kind == "group":
            raise _invalid_input(
                "CallerArn is required when a ResourcePolicy is simulated for a group."
            )
        caller_arn = caller_arn or source_arn
        simulation = Simulation(
            identity=identity,
            boundary=boundary,
            resource_policy=resource_policy,
            organizations=None,
            caller_arn=caller_arn,
            caller_account=caller_arn.split(":")[4],
            resource_owner=_resource_owner(params),
            context=_context(params.get("ContextEntries")),
        )
        return _page(self._tokens, params, simulation)

    def simulate_custom_policy(self, caller: Any, params: Params) -> Output:
        resource_policy = _resource_policy(params)
        caller_arn = _caller_arn(params)
        if resource_policy is not None and caller_arn is None:
            raise _invalid_input("CallerArn is required when a ResourcePolicy is simulated.")
        levels = params.get("OrderedOrganizationPolicyInputList")
        organizations = None
        if levels is not None:
            organizations = [
                _inputs(level.get("ServiceControlPolicyInputList"), f"SCP.{n}", "none")
                for n, level in enumerate(levels, 1)
            ]
        simulation = Simulation(
            identity=_inputs(params["PolicyInputList"], "PolicyInputList", "IAM Policy"),
            boundary=_boundary_input(params),
            resource_policy=resource_policy,
            organizations=organizations,
            caller_arn=caller_arn or str(caller.principal_arn),
            caller_account=(caller_arn or "").split(":")[4]
            if caller_arn
            else str(caller.account_id),
            resource_owner=_resource_owner(params),
            context=_context(params.get("ContextEntries")),
        )
        return _page(self._tokens, params, simulation)
