"""The condition keys of KMS checks: the key resource's attributes and each operation's
request keys, with the values AWS gives them (strongroom/keys/conditions.py)."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.keys.conditions import (
    alias_check,
    create_key_request_keys,
    encryption_context_keys,
    key_check,
    key_resource_keys,
    key_use_check,
    operation_request_keys,
    re_encrypt_keys,
    request_alias_keys,
    tag_request_keys,
)
from strongroom.keys.kms import KeyRecord

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ARN = f"arn:aws:kms:us-east-1:111122223333:key/{KEY_ID}"


def record(**changes: Any) -> KeyRecord:
    values: dict[str, Any] = {
        "key_id": KEY_ID,
        "account_id": "111122223333",
        "region": "us-east-1",
        "arn": ARN,
        "description": "",
        "key_manager": "CUSTOMER",
        "state": "Enabled",
        "policy": '{"Statement": []}',
        "tags": None,
        "created_ms": 0,
        "deletion_ms": None,
        "pending_window_days": None,
        "rotation_period_days": None,
        "next_rotation_ms": None,
        "on_demand_rotation_ms": None,
    }
    return KeyRecord(**{**values, **changes})


def test_a_key_resource_has_its_tags_aliases_and_attributes() -> None:
    key = record(tags=[["team", "blue"]], aliases=("alias/a", "alias/b"))
    assert key_resource_keys(key) == {
        "aws:ResourceTag/team": ("blue",),
        "kms:ResourceAliases": ("alias/a", "alias/b"),
        "kms:KeySpec": ("SYMMETRIC_DEFAULT",),
        "kms:KeyUsage": ("ENCRYPT_DECRYPT",),
        "kms:KeyOrigin": ("AWS_KMS",),
        "kms:MultiRegion": ("false",),
    }


def test_a_key_without_aliases_has_no_resource_aliases_key() -> None:
    assert "kms:ResourceAliases" not in key_resource_keys(record())


def test_a_key_check_is_decided_by_the_key_policy_with_the_resource_keys() -> None:
    key = record(aliases=("alias/x",))
    check = key_check("kms:Decrypt", key, {"kms:CallerAccount": ("111122223333",)})
    assert (check.resource, check.resource_account, check.resource_policy) == (
        ARN,
        "111122223333",
        key.policy,
    )
    assert check.key_policy is True
    assert check.context["kms:ResourceAliases"] == ("alias/x",)
    assert check.context["kms:CallerAccount"] == ("111122223333",)


@pytest.mark.parametrize(
    "key",
    [record(), record(tags=[["team", "blue"], ["env", "prod"]], aliases=("alias/aws/x",))],
)
@pytest.mark.parametrize(
    "context", [{}, {"SecretARN": "arn:s", "SecretVersionId": "v1"}, {"b": "2", "a": "1"}]
)
@pytest.mark.parametrize("policy", [None, '{"Statement": [{"Sid": "grant"}]}'])
def test_a_key_used_on_a_callers_behalf_is_the_key_check_of_its_keys(
    key: KeyRecord, context: dict[str, str], policy: str | None
) -> None:
    """key_use_check builds in one step what key_check of the composed keys does: the same
    check, with the same condition keys in the same order (the decision memo keys on it)."""
    composed = {
        "kms:ViaService": ("secretsmanager.us-east-1.amazonaws.com",),
        "kms:CallerAccount": ("444455556666",),
        **encryption_context_keys(context),
    }
    expected = key_check("kms:Decrypt", key, composed, policy)
    built = key_use_check(
        "kms:Decrypt",
        key,
        "secretsmanager.us-east-1.amazonaws.com",
        "444455556666",
        context,
        policy,
    )
    assert built == expected
    assert list(built.context.items()) == list(expected.context.items())
    assert built.resource_policy == (policy or key.policy)
    assert ("kms:EncryptionContextKeys" in built.context) is bool(context)


def test_an_alias_check_is_on_the_alias_arn_with_no_policy() -> None:
    check = alias_check("kms:UpdateAlias", "eu-west-1", "111122223333", "alias/prod", {})
    assert check.resource == "arn:aws:kms:eu-west-1:111122223333:alias/prod"
    assert (check.resource_policy, check.key_policy) == (None, False)


@pytest.mark.parametrize(
    ("action", "ref", "expected"),
    [
        ("kms:Encrypt", "alias/app", {"kms:RequestAlias": ("alias/app",)}),
        (
            "kms:Decrypt",
            "arn:aws:kms:us-east-1:111122223333:alias/app",
            {"kms:RequestAlias": ("alias/app",)},
        ),
        ("kms:DescribeKey", KEY_ID, {}),
        ("kms:Encrypt", ARN, {}),
        ("kms:Encrypt", None, {}),
        # Not an action the reference gives kms:RequestAlias to.
        ("kms:ScheduleKeyDeletion", "alias/app", {}),
    ],
)
def test_request_alias(action: str, ref: str | None, expected: dict[str, Any]) -> None:
    assert request_alias_keys(action, ref) == expected


def test_create_key_request_keys_default_to_a_symmetric_key() -> None:
    assert create_key_request_keys({}) == {
        "kms:KeySpec": ("SYMMETRIC_DEFAULT",),
        "kms:KeyUsage": ("ENCRYPT_DECRYPT",),
        "kms:KeyOrigin": ("AWS_KMS",),
        "kms:MultiRegion": ("false",),
    }
    asked = {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC", "MultiRegion": True}
    assert create_key_request_keys(asked) == {
        "kms:KeySpec": ("HMAC_256",),
        "kms:KeyUsage": ("GENERATE_VERIFY_MAC",),
        "kms:KeyOrigin": ("AWS_KMS",),
        "kms:MultiRegion": ("true",),
    }
    assert create_key_request_keys({"CustomerMasterKeySpec": "RSA_2048"})["kms:KeySpec"] == (
        "RSA_2048",
    )


def test_create_key_carries_its_tags_and_the_lockout_bypass_only_when_given() -> None:
    keys = operation_request_keys(
        "kms:CreateKey",
        {
            "Tags": [{"TagKey": "team", "TagValue": "blue"}],
            "BypassPolicyLockoutSafetyCheck": True,
        },
    )
    assert keys["aws:RequestTag/team"] == ("blue",)
    assert keys["aws:TagKeys"] == ("team",)
    assert keys["kms:BypassPolicyLockoutSafetyCheck"] == ("true",)
    plain = operation_request_keys("kms:CreateKey", {})
    assert "kms:BypassPolicyLockoutSafetyCheck" not in plain
    assert "aws:TagKeys" not in plain


BYPASS = "kms:BypassPolicyLockoutSafetyCheck"
WINDOW = "kms:ScheduleKeyDeletionPendingWindowInDays"
ALGORITHM = "kms:EncryptionAlgorithm"


@pytest.mark.parametrize(
    ("action", "params", "key", "value"),
    [
        ("kms:PutKeyPolicy", {"BypassPolicyLockoutSafetyCheck": False}, BYPASS, "false"),
        ("kms:ScheduleKeyDeletion", {"PendingWindowInDays": 7}, WINDOW, "7"),
        ("kms:EnableKeyRotation", {"RotationPeriodInDays": 90}, "kms:RotationPeriodInDays", "90"),
        ("kms:Encrypt", {}, ALGORITHM, "SYMMETRIC_DEFAULT"),
        ("kms:Decrypt", {"EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}, ALGORITHM, "RSAES_OAEP_SHA_1"),
        ("kms:GenerateDataKey", {}, ALGORITHM, "SYMMETRIC_DEFAULT"),
        ("kms:ReEncryptFrom", {"SourceEncryptionAlgorithm": "SM2PKE"}, ALGORITHM, "SM2PKE"),
        (
            "kms:ReEncryptTo",
            {"SourceEncryptionAlgorithm": "SM2PKE"},
            ALGORITHM,
            "SYMMETRIC_DEFAULT",
        ),
    ],
)
def test_request_members_become_condition_keys(
    action: str, params: dict[str, Any], key: str, value: str
) -> None:
    assert operation_request_keys(action, params)[key] == (value,)


@pytest.mark.parametrize(
    ("action", "absent"),
    [
        ("kms:ScheduleKeyDeletion", "kms:ScheduleKeyDeletionPendingWindowInDays"),
        ("kms:EnableKeyRotation", "kms:RotationPeriodInDays"),
        ("kms:PutKeyPolicy", "kms:BypassPolicyLockoutSafetyCheck"),
        ("kms:DescribeKey", "kms:EncryptionAlgorithm"),
    ],
)
def test_members_not_given_are_absent(action: str, absent: str) -> None:
    assert absent not in operation_request_keys(action, {})


def test_tag_keys_of_tag_and_untag() -> None:
    tags = {"Tags": [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}]}
    assert tag_request_keys("TagResource", tags) == {
        "aws:RequestTag/a": ("1",),
        "aws:RequestTag/b": ("2",),
        "aws:TagKeys": ("a", "b"),
    }
    assert tag_request_keys("UntagResource", {"TagKeys": ["a"]}) == {"aws:TagKeys": ("a",)}
    assert tag_request_keys("ListResourceTags", tags) == {}


def test_re_encrypt_on_same_key() -> None:
    first, second = record(), record(key_id="other")
    assert re_encrypt_keys(first, first) == {"kms:ReEncryptOnSameKey": ("true",)}
    assert re_encrypt_keys(first, second) == {"kms:ReEncryptOnSameKey": ("false",)}
    assert re_encrypt_keys(None, first) == {}
