"""The authorizer's decision memo: a repeated request is answered without evaluating, and
a request that differs in anything the decision depends on is decided afresh.

Each test makes a request that is allowed (so its decision is remembered) and one that
differs from it in exactly one input and must be denied, then asks both again: the
answers must not change, and the second round must come from the memo.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import strongroom.policy.authorizer as authorizer_module
from strongroom.clock import ManualClock
from strongroom.iam.credentials import Principal, admin_arn
from strongroom.iam.service import IdentityService
from strongroom.policy.authorizer import CallFacts, PolicyAuthorizer
from strongroom.policy.checks import Check
from strongroom.policy.compiled import CLOCK_KEYS, reads_clock
from strongroom.policy.document import parse_policy
from strongroom.protocol.errors import ServiceError
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.types import Caller
from tests.inprocess import client, signing_at

ADMIN = Caller(DEV_ACCOUNT, "us-east-1", admin_arn(DEV_ACCOUNT))
OTHER_ACCOUNT = "999988887777"
GET = "secretsmanager:GetSecretValue"
SECRET = f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:app/db-AbCdEf"
OTHER_SECRET = f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:app/other-AbCdEf"
KEY = f"arn:aws:kms:us-east-1:{DEV_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
START = datetime(2026, 1, 1, tzinfo=UTC)


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str = GET, resource: str = "*", **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{DEV_ACCOUNT}:user/{name}"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{DEV_ACCOUNT}:role/{name}"


def session_arn(role: str, session: str) -> str:
    return f"arn:aws:sts::{DEV_ACCOUNT}:assumed-role/{role}/{session}"


def as_user(name: str, **extra: Any) -> Principal:
    return Principal(DEV_ACCOUNT, user_arn(name), f"AKIA{name.upper():0<16}", **extra)


def as_session(role: str, session: str, **extra: Any) -> Principal:
    extra.setdefault("identity_arn", role_arn(role))
    return Principal(
        DEV_ACCOUNT, session_arn(role, session), "ASIA0000000000000000", "assumed-role", **extra
    )


@dataclass
class Counter:
    evaluations: int = 0


@pytest.fixture
def iam(deployment: Deployment) -> IdentityService:
    return IdentityService(deployment.store, deployment.barrier, deployment.clock)


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts the policy evaluations the authorizer makes (a memo hit makes none)."""
    counted = Counter()
    real = authorizer_module.evaluate

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        counted.evaluations += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(authorizer_module, "evaluate", evaluate)
    return counted


@pytest.fixture
def authorizer(iam: IdentityService, clock: ManualClock) -> PolicyAuthorizer:
    return PolicyAuthorizer(iam, clock)


def new_user(iam: IdentityService, name: str, *policies: str) -> Principal:
    iam.create_user(ADMIN, {"UserName": name})
    for number, text in enumerate(policies):
        iam.put_inline(
            "user", ADMIN, {"UserName": name, "PolicyName": f"p{number}", "PolicyDocument": text}
        )
    return as_user(name)


def new_role(iam: IdentityService, name: str, *policies: str) -> str:
    trust = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    )
    iam.create_role(ADMIN, {"RoleName": name, "AssumeRolePolicyDocument": trust})
    for number, text in enumerate(policies):
        iam.put_inline(
            "role", ADMIN, {"RoleName": name, "PolicyName": f"p{number}", "PolicyDocument": text}
        )
    return role_arn(name)


def facts(source_ip: str = "192.0.2.10", region: str = "us-east-1", **extra: Any) -> CallFacts:
    return CallFacts(source_ip, region, **extra)


def secret_check(**changes: Any) -> Check:
    values: dict[str, Any] = {"action": GET, "resource": SECRET, "resource_account": DEV_ACCOUNT}
    values.update(changes)
    return Check(**values)


Request = tuple[Principal, Check, CallFacts]


def outcome(authorizer: PolicyAuthorizer, request: Request) -> str | None:
    """None if allowed, else the AccessDenied message. The facts are copied: each call is
    a request of its own, as in the server."""
    principal, check, given = request
    fresh = CallFacts(given.source_ip, given.region, given.secure_transport)
    try:
        authorizer.authorize(principal, check, fresh)
    except ServiceError as denied:
        assert denied.code == "AccessDeniedException"
        return denied.message
    return None


def assert_kept_apart(
    authorizer: PolicyAuthorizer, counter: Counter, allowed: Request, denied: Request
) -> None:
    assert outcome(authorizer, allowed) is None
    message = outcome(authorizer, denied)
    assert message is not None
    evaluated = counter.evaluations
    for _ in range(2):
        assert outcome(authorizer, allowed) is None
        assert outcome(authorizer, denied) == message
    assert counter.evaluations == evaluated  # the second rounds came from the memo


# The memo ----------------------------------------------------------------------------------


def test_a_repeated_request_is_answered_from_the_memo(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow()))
    for _ in range(3):
        assert outcome(authorizer, (alice, secret_check(), facts())) is None
    assert counter.evaluations == 1


def test_the_admin_and_the_root_user_are_memoized_too(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    admin = Principal(DEV_ACCOUNT, admin_arn(DEV_ACCOUNT), "AKIAADMIN")
    root = Principal(DEV_ACCOUNT, f"arn:aws:iam::{DEV_ACCOUNT}:root", "AKIAROOT", "root")
    deny_all = document({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"})
    for principal in (admin, root):
        assert_kept_apart(
            authorizer,
            counter,
            (principal, secret_check(), facts()),
            (principal, secret_check(resource_policy=deny_all), facts()),
        )


def test_the_principal_org_id_is_that_of_the_principal_s_account(
    deployment: Deployment,
    iam: IdentityService,
    authorizer: PolicyAuthorizer,
    clock: ManualClock,
) -> None:
    alice = new_user(iam, "alice", document(allow(StringLike={"aws:PrincipalOrgID": "o-*"})))
    root = Principal(DEV_ACCOUNT, f"arn:aws:iam::{DEV_ACCOUNT}:root", "AKIAROOT", "root")
    org_key_policy = document(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
        }
    )
    requests: list[Request] = [
        (alice, secret_check(), facts()),
        (root, Check("kms:Decrypt", KEY, DEV_ACCOUNT, org_key_policy, key_policy=True), facts()),
    ]
    for _ in range(2):  # the second time from the memo
        for request in requests:
            assert outcome(authorizer, request) is not None  # no organization: no key
    with signing_at(clock):
        organization = client(deployment, "organizations").create_organization()
    org_id = organization["Organization"]["Id"]
    for request in requests:  # what was decided before the organization no longer holds
        assert outcome(authorizer, request) is None
    bob = new_user(iam, "bob", document(allow(StringEquals={"aws:PrincipalOrgID": org_id})))
    assert outcome(authorizer, (bob, secret_check(), facts())) is None
    elsewhere = allow(StringEquals={"aws:PrincipalOrgID": "o-0000000000"})
    carol = new_user(iam, "carol", document(elsewhere))
    assert outcome(authorizer, (carol, secret_check(), facts())) is not None


# Who asks ----------------------------------------------------------------------------------


def test_another_user(iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter) -> None:
    alice = new_user(iam, "alice", document(allow()))
    bob = new_user(iam, "bob")
    assert_kept_apart(
        authorizer, counter, (alice, secret_check(), facts()), (bob, secret_check(), facts())
    )


def test_another_session_of_the_same_role(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    new_role(iam, "reader", document(allow(StringLike={"aws:userid": "*:good"})))
    assert_kept_apart(
        authorizer,
        counter,
        (as_session("reader", "good"), secret_check(), facts()),
        (as_session("reader", "bad"), secret_check(), facts()),
    )


def test_another_identity_arn(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    new_role(iam, "reader", document(allow()))
    stale = f"arn:aws:iam::{DEV_ACCOUNT}:role/moved/reader"  # no such role: no policies
    assert_kept_apart(
        authorizer,
        counter,
        (as_session("reader", "s"), secret_check(), facts()),
        (as_session("reader", "s", identity_arn=stale), secret_check(), facts()),
    )


def test_a_session_of_a_deleted_role_is_told_apart_from_the_new_roles(
    iam: IdentityService, clock: ManualClock, counter: Counter
) -> None:
    """Sessions of a role deleted and created again share the role's ARN, under which its
    identity is cached: the old one is refused whichever of them asks first."""
    new_role(iam, "reader", document(allow()))
    role_id = iam.get_role(ADMIN, {"RoleName": "reader"})["Role"]["RoleId"]
    current = as_session("reader", "s", unique_id=f"{role_id}:s")
    stale = as_session("reader", "s", unique_id="AROAOLDREADER0000000:s")
    assert_kept_apart(
        PolicyAuthorizer(iam, clock),
        counter,
        (current, secret_check(), facts()),
        (stale, secret_check(), facts()),
    )
    stale_first = PolicyAuthorizer(iam, clock)
    assert outcome(stale_first, (stale, secret_check(), facts())) is not None
    assert outcome(stale_first, (current, secret_check(), facts())) is None


def test_another_account_id(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(
        iam, "alice", document(allow(StringEquals={"aws:PrincipalAccount": DEV_ACCOUNT}))
    )
    elsewhere = Principal(OTHER_ACCOUNT, alice.arn, alice.access_key_id)
    assert_kept_apart(
        authorizer,
        counter,
        (alice, secret_check(), facts()),
        (elsewhere, secret_check(), facts()),
    )


def test_another_principal_kind(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow(StringEquals={"aws:PrincipalType": "User"})))
    odd = Principal(DEV_ACCOUNT, alice.arn, alice.access_key_id, "assumed-role", alice.arn)
    assert_kept_apart(
        authorizer, counter, (alice, secret_check(), facts()), (odd, secret_check(), facts())
    )


def test_another_session_policy(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    new_role(iam, "reader", document(allow(action="secretsmanager:*")))
    reads = document(allow())
    describes = document(allow(action="secretsmanager:DescribeSecret"))
    assert_kept_apart(
        authorizer,
        counter,
        (as_session("reader", "s", session_policies=(reads,)), secret_check(), facts()),
        (as_session("reader", "s", session_policies=(describes,)), secret_check(), facts()),
    )


def test_another_session_tag(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    new_role(iam, "abac", document(allow(StringEquals={"aws:PrincipalTag/team": "payments"})))
    assert_kept_apart(
        authorizer,
        counter,
        (as_session("abac", "s", session_tags=(("team", "payments"),)), secret_check(), facts()),
        (as_session("abac", "s", session_tags=(("team", "search"),)), secret_check(), facts()),
    )


def test_another_source_identity(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    new_role(iam, "pinned", document(allow(StringEquals={"aws:SourceIdentity": "alice"})))
    assert_kept_apart(
        authorizer,
        counter,
        (as_session("pinned", "s", source_identity="alice"), secret_check(), facts()),
        (as_session("pinned", "s", source_identity="mallory"), secret_check(), facts()),
    )


def test_every_field_of_the_principal_is_part_of_the_key() -> None:
    # The whole Principal is in the key, by its equality: no field may be left out of it.
    assert Principal.__dataclass_params__.frozen  # type: ignore[attr-defined]
    # Every field but the cached hash itself, which is the hash of all the others.
    compared = [f.name for f in fields(Principal) if f.compare]
    assert compared == [f.name for f in fields(Principal) if f.name != "_hash"]
    one = as_session("r", "s", session_tags=(("a", "1"),))
    assert hash(one) == hash(as_session("r", "s", session_tags=(("a", "1"),)))
    assert hash(one) == hash(tuple(getattr(one, name) for name in compared))


# The request -------------------------------------------------------------------------------


def test_another_source_ip(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow(IpAddress={"aws:SourceIp": "192.0.2.0/24"})))
    assert_kept_apart(
        authorizer,
        counter,
        (alice, secret_check(), facts(source_ip="192.0.2.10")),
        (alice, secret_check(), facts(source_ip="198.51.100.10")),
    )


def test_another_region(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(
        iam, "alice", document(allow(StringEquals={"aws:RequestedRegion": "us-east-1"}))
    )
    assert_kept_apart(
        authorizer,
        counter,
        (alice, secret_check(), facts(region="us-east-1")),
        (alice, secret_check(), facts(region="eu-west-1")),
    )


def test_secure_transport(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow(Bool={"aws:SecureTransport": "true"})))
    assert_kept_apart(
        authorizer,
        counter,
        (alice, secret_check(), facts(secure_transport=True)),
        (alice, secret_check(), facts(secure_transport=False)),
    )


def test_every_compared_field_of_the_call_facts_is_part_of_the_key() -> None:
    # Every slot is a fact of the request (in the key) or a per-request memo (not).
    assert set(CallFacts.__slots__) == {*CallFacts.COMPARED, *CallFacts.MEMOS}
    assert set(CallFacts.COMPARED) == {"source_ip", "region", "secure_transport"}
    assert facts(secure_transport=True) != facts(secure_transport=False)
    assert facts() == facts() and hash(facts()) == hash(facts())
    assert authorizer_module._facts_fields(facts(secure_transport=True)) == (
        "192.0.2.10",
        "us-east-1",
        True,
    )


# The check ---------------------------------------------------------------------------------


def test_another_action(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow()))
    assert_kept_apart(
        authorizer,
        counter,
        (alice, secret_check(), facts()),
        (alice, secret_check(action="secretsmanager:DescribeSecret"), facts()),
    )


def test_another_resource(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow(resource=SECRET)))
    assert_kept_apart(
        authorizer,
        counter,
        (alice, secret_check(), facts()),
        (alice, secret_check(resource=OTHER_SECRET), facts()),
    )


def test_another_resource_account(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow()))
    assert_kept_apart(
        authorizer,
        counter,
        (alice, secret_check(), facts()),
        (alice, secret_check(resource_account=OTHER_ACCOUNT), facts()),  # no policy there
    )


def test_another_resource_policy_text(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice")  # no identity policy: only the resource policy can allow

    def naming(arn: str) -> str:
        return document(
            {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": GET, "Resource": "*"}
        )

    assert_kept_apart(
        authorizer,
        counter,
        (alice, secret_check(resource_policy=naming(alice.arn)), facts()),
        (alice, secret_check(resource_policy=naming(user_arn("bob"))), facts()),
    )


def test_the_key_policy_flag(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow(action="kms:Decrypt")))
    # Names someone else only: as a key policy it lets nobody else in, IAM included.
    policy = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": user_arn("bob")},
            "Action": "kms:*",
            "Resource": "*",
        }
    )

    def decrypt(key_policy: bool) -> Check:
        return Check("kms:Decrypt", KEY, DEV_ACCOUNT, policy, key_policy=key_policy)

    assert_kept_apart(
        authorizer, counter, (alice, decrypt(False), facts()), (alice, decrypt(True), facts())
    )


def test_another_condition_key_value(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(
        iam, "alice", document(allow(StringEquals={"aws:ResourceTag/team": "payments"}))
    )
    assert_kept_apart(
        authorizer,
        counter,
        (alice, secret_check(context={"aws:ResourceTag/team": ("payments",)}), facts()),
        (alice, secret_check(context={"aws:ResourceTag/team": ("search",)}), facts()),
    )


def test_a_condition_key_that_overrides_a_global_key_differently(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    # Same keys and values, in another order: the later of two spellings of one key wins.
    alice = new_user(iam, "alice", document(allow(StringEquals={"aws:ResourceTag/team": "a"})))
    first = {"aws:ResourceTag/team": ("b",), "AWS:RESOURCETAG/TEAM": ("a",)}
    second = {"AWS:RESOURCETAG/TEAM": ("a",), "aws:ResourceTag/team": ("b",)}
    assert_kept_apart(
        authorizer,
        counter,
        (alice, secret_check(context=first), facts()),
        (alice, secret_check(context=second), facts()),
    )


ROOT_DELEGATION = document(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
)


def decrypt(policy: str, secret: str | None) -> Check:
    context = {"kms:EncryptionContext:SecretARN": (secret,)} if secret else {}
    return Check("kms:Decrypt", KEY, DEV_ACCOUNT, policy, key_policy=True, context=context)


def test_condition_keys_that_no_policy_mentions_share_one_decision(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow(action="kms:Decrypt")))
    for secret in (SECRET, OTHER_SECRET, SECRET, None):
        assert outcome(authorizer, (alice, decrypt(ROOT_DELEGATION, secret), facts())) is None
    # Neither alice's policy nor the key policy reads the encryption context, so the
    # other secret's decrypt is answered by the first one's decision.
    assert counter.evaluations == 1
    # ... and remembered once: the memo grows with the secrets read, not with their
    # encryption contexts.
    assert len(authorizer._decisions) == 1


def test_a_policy_that_starts_reading_a_condition_key_keeps_decisions_apart_again(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow(action="kms:Decrypt")))
    for secret in (SECRET, OTHER_SECRET):
        assert outcome(authorizer, (alice, decrypt(ROOT_DELEGATION, secret), facts())) is None
    assert counter.evaluations == 1
    # Which keys alice's policies mention was remembered; the new policy mentions one more.
    reads_context = allow(
        action="kms:Decrypt", StringEquals={"kms:EncryptionContext:SecretARN": SECRET}
    )
    iam.put_inline(
        "user",
        ADMIN,
        {"UserName": "alice", "PolicyName": "p0", "PolicyDocument": document(reads_context)},
    )
    assert outcome(authorizer, (alice, decrypt(ROOT_DELEGATION, SECRET), facts())) is None
    assert outcome(authorizer, (alice, decrypt(ROOT_DELEGATION, OTHER_SECRET), facts())) is not None


@pytest.mark.parametrize(
    "mention",
    [
        "key policy",  # a condition on the key in the key policy
        "identity policy",  # ... in alice's own policy
        "session policy",  # ... in a policy variable of the session's policy
        "Null",  # only whether the key is present
    ],
)
def test_a_condition_key_some_policy_mentions_keeps_decisions_apart(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter, mention: str
) -> None:
    reads_context = {"StringEquals": {"kms:EncryptionContext:SecretARN": SECRET}}
    key_policy, own = ROOT_DELEGATION, allow(action="kms:Decrypt")
    principal: Principal
    if mention == "key policy":
        key_policy = document(
            {**json.loads(ROOT_DELEGATION)["Statement"][0], "Condition": reads_context}
        )
    elif mention == "identity policy":
        own = allow(action="kms:Decrypt", **reads_context)
    if mention == "session policy":
        new_role(iam, "reader", document(own))
        # Allows the key whose id is the context's value: the variable reads the key.
        variable = allow(
            action="kms:Decrypt",
            resource=f"arn:aws:kms:us-east-1:{DEV_ACCOUNT}:key/${{kms:EncryptionContext:SecretARN}}",
        )
        principal = as_session("reader", "s", session_policies=(document(variable),))
        key_id = KEY.rsplit("/", 1)[1]
        allowed_check, denied_check = decrypt(key_policy, key_id), decrypt(key_policy, SECRET)
    elif mention == "Null":
        deny_absent = {
            "Effect": "Deny",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"Null": {"kms:EncryptionContext:SecretARN": "true"}},
        }
        principal = new_user(iam, "alice", document(own, deny_absent))
        allowed_check, denied_check = decrypt(key_policy, SECRET), decrypt(key_policy, None)
    else:
        principal = new_user(iam, "alice", document(own))
        allowed_check, denied_check = decrypt(key_policy, SECRET), decrypt(key_policy, OTHER_SECRET)
    assert_kept_apart(
        authorizer, counter, (principal, allowed_check, facts()), (principal, denied_check, facts())
    )


def test_an_unhashable_condition_value_is_decided_without_the_memo(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(
        iam, "alice", document(allow(StringEquals={"aws:ResourceTag/team": "payments"}))
    )
    listed: Any = {"aws:ResourceTag/team": ["payments"]}
    for _ in range(2):
        assert outcome(authorizer, (alice, secret_check(context=listed), facts())) is None
    assert counter.evaluations == 2
    assert len(authorizer._decisions) == 0


# IAM changes -------------------------------------------------------------------------------


def test_a_policy_change_is_seen_by_the_next_request(
    iam: IdentityService, authorizer: PolicyAuthorizer
) -> None:
    alice = new_user(iam, "alice", document(allow()))
    request = (alice, secret_check(), facts())
    assert outcome(authorizer, request) is None
    iam.delete_inline("user", ADMIN, {"UserName": "alice", "PolicyName": "p0"})
    assert outcome(authorizer, request) is not None
    iam.put_inline(
        "user",
        ADMIN,
        {"UserName": "alice", "PolicyName": "again", "PolicyDocument": document(allow())},
    )
    assert outcome(authorizer, request) is None


def test_a_change_anywhere_in_iam_drops_the_memo(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow()))
    request = (alice, secret_check(), facts())
    assert outcome(authorizer, request) is None
    iam.create_user(ADMIN, {"UserName": "someone-else"})
    assert outcome(authorizer, request) is None
    assert counter.evaluations == 2
    assert len(authorizer._decisions) == 1


def test_nothing_is_memoized_or_used_while_iam_reads_uncommitted_writes(
    deployment: Deployment, iam: IdentityService, authorizer: PolicyAuthorizer
) -> None:
    alice = new_user(iam, "alice", document(allow()))
    bob = new_user(iam, "bob")
    as_alice: Request = (alice, secret_check(), facts())
    as_bob: Request = (bob, secret_check(), facts())
    assert outcome(authorizer, as_alice) is None
    assert outcome(authorizer, as_bob) is not None
    remembered = dict(authorizer._decisions)

    with deployment.store.unit_of_work():  # rolled back: never committed
        iam.delete_inline("user", ADMIN, {"UserName": "alice", "PolicyName": "p0"})
        iam.put_inline(
            "user",
            ADMIN,
            {"UserName": "bob", "PolicyName": "p0", "PolicyDocument": document(allow())},
        )
        assert iam.reads_uncommitted()
        assert outcome(authorizer, as_alice) is not None  # not the remembered allow
        assert outcome(authorizer, as_bob) is None
        assert outcome(authorizer, as_bob) is None
        assert dict(authorizer._decisions) == remembered

    assert not iam.reads_uncommitted()
    assert outcome(authorizer, as_alice) is None
    assert outcome(authorizer, as_bob) is not None  # the uncommitted grant left nothing


# Time --------------------------------------------------------------------------------------

UNTIL = "2026-01-01T00:10:00Z"


@pytest.mark.parametrize(
    "condition",
    [
        {"DateLessThan": {"aws:CurrentTime": UNTIL}},
        {"DateLessThanIfExists": {"AWS:currenttime": UNTIL}},
        {"ForAnyValue:DateLessThan": {"aws:CurrentTime": UNTIL}},
        {"NumericLessThan": {"aws:EpochTime": str(int(START.timestamp()) + 600)}},
    ],
    ids=["DateLessThan", "IfExists", "ForAnyValue", "EpochTime"],
)
def test_a_time_condition_is_evaluated_again_as_time_moves(
    iam: IdentityService,
    authorizer: PolicyAuthorizer,
    clock: ManualClock,
    counter: Counter,
    condition: dict[str, Any],
) -> None:
    alice = new_user(iam, "alice", document(allow(**condition)))
    request = (alice, secret_check(), facts())
    assert outcome(authorizer, request) is None
    assert outcome(authorizer, request) is None
    assert counter.evaluations == 1  # within the same second: from the memo
    clock.advance(timedelta(minutes=9))
    assert outcome(authorizer, request) is None
    clock.advance(timedelta(minutes=2))
    assert outcome(authorizer, request) is not None
    assert outcome(authorizer, request) is not None


def test_the_mfa_age_is_evaluated_again_as_time_moves(
    iam: IdentityService, authorizer: PolicyAuthorizer, clock: ManualClock, counter: Counter
) -> None:
    """aws:MultiFactorAuthAge counts from the session's MFA time: a decision that reads it
    is remembered only for the second it was made in, like one reading aws:CurrentTime."""
    fresh = allow(NumericLessThan={"aws:MultiFactorAuthAge": "600"})
    new_role(iam, "mfa", document(fresh))
    verified = int(clock.now().timestamp() * 1000)
    with_mfa = as_session("mfa", "s", session_token=True, mfa_authenticated_ms=verified)
    without = as_session("mfa", "t", session_token=True)
    request = (with_mfa, secret_check(), facts())
    assert outcome(authorizer, request) is None
    assert outcome(authorizer, request) is None
    assert counter.evaluations == 1
    assert outcome(authorizer, (without, secret_check(), facts())) is not None
    clock.advance(timedelta(seconds=599))
    assert outcome(authorizer, request) is None
    clock.advance(timedelta(seconds=1))
    assert outcome(authorizer, request) is not None


@pytest.mark.parametrize("where", ["identity", "boundary", "resource", "session"])
def test_time_is_compared_whichever_policy_reads_it(
    iam: IdentityService,
    authorizer: PolicyAuthorizer,
    clock: ManualClock,
    where: str,
) -> None:
    timed = allow(action="secretsmanager:*", DateLessThan={"aws:CurrentTime": UNTIL})
    everything = document(allow(action="secretsmanager:*"))
    identity = document(timed) if where == "identity" else everything
    principal = new_user(iam, "alice", identity)
    check = secret_check()
    if where == "boundary":
        boundary = iam.create_policy(
            ADMIN, {"PolicyName": "until", "PolicyDocument": document(timed)}
        )["Policy"]["Arn"]
        iam.put_boundary("user", ADMIN, {"UserName": "alice", "PermissionsBoundary": boundary})
    elif where == "resource":
        deny_after = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "secretsmanager:*",
            "Resource": "*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": UNTIL}},
        }
        check = secret_check(resource_policy=document(deny_after))
    elif where == "session":
        new_role(iam, "reader", everything)
        principal = as_session("reader", "s", session_policies=(document(timed),))
    request = (principal, check, facts())
    assert outcome(authorizer, request) is None
    clock.advance(timedelta(minutes=11))
    assert outcome(authorizer, request) is not None


def test_policy_variables_naming_the_clock_are_evaluated_again_as_time_moves(
    iam: IdentityService, authorizer: PolicyAuthorizer, clock: ManualClock
) -> None:
    epoch = int(START.timestamp())
    by_name = f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:${{aws:EpochTime}}-*"
    by_tag = {"StringEquals": {"aws:ResourceTag/stamp": "${aws:CurrentTime, 'never'}"}}
    alice = new_user(
        iam,
        "alice",
        document(allow(resource=by_name)),
        document(allow(action="secretsmanager:DescribeSecret", **by_tag)),
    )
    named = secret_check(
        resource=f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:{epoch}-x"
    )
    tagged = secret_check(
        action="secretsmanager:DescribeSecret",
        context={"aws:ResourceTag/stamp": ("2026-01-01T00:00:00Z",)},
    )
    assert outcome(authorizer, (alice, named, facts())) is None
    assert outcome(authorizer, (alice, tagged, facts())) is None
    clock.advance(timedelta(seconds=1))
    assert outcome(authorizer, (alice, named, facts())) is not None
    assert outcome(authorizer, (alice, tagged, facts())) is not None


def test_a_policy_that_does_not_read_the_clock_is_remembered_across_time(
    iam: IdentityService, authorizer: PolicyAuthorizer, clock: ManualClock, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow()))
    for _ in range(3):
        assert outcome(authorizer, (alice, secret_check(), facts())) is None
        clock.advance(timedelta(hours=1))
    assert counter.evaluations == 1


def test_only_the_clock_keys_depend_on_the_clock(
    iam: IdentityService, authorizer: PolicyAuthorizer, clock: ManualClock
) -> None:
    new_role(iam, "reader")
    principal = as_session("reader", "s", session_tags=(("team", "a"),), source_identity="x")
    identity = authorizer._identity(principal, iam.generation())
    before = authorizer._global_keys(principal, identity, facts())
    earlier = authorizer._clock_keys(facts())
    clock.advance(timedelta(days=400, seconds=1))
    assert authorizer._global_keys(principal, identity, facts()) == before
    later = authorizer._clock_keys(facts())
    assert tuple(earlier) == tuple(later) == CLOCK_KEYS
    assert earlier == {
        "aws:CurrentTime": ("2026-01-01T00:00:00Z",),
        "aws:EpochTime": ("1767225600",),
    }
    assert later != earlier


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (allow(), False),
        (allow(DateLessThan={"aws:TokenIssueTime": UNTIL}), False),
        (allow(DateLessThan={"aws:CurrentTime": UNTIL}), True),
        (allow(NumericLessThan={"aws:MultiFactorAuthAge": "3600"}), True),
        (allow(Bool={"aws:MultiFactorAuthPresent": "true"}), False),
        (allow(DateLessThan={"AWS:CURRENTTIME": UNTIL}), True),
        (allow(NumericLessThan={"aws:epochtime": "1"}), True),
        (allow(Null={"aws:CurrentTime": "false"}), True),
        (allow(**{"ForAllValues:StringLike": {"aws:EpochTime": "1*"}}), True),
        (allow(resource="arn:aws:secretsmanager:*:*:secret:${aws:EpochTime}"), True),
        (allow(StringEquals={"aws:ResourceTag/t": "${ aws:CurrentTime , 'x'}"}), True),
        (
            {"Effect": "Allow", "Action": GET, "NotResource": "arn:aws:s3:::${aws:CurrentTime}"},
            True,
        ),
    ],
)
def test_which_policies_read_the_clock(statement: dict[str, Any], expected: bool) -> None:
    assert reads_clock(parse_policy(document(statement), kind="identity")) is expected


# Denials -----------------------------------------------------------------------------------


def test_denials_keep_their_exact_messages(
    iam: IdentityService, authorizer: PolicyAuthorizer, counter: Counter
) -> None:
    deny = iam.create_policy(
        ADMIN,
        {
            "PolicyName": "no-reads",
            "PolicyDocument": document({"Effect": "Deny", "Action": GET, "Resource": OTHER_SECRET}),
        },
    )["Policy"]["Arn"]
    alice = new_user(iam, "alice", document(allow()))
    iam.attach("user", ADMIN, {"UserName": "alice", "PolicyArn": deny})
    implicit = (alice, secret_check(action="secretsmanager:DescribeSecret"), facts())
    explicit = (alice, secret_check(resource=OTHER_SECRET), facts())
    expected = [
        (
            implicit,
            f"User: {alice.arn} is not authorized to perform: secretsmanager:DescribeSecret "
            f"on resource: {SECRET} because no identity-based policy allows the "
            "secretsmanager:DescribeSecret action",
        ),
        (
            explicit,
            f"User: {alice.arn} is not authorized to perform: {GET} on resource: "
            f"{OTHER_SECRET} with an explicit deny in an identity-based policy: {deny}",
        ),
    ]
    unmemoized = PolicyAuthorizer(iam, authorizer._clock, decision_limit=0)
    for _ in range(3):
        for request, message in expected:
            assert outcome(authorizer, request) == message
            assert outcome(unmemoized, request) == message
    assert counter.evaluations == 2 + 3 * 2
    assert len(unmemoized._decisions) == 0


# Bounds and threads ------------------------------------------------------------------------


def test_the_memo_is_bounded_and_forgets_the_oldest_first(
    iam: IdentityService, clock: ManualClock, counter: Counter
) -> None:
    alice = new_user(iam, "alice", document(allow()))
    authorizer = PolicyAuthorizer(iam, clock, decision_limit=8)

    def request(number: int) -> Request:
        resource = f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:s{number}-AbCdEf"
        return (alice, secret_check(resource=resource), facts())

    for number in range(20):
        assert outcome(authorizer, request(number)) is None
        assert len(authorizer._decisions) <= 8
    assert counter.evaluations == 20
    assert outcome(authorizer, request(19)) is None  # among the newest: remembered
    assert counter.evaluations == 20
    assert outcome(authorizer, request(0)) is None  # the oldest: forgotten
    assert counter.evaluations == 21
    assert len(authorizer._decisions) == 8


def test_the_principals_whose_policies_are_kept_are_bounded(
    iam: IdentityService, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(authorizer_module, "IDENTITY_LIMIT", 2)
    users = [new_user(iam, f"user{number}", document(allow())) for number in range(3)]
    reads: list[str] = []
    real = iam.principal_policies

    def counted(arn: str) -> Any:
        reads.append(arn)
        return real(arn)

    monkeypatch.setattr(iam, "principal_policies", counted)
    authorizer = PolicyAuthorizer(iam, clock, decision_limit=0)
    for user in users:
        assert outcome(authorizer, (user, secret_check(), facts())) is None
    kept = [arn for arn, _bound in authorizer._cache]
    assert kept == [users[1].identity_arn, users[2].identity_arn]
    assert outcome(authorizer, (users[2], secret_check(), facts())) is None
    assert len(reads) == 3  # still kept
    assert outcome(authorizer, (users[0], secret_check(), facts())) is None
    assert len(reads) == 4  # the oldest was let go, and is read again
    assert len(authorizer._cache) == 2


def test_threads_share_the_memo_safely(iam: IdentityService, clock: ManualClock) -> None:
    alice = new_user(iam, "alice", document(allow()))
    bob = new_user(iam, "bob")
    authorizer = PolicyAuthorizer(iam, clock, decision_limit=16)
    failures: list[str] = []

    def requests() -> Iterator[tuple[Request, bool]]:
        for number in range(150):
            resource = f"{SECRET}{number % 40}"
            yield (alice, secret_check(resource=resource), facts()), True
            yield (bob, secret_check(resource=resource), facts()), False

    def work() -> None:
        for request, allowed in requests():
            if (outcome(authorizer, request) is None) != allowed:
                failures.append(request[0].arn)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(authorizer._decisions) <= 16


# Against the authorizer without a memo -----------------------------------------------------


def test_the_memo_decides_like_evaluating_every_time(
    iam: IdentityService, clock: ManualClock
) -> None:
    """Random requests over a small space, with time moving and IAM changing: the answers
    (and messages) are those of an authorizer that remembers nothing."""
    rng = random.Random(20260101)
    tagged = allow(StringEquals={"aws:PrincipalTag/team": "${aws:ResourceTag/team}"})
    timed = allow(action="secretsmanager:*", DateLessThan={"aws:CurrentTime": UNTIL})
    new_user(iam, "alice", document(allow(resource=SECRET), timed))
    new_user(iam, "bob", document(allow(IpAddress={"aws:SourceIp": "192.0.2.0/24"})))
    new_role(iam, "reader", document(tagged, allow("kms:Decrypt")))
    principals = [
        as_user("alice"),
        as_user("bob"),
        as_session("reader", "s", session_tags=(("team", "a"),)),
        as_session("reader", "s", session_tags=(("team", "b"),)),
        as_session("reader", "t", session_policies=(document(allow(resource=OTHER_SECRET)),)),
    ]
    key_policy = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"NumericLessThan": {"aws:EpochTime": str(int(START.timestamp()) + 900)}},
        }
    )
    reads_context = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringLike": {"kms:EncryptionContext:SecretARN": "*app/db*"}},
        }
    )
    checks = [
        secret_check(),
        secret_check(resource=OTHER_SECRET),
        secret_check(context={"aws:ResourceTag/team": ("a",)}),
        secret_check(context={"aws:ResourceTag/team": ("b",)}),
        secret_check(action="secretsmanager:DescribeSecret"),
        Check("kms:Decrypt", KEY, DEV_ACCOUNT, key_policy, key_policy=True),
        Check("kms:Decrypt", KEY, DEV_ACCOUNT, key_policy),
        # Encryption context that one key policy reads and the other does not.
        decrypt(key_policy, SECRET),
        decrypt(key_policy, OTHER_SECRET),
        decrypt(reads_context, SECRET),
        decrypt(reads_context, OTHER_SECRET),
        decrypt(reads_context, None),
    ]
    all_facts = [facts(), facts(source_ip="198.51.100.1"), facts(region="eu-west-1")]
    memoized = PolicyAuthorizer(iam, clock, decision_limit=64)
    plain = PolicyAuthorizer(iam, clock, decision_limit=0)
    answers: set[str | None] = set()
    for step in range(600):
        request = (rng.choice(principals), rng.choice(checks), rng.choice(all_facts))
        expected = outcome(plain, request)
        assert outcome(memoized, request) == expected, (step, request)
        answers.add(expected)
        if rng.random() < 0.05:
            clock.advance(timedelta(seconds=rng.choice([0.4, 1, 30, 120])))
        if step == 300:
            iam.put_inline(
                "user",
                ADMIN,
                {"UserName": "bob", "PolicyName": "p0", "PolicyDocument": document(allow())},
            )
    assert None in answers and len(answers) > 3  # a mix of allows and denials


def test_a_session_of_a_deleted_role_never_shares_the_new_roles_policies(
    iam: IdentityService, clock: ManualClock
) -> None:
    """The compiled identities are kept per ARN and unique id: once the role of a name is
    another, the old role's session stays powerless even after a session of the new role
    had its policies compiled (which once left them under the ARN for both)."""
    new_role(iam, "Ops", document(allow()))
    old_id = iam.get_role(ADMIN, {"RoleName": "Ops"})["Role"]["RoleId"]
    iam.delete_inline("role", ADMIN, {"RoleName": "Ops", "PolicyName": "p0"})
    iam.delete_role(ADMIN, {"RoleName": "Ops"})
    new_role(iam, "Ops", document(allow()))
    new_id = iam.get_role(ADMIN, {"RoleName": "Ops"})["Role"]["RoleId"]
    assert new_id != old_id
    old = as_session("Ops", "before", unique_id=f"{old_id}:before")
    new = as_session("Ops", "after", unique_id=f"{new_id}:after")
    authorizer = PolicyAuthorizer(iam, clock, decision_limit=0)
    assert outcome(authorizer, (new, secret_check(), facts())) is None
    assert outcome(authorizer, (old, secret_check(), facts())) is not None
    assert outcome(authorizer, (new, secret_check(), facts())) is None
