"""The pure rules of KMS grants: constraints against an encryption context, what a grantee
may pass on, whom a grant names, and the key policy a grant adds to."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from strongroom.keys.kms_grants import (
    at_least_as_strict,
    context_satisfies,
    grantee_matches,
    with_grants,
)
from strongroom.policy.document import parse_policy
from strongroom.types import Principal

SUBSET = {"EncryptionContextSubset": {"app": "billing"}}
EQUALS = {"EncryptionContextEquals": {"app": "billing", "stage": "prod"}}


@pytest.mark.parametrize(
    ("constraints", "context", "met"),
    [
        (None, None, True),
        (None, {"any": "thing"}, True),
        (SUBSET, {"app": "billing"}, True),
        (SUBSET, {"app": "billing", "more": "x"}, True),
        (SUBSET, None, False),
        (SUBSET, {"app": "Billing"}, False),  # values compared exactly
        (SUBSET, {"APP": "billing"}, False),  # keys too
        (EQUALS, {"stage": "prod", "app": "billing"}, True),
        (EQUALS, {"app": "billing"}, False),
        (EQUALS, {"app": "billing", "stage": "prod", "more": "x"}, False),
        ({"SourceArn": "arn:aws:s3:::bucket"}, None, False),  # never met: fail closed
    ],
)
def test_context_satisfies(
    constraints: Mapping[str, Any] | None, context: dict[str, str] | None, met: bool
) -> None:
    assert context_satisfies(constraints, context) is met


@pytest.mark.parametrize(
    ("parent", "child", "kept"),
    [
        (None, None, True),
        (None, SUBSET, True),
        (SUBSET, None, False),
        (SUBSET, SUBSET, True),
        (SUBSET, {"EncryptionContextSubset": {"app": "billing", "x": "y"}}, True),
        (SUBSET, {"EncryptionContextEquals": {"app": "billing"}}, True),
        (SUBSET, {"EncryptionContextSubset": {"app": "hr"}}, False),
        (EQUALS, EQUALS, True),
        (EQUALS, {"EncryptionContextEquals": {"app": "billing"}}, False),
        (EQUALS, {"EncryptionContextSubset": EQUALS["EncryptionContextEquals"]}, False),
    ],
)
def test_a_derived_grant_keeps_its_parents_constraints(
    parent: Mapping[str, Any] | None, child: Mapping[str, Any] | None, kept: bool
) -> None:
    assert at_least_as_strict(parent, child) is kept


def test_a_grant_names_a_user_or_a_role_by_id_and_others_by_arn() -> None:
    user = Principal(
        "111122223333", "arn:aws:iam::111122223333:user/ana", "AKIA1", unique_id="AIDAANA"
    )
    session = Principal(
        "111122223333",
        "arn:aws:sts::111122223333:assumed-role/billing/worker",
        "ASIA1",
        kind="assumed-role",
        identity_arn="arn:aws:iam::111122223333:role/billing",
        unique_id="AROABILLING:worker",
    )
    federated = Principal(
        "111122223333",
        "arn:aws:sts::111122223333:federated-user/ana",
        "ASIA2",
        kind="federated-user",
        identity_arn="arn:aws:iam::111122223333:user/ana",
        unique_id="111122223333:ana",
    )
    root = Principal("111122223333", "arn:aws:iam::111122223333:root", "AKIA2", kind="root")
    # A user by its id; a role's id names every session of it.
    assert grantee_matches("AIDAANA", user)
    assert not grantee_matches("AIDAAN", user)
    assert not grantee_matches(None, user)
    assert grantee_matches("AROABILLING", session)
    assert not grantee_matches("AROABILLING", user)
    # A user or role ARN names nobody (a grant the migration found no entity for), not even
    # the entity of that name now.
    assert not grantee_matches("arn:aws:iam::111122223333:user/ana", user)
    assert not grantee_matches("arn:aws:iam::111122223333:role/billing", session)
    assert not grantee_matches("arn:aws:iam::111122223333:user/ana", federated)
    assert not grantee_matches("AIDAANA", federated)  # its id is <account>:<name>
    # The account root, a role session and a federated user by ARN.
    assert grantee_matches("arn:aws:sts::111122223333:assumed-role/billing/worker", session)
    assert grantee_matches("arn:aws:sts::111122223333:federated-user/ana", federated)
    assert grantee_matches("arn:aws:iam::111122223333:root", root)
    assert not grantee_matches("arn:aws:iam::111122223333:root", session)
    assert not grantee_matches("111122223333", root)


def test_with_grants_adds_one_allow_and_keeps_the_key_policy() -> None:
    key_policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"},
        }
    )
    added = json.loads(with_grants(key_policy, "Decrypt"))
    assert added["Version"] == "2012-10-17"
    deny, allow = added["Statement"]
    assert deny["Effect"] == "Deny"
    assert allow == {
        "Sid": "AllowedByGrant",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    parse_policy(json.dumps(added), kind="key")  # still a valid key policy
