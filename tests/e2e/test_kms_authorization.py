"""KMS and Secrets Manager authorization on the keys' and aliases' own attributes, end to
end: narrow IAM users, boto3, a real server, the audit trail.

AWS sources for the behaviour asserted here:
- "Controlling access to aliases" (KMS developer guide): CreateAlias, UpdateAlias and
  DeleteAlias need the permission on the alias (an IAM policy: aliases have no policy)
  and on every KMS key affected; UpdateAlias on the current and the new target key.
- "Use aliases to control access to KMS keys": kms:ResourceAliases lists the aliases
  associated with the key (multivalued: ForAnyValue/ForAllValues).
- The Service Authorization Reference for KMS: the key resource's condition keys
  (aws:ResourceTag, kms:KeyOrigin, KeySpec, KeyUsage, MultiRegion, ResourceAliases) and
  each action's request keys (aws:RequestTag, aws:TagKeys, kms:EncryptionAlgorithm,
  ReEncryptOnSameKey, ScheduleKeyDeletionPendingWindowInDays, RotationPeriodInDays,
  BypassPolicyLockoutSafetyCheck).
- CreateKey's "Required permissions": kms:TagResource (IAM policy) to use Tags.
- PutKeyPolicy/CreateKey: without BypassPolicyLockoutSafetyCheck the policy must let the
  caller make a later PutKeyPolicy request; refused with
  MalformedPolicyDocumentException "The new key policy will not allow you to update the
  key policy in the future." (the text AWS answers, quoted in
  trussworks/terraform-aws-cloudtrail#178 and aws-samples/rds-snapshot-export-to-s3-pipeline#8,
  whose maintainers note the caller's IAM policies count when the key policy delegates).
- The Secrets Manager reference: secretsmanager:KmsKeyArn on CreateSecret/UpdateSecret;
  BatchGetSecretValue with Filters also needs secretsmanager:ListSecrets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_enforcement import (
    ADMIN_ARN,
    Deployment,
    User,
    allow,
    deny,
    key_policy,
    make_user,
    policy,
    principal_allows,
    start,
    unique,
)

LOCKOUT = "The new key policy will not allow you to update the key policy in the future."
MALFORMED = "MalformedPolicyDocumentException"
ROOT_STATEMENT = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
    "Action": "kms:*",
    "Resource": "*",
}


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start(tmp_path_factory.mktemp("kms-authorization"))
    yield deployment
    deployment.server.stop()


def new_key(dep: Deployment, **extra: Any) -> dict[str, Any]:
    """A customer managed key (default policy: IAM policies decide) made by the admin."""
    metadata: dict[str, Any] = dep.kms.create_key(**extra)["KeyMetadata"]
    return metadata


def alias_target(dep: Deployment, alias: str) -> str | None:
    for page in dep.kms.get_paginator("list_aliases").paginate():
        for entry in page["Aliases"]:
            if entry["AliasName"] == alias:
                return str(entry["TargetKeyId"])
    return None


def key_ids(dep: Deployment) -> set[str]:
    return {
        key["KeyId"]
        for page in dep.kms.get_paginator("list_keys").paginate()
        for key in page["Keys"]
    }


def tags_of(dep: Deployment, key_id: str) -> dict[str, str]:
    listed = dep.kms.list_resource_tags(KeyId=key_id)["Tags"]
    return {tag["TagKey"]: tag["TagValue"] for tag in listed}


def policy_of(dep: Deployment, key_id: str) -> str:
    return str(dep.kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])


def alias_resource(alias: str) -> str:
    return f"arn:aws:kms:us-east-1:000000000000:{alias}"


# Item 8: aliases are resources ----------------------------------------------------------


def test_a_sandbox_user_cannot_repoint_the_production_alias(dep: Deployment) -> None:
    prod, sandbox = new_key(dep), new_key(dep)
    prod_alias, sandbox_alias = unique("alias/prod"), unique("alias/sandbox")
    dep.kms.create_alias(AliasName=prod_alias, TargetKeyId=prod["KeyId"])
    user = make_user(
        dep,
        policy(
            allow(
                ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
                [sandbox["Arn"], alias_resource("alias/sandbox-*")],
            )
        ),
    )
    kms = user.client("kms")
    # The attack: the alias is not the user's, whatever key it is pointed at.
    dep.refused(kms.update_alias, AliasName=prod_alias, TargetKeyId=sandbox["KeyId"])
    dep.refused(kms.delete_alias, AliasName=prod_alias)
    dep.refused(kms.create_alias, AliasName=unique("alias/prod"), TargetKeyId=sandbox["KeyId"])
    assert alias_target(dep, prod_alias) == prod["KeyId"]
    # Its own alias on its own key: allowed; pointed at a key it may not touch: refused.
    kms.create_alias(AliasName=sandbox_alias, TargetKeyId=sandbox["KeyId"])
    dep.refused(kms.update_alias, AliasName=sandbox_alias, TargetKeyId=prod["KeyId"])
    dep.refused(kms.create_alias, AliasName=unique("alias/sandbox"), TargetKeyId=prod["KeyId"])
    assert alias_target(dep, sandbox_alias) == sandbox["KeyId"]
    kms.delete_alias(AliasName=sandbox_alias)
    assert alias_target(dep, sandbox_alias) is None


def test_update_alias_needs_the_key_the_alias_points_to_now(dep: Deployment) -> None:
    prod, sandbox = new_key(dep), new_key(dep)
    alias = unique("alias/shared")
    dep.kms.create_alias(AliasName=alias, TargetKeyId=prod["KeyId"])
    # Every alias, but only the sandbox key: taking an alias away from prod is refused.
    user = make_user(
        dep, policy(allow(["kms:UpdateAlias", "kms:DeleteAlias"], [sandbox["Arn"], "*"]))
    )
    narrow = make_user(
        dep,
        policy(
            allow(
                ["kms:UpdateAlias", "kms:DeleteAlias"], [sandbox["Arn"], alias_resource("alias/*")]
            )
        ),
    )
    dep.refused(narrow.client("kms").update_alias, AliasName=alias, TargetKeyId=sandbox["KeyId"])
    dep.refused(narrow.client("kms").delete_alias, AliasName=alias)
    assert alias_target(dep, alias) == prod["KeyId"]
    # With both keys (Resource "*"), the same change is allowed.
    user.client("kms").update_alias(AliasName=alias, TargetKeyId=sandbox["KeyId"])
    assert alias_target(dep, alias) == sandbox["KeyId"]


def test_a_key_policy_cannot_grant_an_alias(dep: Deployment) -> None:
    # The key policy names the user for everything, but the alias is governed by IAM
    # policies only: with none, the alias operation is refused.
    user = make_user(dep, policy(allow("kms:DescribeKey", "*")))
    key = new_key(
        dep,
        Policy=key_policy(
            principal_allows(ADMIN_ARN, "kms:*", "admin"),
            principal_allows(user.arn, "kms:*", "user"),
        ),
    )
    alias = unique("alias/by-key-policy")
    dep.refused(user.client("kms").create_alias, AliasName=alias, TargetKeyId=key["KeyId"])
    assert alias_target(dep, alias) is None
    dep.iam.put_user_policy(
        UserName=user.name,
        PolicyName="alias",
        PolicyDocument=policy(allow("kms:CreateAlias", alias_resource(alias))),
    )
    user.client("kms").create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    assert alias_target(dep, alias) == key["KeyId"]


# Item 9: key attributes as resource condition keys ----------------------------------------


def test_a_deny_on_resource_aliases_stops_decrypt(dep: Deployment) -> None:
    payments, other = new_key(dep), new_key(dep)
    payments_alias = unique("alias/payments")
    dep.kms.create_alias(AliasName=payments_alias, TargetKeyId=payments["KeyId"])
    dep.kms.create_alias(AliasName=unique("alias/other"), TargetKeyId=other["KeyId"])
    user = make_user(
        dep,
        policy(
            allow(["kms:Encrypt", "kms:Decrypt"]),
            deny(
                "kms:Decrypt",
                Condition={"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/payments-*"}},
            ),
        ),
    )
    kms = user.client("kms")
    paid = kms.encrypt(KeyId=payments["KeyId"], Plaintext=b"card")["CiphertextBlob"]
    fine = kms.encrypt(KeyId=other["KeyId"], Plaintext=b"other")["CiphertextBlob"]
    dep.refused(kms.decrypt, CiphertextBlob=paid)
    assert kms.decrypt(CiphertextBlob=fine)["Plaintext"] == b"other"
    # The alias is an attribute of the key now: once it is gone, so is the denial.
    dep.kms.delete_alias(AliasName=payments_alias)
    assert kms.decrypt(CiphertextBlob=paid)["Plaintext"] == b"card"
    dep.kms.create_alias(AliasName=unique("alias/payments"), TargetKeyId=other["KeyId"])
    dep.refused(kms.decrypt, CiphertextBlob=fine)


def test_a_deny_on_resource_aliases_reaches_secrets_under_the_key(dep: Deployment) -> None:
    # Secrets Manager uses the key on the caller's behalf: the same key check applies.
    payments, other = new_key(dep), new_key(dep)
    dep.kms.create_alias(AliasName=unique("alias/payments"), TargetKeyId=payments["KeyId"])
    paid = dep.sm.create_secret(Name=unique("paid"), SecretString="card", KmsKeyId=payments["Arn"])
    fine = dep.sm.create_secret(Name=unique("fine"), SecretString="other", KmsKeyId=other["Arn"])
    user = make_user(
        dep,
        policy(
            allow(["secretsmanager:GetSecretValue", "kms:Decrypt"]),
            deny(
                "kms:Decrypt",
                Condition={"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/payments-*"}},
            ),
        ),
    )
    sm = user.client()
    dep.refused(sm.get_secret_value, SecretId=paid["ARN"], message="Access to KMS is not allowed")
    assert sm.get_secret_value(SecretId=fine["ARN"])["SecretString"] == "other"


def test_an_allow_on_resource_aliases_grants_only_the_project_keys(dep: Deployment) -> None:
    alpha, beta = new_key(dep), new_key(dep)
    dep.kms.create_alias(AliasName=unique("alias/alpha"), TargetKeyId=alpha["KeyId"])
    user = make_user(
        dep,
        policy(
            allow(
                "kms:DescribeKey",
                Condition={"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/alpha-*"}},
            )
        ),
    )
    kms = user.client("kms")
    assert kms.describe_key(KeyId=alpha["KeyId"])["KeyMetadata"]["Arn"] == alpha["Arn"]
    dep.refused(kms.describe_key, KeyId=beta["KeyId"])


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("kms:KeySpec", "SYMMETRIC_DEFAULT", True),
        ("kms:KeySpec", "RSA_2048", False),
        ("kms:KeyUsage", "ENCRYPT_DECRYPT", True),
        ("kms:KeyUsage", "SIGN_VERIFY", False),
        ("kms:KeyOrigin", "AWS_KMS", True),
        ("kms:KeyOrigin", "EXTERNAL", False),
    ],
)
def test_key_attribute_conditions(dep: Deployment, key: str, value: str, allowed: bool) -> None:
    target = new_key(dep)
    user = make_user(dep, policy(allow("kms:Encrypt", Condition={"StringEquals": {key: value}})))
    kms = user.client("kms")
    if allowed:
        assert kms.encrypt(KeyId=target["KeyId"], Plaintext=b"x")["KeyId"] == target["Arn"]
    else:
        dep.refused(kms.encrypt, KeyId=target["KeyId"], Plaintext=b"x")


@pytest.mark.parametrize(("multi_region", "allowed"), [("false", True), ("true", False)])
def test_multi_region_condition(dep: Deployment, multi_region: str, allowed: bool) -> None:
    target = new_key(dep)
    condition = {"Bool": {"kms:MultiRegion": multi_region}}
    user = make_user(dep, policy(allow("kms:DescribeKey", Condition=condition)))
    kms = user.client("kms")
    if allowed:
        assert kms.describe_key(KeyId=target["KeyId"])["KeyMetadata"]["MultiRegion"] is False
    else:
        dep.refused(kms.describe_key, KeyId=target["KeyId"])


# Item 9: request condition keys --------------------------------------------------------


def test_encryption_algorithm_condition(dep: Deployment) -> None:
    target = new_key(dep)
    symmetric = {"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}
    user = make_user(
        dep,
        policy(allow(["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], Condition=symmetric)),
    )
    kms = user.client("kms")
    # No algorithm in the request: the default, SYMMETRIC_DEFAULT, is the key's value.
    blob = kms.encrypt(KeyId=target["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    assert len(kms.generate_data_key(KeyId=target["KeyId"], KeySpec="AES_256")["Plaintext"]) == 32
    rsa = {"StringEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}
    other = make_user(dep, policy(allow(["kms:Encrypt", "kms:Decrypt"], Condition=rsa)))
    dep.refused(other.client("kms").encrypt, KeyId=target["KeyId"], Plaintext=b"x")
    dep.refused(other.client("kms").decrypt, CiphertextBlob=blob)


def test_re_encrypt_on_same_key_condition(dep: Deployment) -> None:
    first, second = new_key(dep), new_key(dep)
    same_only = {"Bool": {"kms:ReEncryptOnSameKey": "true"}}
    user = make_user(dep, policy(allow("kms:ReEncrypt*", Condition=same_only)))
    blob = dep.kms.encrypt(KeyId=first["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    kms = user.client("kms")
    again = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=first["KeyId"])
    assert again["KeyId"] == first["Arn"]
    dep.refused(kms.re_encrypt, CiphertextBlob=blob, DestinationKeyId=second["KeyId"])


def test_request_tags_on_create_key_and_tag_resource_is_needed(dep: Deployment) -> None:
    blue = {"StringEquals": {"aws:RequestTag/team": "blue"}}
    user = make_user(dep, policy(allow("kms:CreateKey"), allow("kms:TagResource", Condition=blue)))
    kms = user.client("kms")
    created = kms.create_key(Tags=[{"TagKey": "team", "TagValue": "blue"}])["KeyMetadata"]
    assert tags_of(dep, created["KeyId"]) == {"team": "blue"}
    before = key_ids(dep)
    dep.refused(kms.create_key, Tags=[{"TagKey": "team", "TagValue": "red"}])
    assert key_ids(dep) == before
    # kms:CreateKey alone creates keys, but not tagged ones.
    untagged_only = make_user(dep, policy(allow("kms:CreateKey")))
    dep.refused(
        untagged_only.client("kms").create_key, Tags=[{"TagKey": "team", "TagValue": "blue"}]
    )
    assert key_ids(dep) == before
    plain = untagged_only.client("kms").create_key()["KeyMetadata"]
    assert key_ids(dep) == before | {plain["KeyId"]}
    # A CreateKey allowed only for a key spec and usage: the request's (default) values.
    spec = {"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT", "kms:KeyUsage": "ENCRYPT_DECRYPT"}}
    spec_user = make_user(dep, policy(allow("kms:CreateKey", Condition=spec)))
    assert spec_user.client("kms").create_key()["KeyMetadata"]["KeySpec"] == "SYMMETRIC_DEFAULT"
    hmac = make_user(
        dep, policy(allow("kms:CreateKey", Condition={"StringEquals": {"kms:KeySpec": "HMAC_256"}}))
    )
    after = key_ids(dep)
    dep.refused(hmac.client("kms").create_key)
    assert key_ids(dep) == after


def test_tag_keys_and_request_tags_on_tag_and_untag(dep: Deployment) -> None:
    target = new_key(dep, Tags=[{"TagKey": "owner", "TagValue": "ops"}])
    only_team = {"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}
    user = make_user(
        dep,
        policy(
            allow(["kms:TagResource", "kms:UntagResource"], Condition=only_team),
            deny("kms:TagResource", Condition={"StringEquals": {"aws:RequestTag/team": "root"}}),
        ),
    )
    kms = user.client("kms")
    kms.tag_resource(KeyId=target["KeyId"], Tags=[{"TagKey": "team", "TagValue": "blue"}])
    assert tags_of(dep, target["KeyId"]) == {"owner": "ops", "team": "blue"}
    dep.refused(
        kms.tag_resource, KeyId=target["KeyId"], Tags=[{"TagKey": "owner", "TagValue": "me"}]
    )
    dep.refused(
        kms.tag_resource, KeyId=target["KeyId"], Tags=[{"TagKey": "team", "TagValue": "root"}]
    )
    dep.refused(kms.untag_resource, KeyId=target["KeyId"], TagKeys=["owner"])
    assert tags_of(dep, target["KeyId"]) == {"owner": "ops", "team": "blue"}
    kms.untag_resource(KeyId=target["KeyId"], TagKeys=["team"])
    assert tags_of(dep, target["KeyId"]) == {"owner": "ops"}


def test_pending_window_condition(dep: Deployment) -> None:
    target = new_key(dep)
    at_least_21 = {"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "21"}}
    user = make_user(dep, policy(allow("kms:ScheduleKeyDeletion", Condition=at_least_21)))
    kms = user.client("kms")
    dep.refused(kms.schedule_key_deletion, KeyId=target["KeyId"], PendingWindowInDays=7)
    assert dep.kms.describe_key(KeyId=target["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    scheduled = kms.schedule_key_deletion(KeyId=target["KeyId"], PendingWindowInDays=21)
    assert scheduled["PendingWindowInDays"] == 21
    dep.kms.cancel_key_deletion(KeyId=target["KeyId"])


def test_rotation_period_condition(dep: Deployment) -> None:
    target = new_key(dep)
    short = {"NumericLessThan": {"kms:RotationPeriodInDays": "180"}}
    user = make_user(
        dep, policy(allow("kms:EnableKeyRotation"), deny("kms:EnableKeyRotation", Condition=short))
    )
    kms = user.client("kms")
    dep.refused(kms.enable_key_rotation, KeyId=target["KeyId"], RotationPeriodInDays=90)
    status = dep.kms.get_key_rotation_status(KeyId=target["KeyId"])
    assert status["KeyRotationEnabled"] is False
    kms.enable_key_rotation(KeyId=target["KeyId"], RotationPeriodInDays=365)
    status = dep.kms.get_key_rotation_status(KeyId=target["KeyId"])
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)


def test_bypass_policy_lockout_condition(dep: Deployment) -> None:
    target = new_key(dep)
    bypass = {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}
    user = make_user(
        dep, policy(allow("kms:PutKeyPolicy"), deny("kms:PutKeyPolicy", Condition=bypass))
    )
    kms = user.client("kms")
    before = policy_of(dep, target["KeyId"])
    keeps_root = key_policy(ROOT_STATEMENT, principal_allows(user.arn, "kms:Encrypt", "user"))
    dep.refused(
        kms.put_key_policy,
        KeyId=target["KeyId"],
        PolicyName="default",
        Policy=keeps_root,
        BypassPolicyLockoutSafetyCheck=True,
    )
    assert policy_of(dep, target["KeyId"]) == before
    kms.put_key_policy(KeyId=target["KeyId"], PolicyName="default", Policy=keeps_root)
    assert json.loads(policy_of(dep, target["KeyId"])) == json.loads(keeps_root)


# The key policy lockout safety check ------------------------------------------------------


def test_put_key_policy_refuses_a_policy_that_locks_the_caller_out(dep: Deployment) -> None:
    target = new_key(dep)
    stranger = make_user(dep, policy(allow("kms:DescribeKey")))
    locks_out = key_policy(principal_allows(stranger.arn, "kms:*", "someone-else"))
    before = policy_of(dep, target["KeyId"])
    dep.refused(
        dep.kms.put_key_policy,
        KeyId=target["KeyId"],
        PolicyName="default",
        Policy=locks_out,
        code=MALFORMED,
        message=LOCKOUT,
    )
    assert policy_of(dep, target["KeyId"]) == before
    # Asked for on purpose, the lockout is the caller's to make.
    dep.kms.put_key_policy(
        KeyId=target["KeyId"],
        PolicyName="default",
        Policy=locks_out,
        BypassPolicyLockoutSafetyCheck=True,
    )
    # The new policy is in force: the admin may not even read it back.
    dep.refused(dep.kms.get_key_policy, KeyId=target["KeyId"], PolicyName="default")


def test_create_key_refuses_a_policy_that_locks_the_caller_out(dep: Deployment) -> None:
    stranger = make_user(dep, policy(allow("kms:DescribeKey")))
    locks_out = key_policy(principal_allows(stranger.arn, "kms:*", "someone-else"))
    before = key_ids(dep)
    dep.refused(dep.kms.create_key, Policy=locks_out, code=MALFORMED, message=LOCKOUT)
    assert key_ids(dep) == before
    created = dep.kms.create_key(Policy=locks_out, BypassPolicyLockoutSafetyCheck=True)
    assert key_ids(dep) == before | {created["KeyMetadata"]["KeyId"]}


def test_the_lockout_check_counts_the_callers_iam_policies(dep: Deployment) -> None:
    # A policy that delegates to the account lets the caller back in only if its own IAM
    # policies allow kms:PutKeyPolicy: a creator with kms:CreateKey alone is refused.
    creator = make_user(dep, policy(allow("kms:CreateKey")))
    delegating = key_policy(ROOT_STATEMENT)
    before = key_ids(dep)
    dep.refused(
        creator.client("kms").create_key, Policy=delegating, code=MALFORMED, message=LOCKOUT
    )
    assert key_ids(dep) == before
    admin_of_keys = make_user(dep, policy(allow(["kms:CreateKey", "kms:PutKeyPolicy"])))
    created = admin_of_keys.client("kms").create_key(Policy=delegating)["KeyMetadata"]
    assert json.loads(policy_of(dep, created["KeyId"])) == json.loads(delegating)
    # The same user dropping the account statement would lock itself out.
    dep.refused(
        admin_of_keys.client("kms").put_key_policy,
        KeyId=created["KeyId"],
        PolicyName="default",
        Policy=key_policy(principal_allows(ADMIN_ARN, "kms:*", "admin")),
        code=MALFORMED,
        message=LOCKOUT,
    )
    assert json.loads(policy_of(dep, created["KeyId"])) == json.loads(delegating)


# Item 10: Secrets Manager -----------------------------------------------------------------


def kms_key_user(dep: Deployment, key_arn: str) -> User:
    only_key = {"StringEquals": {"secretsmanager:KmsKeyArn": key_arn}}
    return make_user(
        dep,
        policy(
            allow(
                ["secretsmanager:CreateSecret", "secretsmanager:UpdateSecret"], Condition=only_key
            ),
            allow(["secretsmanager:DescribeSecret", "kms:*"]),
        ),
    )


def test_kms_key_arn_condition_on_create_secret(dep: Deployment) -> None:
    approved, other = new_key(dep), new_key(dep)
    alias = unique("alias/approved")
    dep.kms.create_alias(AliasName=alias, TargetKeyId=approved["KeyId"])
    sm = kms_key_user(dep, approved["Arn"]).client()
    # Named by alias or key id, the key is compared by its ARN.
    by_alias = sm.create_secret(Name=unique("kmsarn"), SecretString="v", KmsKeyId=alias)
    assert sm.describe_secret(SecretId=by_alias["ARN"])["ARN"] == by_alias["ARN"]
    sm.create_secret(Name=unique("kmsarn"), SecretString="v", KmsKeyId=approved["KeyId"])
    name = unique("kmsarn")
    dep.refused(sm.create_secret, Name=name, SecretString="v", KmsKeyId=other["Arn"])
    dep.refused(sm.create_secret, Name=unique("kmsarn"), SecretString="v")  # no key named
    assert dep.sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"] == []


def test_kms_key_arn_condition_on_update_secret(dep: Deployment) -> None:
    approved, other = new_key(dep), new_key(dep)
    arn = dep.sm.create_secret(Name=unique("kmsarn-up"), SecretString="v")["ARN"]
    sm = kms_key_user(dep, approved["Arn"]).client()
    dep.refused(sm.update_secret, SecretId=arn, KmsKeyId=other["KeyId"])
    assert "KmsKeyId" not in dep.sm.describe_secret(SecretId=arn)
    sm.update_secret(SecretId=arn, KmsKeyId=approved["Arn"])
    assert dep.sm.describe_secret(SecretId=arn)["KmsKeyId"] == approved["Arn"]


def test_batch_get_with_filters_needs_list_secrets(dep: Deployment) -> None:
    name = unique("batch-filter")
    arn = dep.sm.create_secret(Name=name, SecretString="filtered")["ARN"]
    reader = ["secretsmanager:BatchGetSecretValue", "secretsmanager:GetSecretValue"]
    no_list = make_user(dep, policy(allow(reader)))
    filters = [{"Key": "name", "Values": [name]}]
    dep.refused(no_list.client().batch_get_secret_value, Filters=filters)
    by_id = no_list.client().batch_get_secret_value(SecretIdList=[arn])
    assert [v["SecretString"] for v in by_id["SecretValues"]] == ["filtered"]
    lister = make_user(dep, policy(allow([*reader, "secretsmanager:ListSecrets"])))
    found = lister.client().batch_get_secret_value(Filters=filters)
    assert [v["ARN"] for v in found["SecretValues"]] == [arn]
