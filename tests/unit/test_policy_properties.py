"""Properties of strongroom.policy.evaluate over generated policies and requests.

- Adding a Deny statement anywhere never widens access.
- Adding an Allow statement to an identity, resource, boundary or session policy never
  narrows access (nor removes an explicit deny).
- Evaluation is deterministic, with or without the caches.
- The order of statements, and of policies of one type, does not change the decision.
- Condition algebra: a negated operator is the negation of its positive form, IfExists
  only differs on a missing key, set operators on one value agree with the bare operator.

The vocabulary is small on purpose, so that generated statements often match.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.policy.conditions import NEGATIONS, Condition
from strongroom.policy.document import PolicyDocument, PolicyKind
from strongroom.policy.evaluate import (
    Decision,
    PolicySet,
    RequestContext,
    clear_caches,
    evaluate,
    load_policy,
)

ACCOUNT = "111122223333"
OTHER = "444455556666"
PREFIX = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:"
SECRETS = [f"{PREFIX}MyApp/DB-AbCdEf", f"{PREFIX}home/alice/x-AbCdEf", f"{PREFIX}Other-ZyXwVu"]
FOREIGN = f"arn:aws:secretsmanager:us-east-1:{OTHER}:secret:Shared-AbCdEf"

PRINCIPALS = [
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    f"arn:aws:iam::{ACCOUNT}:user/bob",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/s1",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/Writer/s1",
    f"arn:aws:sts::{ACCOUNT}:federated-user/dave",
    f"arn:aws:iam::{ACCOUNT}:root",
    f"arn:aws:iam::{OTHER}:user/carol",
    f"arn:aws:sts::{OTHER}:assumed-role/Reader/s1",
    "secretsmanager.amazonaws.com",
]
ACTIONS = [
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:ListSecrets",
    "kms:Decrypt",
]
ACTION_PATTERNS = [
    *ACTIONS,
    "*",
    "*",
    "secretsmanager:*",
    "secretsmanager:*",
    "secretsmanager:Get*",
    "kms:*",
    "secretsmanager:?utSecret*",
]
RESOURCE_PATTERNS = [
    "*",
    "*",
    "*",
    *SECRETS,
    FOREIGN,
    f"{PREFIX}MyApp/*",
    f"{PREFIX}home/${{aws:username}}/*",
    "arn:aws:secretsmanager:*:*:secret:*",
    f"{PREFIX}${{aws:PrincipalTag/team}}*",
]
PRINCIPAL_VALUES = [
    ACCOUNT,
    OTHER,
    f"arn:aws:iam::{ACCOUNT}:root",
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    f"arn:aws:iam::{ACCOUNT}:role/path/Reader",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/s1",
    f"arn:aws:iam::{OTHER}:user/carol",
    f"arn:aws:iam::{OTHER}:role/Reader",
]
# Condition fragments, each with its own operator so any subset forms a valid block.
CONDITION_FRAGMENTS: list[tuple[str, dict[str, Any]]] = [
    ("StringEquals", {"aws:username": ["alice", "carol"]}),
    ("StringNotEquals", {"aws:PrincipalTag/team": "red"}),
    ("StringLikeIfExists", {"secretsmanager:SecretId": "MyApp/*"}),
    ("Bool", {"aws:SecureTransport": "true"}),
    ("IpAddress", {"aws:SourceIp": "10.0.0.0/8"}),
    ("NotIpAddress", {"aws:SourceIp": "10.9.0.0/16"}),
    ("ForAnyValue:StringLike", {"aws:TagKeys": "a*"}),
    ("ForAllValues:StringEquals", {"aws:TagKeys": ["a", "b"]}),
    ("Null", {"aws:username": "false"}),
    ("NumericLessThan", {"n:size": "10"}),
    ("DateLessThan", {"aws:CurrentTime": "2030-01-01T00:00:00Z"}),
    ("ArnLike", {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:*"}),
    ("StringEqualsIgnoreCase", {"aws:PrincipalTag/team": "${aws:username}"}),
]


def one_or_many(values: list[str]) -> st.SearchStrategy[Any]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True).map(
        lambda items: items[0] if len(items) == 1 else items
    )


@st.composite
def statements(
    draw: st.DrawFn, *, resource_policy: bool, effect: str | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Allow", "Deny"]))
    }
    statement["NotAction" if draw(st.booleans()) and draw(st.booleans()) else "Action"] = draw(
        one_or_many(ACTION_PATTERNS)
    )
    statement["NotResource" if draw(st.integers(0, 4)) == 4 else "Resource"] = draw(
        one_or_many(RESOURCE_PATTERNS)
    )
    if resource_policy:
        choice = draw(st.integers(0, 5))
        if choice == 0:
            statement["Principal"] = "*"
        elif choice == 1:
            statement["NotPrincipal"] = {"AWS": draw(one_or_many(PRINCIPAL_VALUES))}
        elif choice == 2:
            statement["Principal"] = {"Service": "secretsmanager.amazonaws.com"}
        else:
            statement["Principal"] = {"AWS": draw(one_or_many(PRINCIPAL_VALUES))}
    if draw(st.integers(0, 2)) == 2:
        fragments = draw(
            st.lists(
                st.sampled_from(CONDITION_FRAGMENTS),
                min_size=1,
                max_size=2,
                unique_by=lambda f: f[0],
            )
        )
        statement["Condition"] = dict(fragments)
    return statement


def documents(*, resource_policy: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(statements(resource_policy=resource_policy), min_size=1, max_size=4)


@st.composite
def policy_sets(draw: st.DrawFn) -> dict[str, Any]:
    """Raw statement lists for every policy type (documents are built by :func:`build`)."""
    return {
        "identity": draw(st.lists(documents(resource_policy=False), min_size=1, max_size=2)),
        "resource": draw(st.none() | documents(resource_policy=True)),
        "boundary": draw(st.none() | st.none() | documents(resource_policy=False)),
        "session": draw(st.lists(documents(resource_policy=False), max_size=2)),
    }


@st.composite
def requests(draw: st.DrawFn) -> RequestContext:
    principal = draw(st.sampled_from(PRINCIPALS))
    parts = principal.split(":")
    account = parts[4] if len(parts) > 4 else ACCOUNT
    action = draw(st.sampled_from(ACTIONS))
    resource = "*" if action.endswith("ListSecrets") else draw(st.sampled_from([*SECRETS, FOREIGN]))
    resource_account = None if resource == "*" else resource.split(":")[4]
    context: dict[str, tuple[str, ...]] = {}
    optional: dict[str, st.SearchStrategy[tuple[str, ...]]] = {
        "aws:username": st.sampled_from([("alice",), ("bob",), ("carol",)]),
        "aws:PrincipalTag/team": st.sampled_from([("red",), ("alice",), ("ALICE",), ("blue",)]),
        "aws:SecureTransport": st.sampled_from([("true",), ("false",)]),
        "aws:SourceIp": st.sampled_from([("10.0.0.1",), ("10.9.1.1",), ("192.0.2.5",)]),
        "aws:TagKeys": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3).map(tuple),
        "secretsmanager:SecretId": st.sampled_from([("MyApp/DB",), ("Other",)]),
        "n:size": st.sampled_from([("3",), ("10",), ("x",)]),
        "aws:CurrentTime": st.sampled_from([("2025-01-01T00:00:00Z",), ("2031-01-01T00:00:00Z",)]),
    }
    for key, values in optional.items():
        if draw(st.booleans()):
            context[key] = draw(values)
    return RequestContext(principal, account, action, resource, resource_account, context)


def policy(statements: list[dict[str, Any]], kind: PolicyKind) -> PolicyDocument:
    return load_policy(json.dumps({"Version": "2012-10-17", "Statement": statements}), kind)


def build(raw: dict[str, Any]) -> PolicySet:
    return PolicySet(
        identity=[policy(d, "identity") for d in raw["identity"]],
        resource=policy(raw["resource"], "resource") if raw["resource"] is not None else None,
        permissions_boundary=policy(raw["boundary"], "identity")
        if raw["boundary"] is not None
        else None,
        session_policies=[policy(d, "identity") for d in raw["session"]],
    )


def outcome(decision: Decision) -> tuple[bool, str, str | None]:
    return decision.allowed, decision.reason, decision.denied_by


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def with_statement(
    raw: dict[str, Any], where: str, index: int, statement: dict[str, Any]
) -> dict[str, Any]:
    """A copy of ``raw`` with ``statement`` added to one policy (``index`` picks which of a
    list, or a new identity policy when out of range)."""
    copy = json.loads(json.dumps(raw))
    if where == "identity":
        if index < len(copy["identity"]):
            copy["identity"][index].append(statement)
        else:
            copy["identity"].append([statement])
    elif where == "resource":
        copy["resource"] = [*(copy["resource"] or []), statement]
    elif where == "boundary":
        copy["boundary"] = [*(copy["boundary"] or []), statement]
    else:
        copy["session"][index % len(copy["session"])].append(statement)
    return copy


WHERE = st.sampled_from(["identity", "resource", "boundary", "session"])


@SETTINGS
@given(
    raw=policy_sets(),
    request=requests(),
    key_policy=st.booleans(),
    where=WHERE,
    index=st.integers(0, 2),
    data=st.data(),
)
def test_adding_a_deny_never_widens_access(
    raw: dict[str, Any],
    request: RequestContext,
    key_policy: bool,
    where: str,
    index: int,
    data: st.DataObject,
) -> None:
    # A new boundary or session policy made of the Deny alone would also allow nothing
    # else: start from one that allows everything, so that the Deny is a pure addition.
    if where == "session" and not raw["session"]:
        raw["session"] = [[{"Effect": "Allow", "Action": "*", "Resource": "*"}]]
    if where == "boundary" and raw["boundary"] is None:
        raw["boundary"] = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    extra = data.draw(statements(resource_policy=where == "resource", effect="Deny"))
    before = evaluate(request, build(raw), key_policy=key_policy)
    after = evaluate(
        request, build(with_statement(raw, where, index, extra)), key_policy=key_policy
    )
    if after.allowed:
        assert before.allowed
        assert after.matched == before.matched
    if before.reason == "explicit_deny":
        assert after.reason == "explicit_deny"


@SETTINGS
@given(
    raw=policy_sets(),
    request=requests(),
    key_policy=st.booleans(),
    where=WHERE,
    index=st.integers(0, 2),
    data=st.data(),
)
def test_adding_an_allow_never_narrows_access(
    raw: dict[str, Any],
    request: RequestContext,
    key_policy: bool,
    where: str,
    index: int,
    data: st.DataObject,
) -> None:
    # A new boundary or session policy limits; only statements added to existing ones
    # (or new identity and resource policies) are pure additions.
    if where == "boundary" and raw["boundary"] is None:
        where = "identity"
    if where == "session" and not raw["session"]:
        where = "identity"
    extra = data.draw(statements(resource_policy=where == "resource", effect="Allow"))
    before = evaluate(request, build(raw), key_policy=key_policy)
    after = evaluate(
        request, build(with_statement(raw, where, index, extra)), key_policy=key_policy
    )
    if before.allowed:
        assert after.allowed
    if before.reason == "explicit_deny":
        assert outcome(after) == outcome(before)
        assert after.matched == before.matched


@SETTINGS
@given(raw=policy_sets(), request=requests(), key_policy=st.booleans())
def test_evaluation_is_deterministic(
    raw: dict[str, Any], request: RequestContext, key_policy: bool
) -> None:
    policies = build(raw)
    first = evaluate(request, policies, key_policy=key_policy)
    assert evaluate(request, policies, key_policy=key_policy) == first
    clear_caches()
    assert evaluate(request, build(raw), key_policy=key_policy) == first


@SETTINGS
@given(raw=policy_sets(), request=requests(), key_policy=st.booleans(), data=st.data())
def test_statement_order_does_not_matter(
    raw: dict[str, Any], request: RequestContext, key_policy: bool, data: st.DataObject
) -> None:
    # Give every statement a Sid so matched statements can be compared across orders.
    def tag(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
        return [{**s, "Sid": f"{prefix}{n}"} for n, s in enumerate(statements)]

    raw = {
        "identity": [tag(d, f"I{i}x") for i, d in enumerate(raw["identity"])],
        "resource": tag(raw["resource"], "R") if raw["resource"] else None,
        "boundary": tag(raw["boundary"], "B") if raw["boundary"] else None,
        "session": [tag(d, f"S{i}x") for i, d in enumerate(raw["session"])],
    }
    shuffled = {
        "identity": data.draw(
            st.permutations([data.draw(st.permutations(d)) for d in raw["identity"]])
        ),
        "resource": data.draw(st.permutations(raw["resource"])) if raw["resource"] else None,
        "boundary": data.draw(st.permutations(raw["boundary"])) if raw["boundary"] else None,
        "session": data.draw(
            st.permutations([data.draw(st.permutations(d)) for d in raw["session"]])
        ),
    }
    original, reordered = build(raw), build(shuffled)
    before = evaluate(request, original, key_policy=key_policy)
    after = evaluate(request, reordered, key_policy=key_policy)
    assert outcome(after) == outcome(before)
    assert sids(after, reordered) == sids(before, original)


def sids(decision: Decision, policies: PolicySet) -> set[str | None]:
    documents: dict[str, PolicyDocument] = {
        f"identity[{i}]": d for i, d in enumerate(policies.identity)
    }
    documents.update({f"session[{i}]": d for i, d in enumerate(policies.session_policies)})
    if policies.resource is not None:
        documents["resource"] = policies.resource
    if policies.permissions_boundary is not None:
        documents["permissions_boundary"] = policies.permissions_boundary
    return {documents[label].statements[index].sid for label, index in decision.matched}


# --------------------------------------------------------------------------- condition algebra

KEY = "k:key"
VALUE_POOL = [
    "a",
    "b",
    "A",
    "a*",
    "10",
    "10.5",
    "-3",
    "10.0.0.1",
    "10.0.0.0/8",
    "2025-01-01T00:00:00Z",
    "1735689600",
    "true",
    "FALSE",
    "arn:aws:iam::111122223333:role/x",
    "arn:aws:iam::*:role/*",
    "YQ==",
    "Yg==",
]
REQUEST_VALUES = st.none() | st.lists(st.sampled_from(VALUE_POOL), min_size=0, max_size=3).map(
    tuple
)
POLICY_VALUES = st.lists(st.sampled_from(VALUE_POOL), min_size=1, max_size=3).map(tuple)
POSITIVE = sorted(
    {
        *NEGATIONS.values(),
        "StringLike",
        "NumericLessThan",
        "DateGreaterThanEquals",
        "Bool",
        "BinaryEquals",
    }
)


def keys_of(values: tuple[str, ...] | None) -> dict[str, tuple[str, ...]]:
    return {} if not values else {KEY: values}


def holds(
    operator: str, policy_values: tuple[str, ...], request_values: tuple[str, ...] | None
) -> bool:
    return Condition(operator, KEY, policy_values, variables=True)(keys_of(request_values))


@settings(max_examples=300, deadline=None)
@given(
    negated=st.sampled_from(sorted(NEGATIONS)),
    policy_values=POLICY_VALUES,
    request_values=REQUEST_VALUES,
)
def test_a_negated_operator_is_the_negation_of_its_positive_form(
    negated: str, policy_values: tuple[str, ...], request_values: tuple[str, ...] | None
) -> None:
    positive = NEGATIONS[negated]
    assert holds(negated, policy_values, request_values) is not holds(
        positive, policy_values, request_values
    )


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(POSITIVE + sorted(NEGATIONS)),
    policy_values=POLICY_VALUES,
    request_values=REQUEST_VALUES,
)
def test_if_exists_differs_only_on_a_missing_key(
    base: str, policy_values: tuple[str, ...], request_values: tuple[str, ...] | None
) -> None:
    if request_values:
        assert holds(f"{base}IfExists", policy_values, request_values) is holds(
            base, policy_values, request_values
        )
    else:
        assert holds(f"{base}IfExists", policy_values, request_values) is True


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(POSITIVE + sorted(NEGATIONS)),
    policy_values=POLICY_VALUES,
    value=st.sampled_from(VALUE_POOL),
)
def test_set_operators_on_one_value_agree_with_the_bare_operator(
    base: str, policy_values: tuple[str, ...], value: str
) -> None:
    bare = holds(base, policy_values, (value,))
    assert holds(f"ForAnyValue:{base}", policy_values, (value,)) is bare
    assert holds(f"ForAllValues:{base}", policy_values, (value,)) is bare


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from(POSITIVE), policy_values=POLICY_VALUES, request_values=REQUEST_VALUES)
def test_for_all_values_is_for_any_value_of_the_complement(
    base: str, policy_values: tuple[str, ...], request_values: tuple[str, ...] | None
) -> None:
    # "every value matches" == "not (some value matches none)", on any set, empty included.
    negated = next((n for n, p in NEGATIONS.items() if p == base), None)
    if negated is None:
        return
    every = holds(f"ForAllValues:{base}", policy_values, request_values)
    assert every is not holds(f"ForAnyValue:{negated}", policy_values, request_values)


@settings(max_examples=300, deadline=None)
@given(request_values=REQUEST_VALUES)
def test_null_is_the_presence_test(request_values: tuple[str, ...] | None) -> None:
    present = bool(request_values)
    assert holds("Null", ("true",), request_values) is not present
    assert holds("Null", ("false",), request_values) is present
