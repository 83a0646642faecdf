"""Issue 22, KMS items 8, 9, 10, 12 and 13, end to end: a real server, boto3, narrow IAM
users, the audit trail. Every refusal is checked for AWS's code (and text where AWS has
one on record) and for having changed nothing.

AWS behaviour asserted here, with where it is on record:
- A key exists in one region. A key ARN of another region answers NotFoundException
  "Invalid arn <region>" (the text KMS answers, quoted in pulumi/pulumi#17022 and
  nakedible/openssl-engine-kms#1).
- A ciphertext whose key does not exist, is in another region, or is not the caller's
  answers AccessDeniedException "The ciphertext refers to a customer master key that does
  not exist, does not exist in this region, or you are not allowed to access." (quoted in
  aws/aws-encryption-sdk-javascript#1005 and Droplr/aws-env#29).
- DryRun (KMS developer guide, "Testing your permissions"): DryRunOperationException when
  the call would succeed, the call's own error otherwise; nothing is done.
- CreateAlias/UpdateAlias: "The KMS key must be in the same AWS account and Region as the
  alias"; customer managed keys only (CreateAlias, UpdateAlias: TargetKeyId).
- Grants (KMS developer guide, "Grants in AWS KMS", "Grant constraints", "Retiring and
  revoking grants"): a grant allows its grantee principal the listed operations without a
  key policy statement; EncryptionContextEquals/Subset constrain them; the retiring
  principal, and the grantee when the grant lists RetireGrant, may retire it; RevokeGrant
  is authorized by policy; a grantee with CreateGrant passes on no more than it has.
- The key state table ("Key states of AWS KMS keys"): PutKeyPolicy and GetKeyRotationStatus
  work on a key pending deletion; UpdateKeyDescription does not.
- ListAliases lists the predefined aliases of AWS managed keys without a TargetKeyId
  before the key is first used.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws import ACCOUNT, body
from tests.e2e.test_enforcement import (
    ADMIN_ARN,
    KMS_NOT_ALLOWED,
    Deployment,
    User,
    allow,
    deny,
    make_user,
    member_account_iam,
    policy,
    start,
    unique,
)

EAST, WEST = "us-east-1", "us-west-2"
UNKNOWN_CIPHERTEXT = (
    "The ciphertext refers to a customer master key that does not exist, does not exist in "
    "this region, or you are not allowed to access."
)
DRY_RUN = "DryRunOperationException"


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start(tmp_path_factory.mktemp("kms-regions-grants"))
    yield deployment
    deployment.server.stop()


def kms_in(dep: Deployment, region: str, user: User | None = None) -> Any:
    if user is None:
        return dep.server.client("kms", region)
    return dep.server.client(
        "kms", region, aws_access_key_id=user.key_id, aws_secret_access_key=user.secret
    )


def described(kms: Any, key_id: str) -> dict[str, Any]:
    metadata: dict[str, Any] = body(kms.describe_key(KeyId=key_id))["KeyMetadata"]
    return metadata


def grants_of(dep: Deployment, key_id: str) -> list[dict[str, Any]]:
    grants: list[dict[str, Any]] = dep.kms.list_grants(KeyId=key_id)["Grants"]
    return grants


# Item 8: keys are regional ----------------------------------------------------------------


def test_a_key_of_another_region_cannot_be_used_described_or_changed(dep: Deployment) -> None:
    west, east = kms_in(dep, WEST), kms_in(dep, EAST)
    key = west.create_key(Description="west")["KeyMetadata"]
    alias = f"alias/{unique('west')}"
    west.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    blob = west.encrypt(KeyId=key["Arn"], Plaintext=b"west data")["CiphertextBlob"]
    before = described(west, key["Arn"])
    key_policy = west.get_key_policy(KeyId=key["KeyId"])["Policy"]
    invalid = f"Invalid arn {WEST}"
    alias_arn = f"arn:aws:kms:{WEST}:{ACCOUNT}:{alias}"
    for ref in (key["Arn"], alias_arn):
        dep.refused(east.describe_key, KeyId=ref, code="NotFoundException", message=invalid)
        dep.refused(
            east.encrypt, KeyId=ref, Plaintext=b"x", code="NotFoundException", message=invalid
        )
    dep.refused(east.disable_key, KeyId=key["Arn"], code="NotFoundException", message=invalid)
    dep.refused(
        east.schedule_key_deletion,
        KeyId=key["Arn"],
        PendingWindowInDays=7,
        code="NotFoundException",
        message=invalid,
    )
    dep.refused(
        east.put_key_policy,
        KeyId=key["Arn"],
        PolicyName="default",
        Policy=policy(allow("kms:*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})),
        BypassPolicyLockoutSafetyCheck=True,
        code="NotFoundException",
    )
    # The bare key id names a key of the caller's region: there is none.
    dep.refused(east.describe_key, KeyId=key["KeyId"], code="NotFoundException")
    # Its ciphertext decrypts only in its region.
    dep.refused(
        east.decrypt, CiphertextBlob=blob, code="AccessDeniedException", message=UNKNOWN_CIPHERTEXT
    )
    dep.refused(
        east.re_encrypt,
        CiphertextBlob=blob,
        DestinationKeyId=east.create_key()["KeyMetadata"]["KeyId"],
        code="AccessDeniedException",
        message=UNKNOWN_CIPHERTEXT,
    )
    # Nothing changed, and in its own region the key works.
    assert described(west, key["Arn"]) == before
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"west data"
    assert west.get_key_policy(KeyId=key["KeyId"])["Policy"] == key_policy


def test_secrets_manager_refuses_a_kms_key_of_another_region(dep: Deployment) -> None:
    west_key = kms_in(dep, WEST).create_key()["KeyMetadata"]
    east_key = kms_in(dep, EAST).create_key()["KeyMetadata"]
    sm = dep.sm
    name = unique("regional")
    dep.refused(
        sm.create_secret,
        Name=name,
        SecretString="v",
        KmsKeyId=west_key["Arn"],
        code="InvalidParameterException",
        message=f"The operation failed because of an invalid KMS key: Invalid arn {WEST}",
    )
    with pytest.raises(ClientError) as missing:
        sm.describe_secret(SecretId=name)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # The same request with a key of the secret's region is accepted.
    arn = sm.create_secret(Name=name, SecretString="v", KmsKeyId=east_key["Arn"])["ARN"]
    dep.refused(
        sm.update_secret,
        SecretId=arn,
        KmsKeyId=west_key["Arn"],
        code="InvalidParameterException",
    )
    assert sm.describe_secret(SecretId=arn)["KmsKeyId"] == east_key["Arn"]
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "v"


def test_a_deny_on_requested_region_is_no_longer_bypassed(dep: Deployment) -> None:
    not_west = {"StringEquals": {"aws:RequestedRegion": WEST}}
    user = make_user(dep, policy(allow("kms:*"), deny("kms:*", Condition=not_west)))
    west_admin = kms_in(dep, WEST)
    key = west_admin.create_key()["KeyMetadata"]
    blob = west_admin.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    before = described(west_admin, key["KeyId"])
    # Signed for us-west-2: the Deny applies.
    west = kms_in(dep, WEST, user)
    dep.refused(west.decrypt, CiphertextBlob=blob)
    dep.refused(west.disable_key, KeyId=key["Arn"])
    # Signed for us-east-1 the Deny does not apply, and the key cannot be reached at all.
    east = kms_in(dep, EAST, user)
    dep.refused(east.decrypt, CiphertextBlob=blob, message=UNKNOWN_CIPHERTEXT)
    dep.refused(east.encrypt, KeyId=key["Arn"], Plaintext=b"x", code="NotFoundException")
    dep.refused(east.disable_key, KeyId=key["Arn"], code="NotFoundException")
    dep.refused(
        east.schedule_key_deletion,
        KeyId=key["Arn"],
        PendingWindowInDays=7,
        code="NotFoundException",
    )
    assert described(west_admin, key["KeyId"]) == before
    # The user's own region still works for it.
    own = east.create_key()["KeyMetadata"]
    assert (
        east.decrypt(
            CiphertextBlob=east.encrypt(KeyId=own["KeyId"], Plaintext=b"y")["CiphertextBlob"]
        )["Plaintext"]
        == b"y"
    )


# Item 9: DryRun ---------------------------------------------------------------------------


def test_dry_run_answers_whether_the_call_would_succeed_and_does_nothing(dep: Deployment) -> None:
    kms = dep.kms
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    context = {"app": "dry"}
    blob = kms.encrypt(KeyId=key, Plaintext=b"data", EncryptionContext=context)["CiphertextBlob"]
    error = dep.refused(kms.encrypt, KeyId=key, Plaintext=b"data", DryRun=True, code=DRY_RUN)
    assert "DryRun" in error["Message"]
    dep.refused(
        kms.decrypt, CiphertextBlob=blob, EncryptionContext=context, DryRun=True, code=DRY_RUN
    )
    dep.refused(kms.generate_data_key, KeyId=key, KeySpec="AES_256", DryRun=True, code=DRY_RUN)
    dep.refused(
        kms.generate_data_key_without_plaintext,
        KeyId=key,
        KeySpec="AES_256",
        DryRun=True,
        code=DRY_RUN,
    )
    dep.refused(
        kms.re_encrypt,
        CiphertextBlob=blob,
        SourceEncryptionContext=context,
        DestinationKeyId=key,
        DryRun=True,
        code=DRY_RUN,
    )
    user = make_user(dep)
    dep.refused(
        kms.create_grant,
        KeyId=key,
        GranteePrincipal=user.arn,
        Operations=["Encrypt"],
        DryRun=True,
        code=DRY_RUN,
    )
    assert grants_of(dep, key) == []  # the dry-run grant was not made
    grant = kms.create_grant(KeyId=key, GranteePrincipal=user.arn, Operations=["Encrypt"])
    dep.refused(kms.revoke_grant, KeyId=key, GrantId=grant["GrantId"], DryRun=True, code=DRY_RUN)
    dep.refused(kms.retire_grant, GrantToken=grant["GrantToken"], DryRun=True, code=DRY_RUN)
    assert [g["GrantId"] for g in grants_of(dep, key)] == [grant["GrantId"]]
    # When the call would fail, DryRun answers its error.
    dep.refused(
        kms.decrypt,
        CiphertextBlob=blob,
        EncryptionContext={"app": "other"},
        DryRun=True,
        code="InvalidCiphertextException",
    )
    # The grant gives the user Encrypt, not Decrypt.
    theirs = kms_in(dep, EAST, user)
    dep.refused(theirs.encrypt, KeyId=key, Plaintext=b"x", DryRun=True, code=DRY_RUN)
    dep.refused(
        theirs.decrypt,
        CiphertextBlob=blob,
        EncryptionContext=context,
        DryRun=True,
        code="AccessDeniedException",
    )
    dep.refused(
        kms.revoke_grant, KeyId=key, GrantId="0" * 64, DryRun=True, code="NotFoundException"
    )
    # IGNORE_CIPHERTEXT: only the named key's permission and state are checked.
    garbage = b"not a ciphertext at all, not even close"
    dep.refused(kms.decrypt, CiphertextBlob=garbage, DryRun=True, code="InvalidCiphertextException")
    ignore = {"DryRun": True, "DryRunModifiers": ["IGNORE_CIPHERTEXT"]}
    dep.refused(kms.decrypt, CiphertextBlob=garbage, KeyId=key, **ignore, code=DRY_RUN)
    dep.refused(
        kms.re_encrypt,
        CiphertextBlob=garbage,
        SourceKeyId=key,
        DestinationKeyId=key,
        **ignore,
        code=DRY_RUN,
    )
    dep.refused(kms.decrypt, CiphertextBlob=garbage, **ignore, code="ValidationException")
    dep.refused(
        theirs.decrypt, CiphertextBlob=garbage, KeyId=key, **ignore, code="AccessDeniedException"
    )
    kms.disable_key(KeyId=key)
    dep.refused(kms.decrypt, CiphertextBlob=garbage, KeyId=key, **ignore, code="DisabledException")
    dep.refused(kms.encrypt, KeyId=key, Plaintext=b"x", DryRun=True, code="DisabledException")
    kms.enable_key(KeyId=key)
    # Without DryRun the same calls are done.
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == b"data"
    kms.revoke_grant(KeyId=key, GrantId=grant["GrantId"])
    assert grants_of(dep, key) == []


# Item 10: aliases are same account, same region, customer managed keys -------------------


def member_kms(dep: Deployment, name: str) -> tuple[str, Any]:
    """A new member account and a KMS client inside it (its OrganizationAccountAccessRole)."""
    return member_account_iam(dep, name, "kms")


def aliases(kms: Any) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for page in kms.get_paginator("list_aliases").paginate():
        for entry in page["Aliases"]:
            found[entry["AliasName"]] = entry.get("TargetKeyId")
    return found


def test_an_alias_cannot_point_at_another_accounts_key(dep: Deployment) -> None:
    account, theirs = member_kms(dep, "alias-owner")
    # Their key's policy even lets this account do anything with it: still no alias.
    open_policy = policy(
        allow("kms:*", Principal={"AWS": [f"arn:aws:iam::{account}:root", ADMIN_ARN]})
    )
    foreign = theirs.create_key(Policy=open_policy, BypassPolicyLockoutSafetyCheck=True)[
        "KeyMetadata"
    ]
    assert foreign["AWSAccountId"] == account
    # The cross-account key is usable as its policy allows...
    assert dep.kms.describe_key(KeyId=foreign["Arn"])["KeyMetadata"]["KeyId"] == foreign["KeyId"]
    mine = dep.kms.create_key()["KeyMetadata"]
    name = f"alias/{unique('cross')}"
    before = aliases(dep.kms)
    # ...but not as an alias target.
    dep.refused(
        dep.kms.create_alias,
        AliasName=name,
        TargetKeyId=foreign["Arn"],
        code="NotFoundException",
        message=f"Key '{foreign['Arn']}' does not exist",
    )
    assert aliases(dep.kms) == before
    dep.kms.create_alias(AliasName=name, TargetKeyId=mine["KeyId"])
    dep.refused(
        dep.kms.update_alias,
        AliasName=name,
        TargetKeyId=foreign["Arn"],
        code="NotFoundException",
    )
    assert aliases(dep.kms)[name] == mine["KeyId"]
    # A key of another region is not a target either.
    west = kms_in(dep, WEST).create_key()["KeyMetadata"]
    dep.refused(
        dep.kms.update_alias,
        AliasName=name,
        TargetKeyId=west["Arn"],
        code="NotFoundException",
        message=f"Invalid arn {WEST}",
    )
    # Nor an AWS managed key.
    managed = dep.kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    dep.refused(dep.kms.update_alias, AliasName=name, TargetKeyId=managed["KeyId"])
    dep.refused(
        dep.kms.create_alias, AliasName=f"alias/{unique('managed')}", TargetKeyId=managed["Arn"]
    )
    assert aliases(dep.kms)[name] == mine["KeyId"]
    assert aliases(dep.kms).keys() - before.keys() == {name}


# Item 12: grants -------------------------------------------------------------------------


def test_a_grant_allows_its_grantee_what_it_lists_within_its_constraints(
    dep: Deployment,
) -> None:
    kms = dep.kms
    key = kms.create_key()["KeyMetadata"]  # default policy: IAM policies decide
    user = make_user(dep)  # no IAM policy at all
    theirs = kms_in(dep, EAST, user)
    context = {"app": "billing"}
    dep.refused(theirs.encrypt, KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=context)

    created = dep.kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=user.arn,
        Operations=["Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey"],
        Constraints={"EncryptionContextSubset": context},
        Name="billing",
    )
    (record,) = dep.records(created["ResponseMetadata"]["RequestId"])
    assert record["eventName"] == "CreateGrant" and "errorCode" not in record
    wider = {**context, "tenant": "t-1"}
    blob = theirs.encrypt(KeyId=key["KeyId"], Plaintext=b"granted", EncryptionContext=wider)[
        "CiphertextBlob"
    ]
    assert theirs.decrypt(CiphertextBlob=blob, EncryptionContext=wider)["Plaintext"] == b"granted"
    assert (
        theirs.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256", EncryptionContext=context)[
            "KeyId"
        ]
        == key["Arn"]
    )
    assert theirs.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Arn"] == key["Arn"]
    # Outside its constraints, or beyond its operations: refused, as without a grant.
    dep.refused(theirs.encrypt, KeyId=key["KeyId"], Plaintext=b"x")
    dep.refused(theirs.encrypt, KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"app": "hr"})
    dep.refused(
        theirs.re_encrypt,
        CiphertextBlob=blob,
        SourceEncryptionContext=wider,
        DestinationKeyId=key["KeyId"],
        DestinationEncryptionContext=wider,
    )
    dep.refused(theirs.disable_key, KeyId=key["KeyId"])
    dep.refused(theirs.list_grants, KeyId=key["KeyId"])
    assert described(kms, key["KeyId"])["KeyState"] == "Enabled"
    # The grant as ListGrants shows it.
    (listed,) = grants_of(dep, key["KeyId"])
    assert listed["GrantId"] == created["GrantId"]
    assert listed["KeyId"] == key["Arn"]
    assert listed["GranteePrincipal"] == user.arn
    assert listed["IssuingAccount"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert listed["Name"] == "billing"
    assert sorted(listed["Operations"]) == ["Decrypt", "DescribeKey", "Encrypt", "GenerateDataKey"]
    assert listed["Constraints"] == {"EncryptionContextSubset": context}
    # Name makes CreateGrant idempotent.
    again = dep.kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=user.arn,
        Operations=["Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey"],
        Constraints={"EncryptionContextSubset": context},
        Name="billing",
    )
    assert again["GrantId"] == created["GrantId"]
    assert len(grants_of(dep, key["KeyId"])) == 1
    # Revoked: the grantee is refused again.
    dep.kms.revoke_grant(KeyId=key["KeyId"], GrantId=created["GrantId"])
    assert grants_of(dep, key["KeyId"]) == []
    dep.refused(theirs.encrypt, KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=context)
    dep.refused(theirs.decrypt, CiphertextBlob=blob, EncryptionContext=wider)


def test_a_grant_reaches_secrets_manager_s_use_of_the_key(dep: Deployment) -> None:
    admin_only = policy(allow("kms:*", Principal={"AWS": ADMIN_ARN}))
    key = dep.kms.create_key(Policy=admin_only)["KeyMetadata"]["Arn"]
    granted = dep.sm.create_secret(Name=unique("granted"), SecretString="s1", KmsKeyId=key)
    other = dep.sm.create_secret(Name=unique("other"), SecretString="s2", KmsKeyId=key)
    get = "secretsmanager:GetSecretValue"
    user = make_user(dep, policy(allow(get, [granted["ARN"], other["ARN"]])))
    sm = user.client()
    dep.refused(sm.get_secret_value, SecretId=granted["ARN"], message=KMS_NOT_ALLOWED)
    # A grant of Decrypt for the one secret's encryption context (as Secrets Manager gives it).
    dep.kms.create_grant(
        KeyId=key,
        GranteePrincipal=user.arn,
        Operations=["Decrypt"],
        Constraints={"EncryptionContextSubset": {"SecretARN": granted["ARN"]}},
    )
    assert sm.get_secret_value(SecretId=granted["ARN"])["SecretString"] == "s1"
    dep.refused(sm.get_secret_value, SecretId=other["ARN"], message=KMS_NOT_ALLOWED)


def test_an_equals_constraint_needs_exactly_its_context(dep: Deployment) -> None:
    key = dep.kms.create_key()["KeyMetadata"]["KeyId"]
    user = make_user(dep)
    theirs = kms_in(dep, EAST, user)
    exact = {"app": "billing", "stage": "prod"}
    dep.kms.create_grant(
        KeyId=key,
        GranteePrincipal=user.arn,
        Operations=["Encrypt"],
        Constraints={"EncryptionContextEquals": exact},
    )
    theirs.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext=dict(reversed(exact.items())))
    dep.refused(theirs.encrypt, KeyId=key, Plaintext=b"x", EncryptionContext={"app": "billing"})
    dep.refused(theirs.encrypt, KeyId=key, Plaintext=b"x", EncryptionContext={**exact, "more": "1"})
    dep.refused(
        theirs.encrypt,
        KeyId=key,
        Plaintext=b"x",
        EncryptionContext={"APP": "billing", "stage": "prod"},
    )


def test_an_explicit_deny_wins_over_a_grant(dep: Deployment) -> None:
    key = dep.kms.create_key()["KeyMetadata"]
    user = make_user(dep, policy(deny("kms:Encrypt", key["Arn"])))
    dep.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"])
    dep.refused(
        kms_in(dep, EAST, user).encrypt,
        KeyId=key["KeyId"],
        Plaintext=b"x",
        message=f"User: {user.arn} is not authorized to perform: kms:Encrypt on resource: "
        f"{key['Arn']} with an explicit deny in an identity-based policy",
    )


def test_a_grant_to_a_role_serves_its_sessions(dep: Deployment) -> None:
    role_name = unique("grantee-role")
    trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    )
    role = dep.iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)["Role"]
    key = dep.kms.create_key()["KeyMetadata"]["KeyId"]
    session = dep.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="worker")[
        "Credentials"
    ]
    kms = dep.server.client(
        "kms",
        EAST,
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
    )
    dep.refused(kms.encrypt, KeyId=key, Plaintext=b"x")
    dep.kms.create_grant(KeyId=key, GranteePrincipal=role["Arn"], Operations=["Encrypt"])
    assert kms.encrypt(KeyId=key, Plaintext=b"x")["KeyId"].endswith(key)


def test_retiring_a_grant_is_decided_by_the_grant(dep: Deployment) -> None:
    key = dep.kms.create_key()["KeyMetadata"]["KeyId"]
    grantee, retiree, stranger = make_user(dep), make_user(dep), make_user(dep)
    grant = dep.kms.create_grant(
        KeyId=key,
        GranteePrincipal=grantee.arn,
        RetiringPrincipal=retiree.arn,
        Operations=["Decrypt"],
    )
    retirable = dep.kms.list_retirable_grants(RetiringPrincipal=retiree.arn)["Grants"]
    assert [g["GrantId"] for g in retirable] == [grant["GrantId"]]
    # Neither a stranger nor a grantee whose grant does not list RetireGrant may retire it.
    for user in (stranger, grantee):
        dep.refused(kms_in(dep, EAST, user).retire_grant, GrantToken=grant["GrantToken"])
        dep.refused(kms_in(dep, EAST, user).retire_grant, KeyId=key, GrantId=grant["GrantId"])
    dep.refused(kms_in(dep, EAST, stranger).revoke_grant, KeyId=key, GrantId=grant["GrantId"])
    assert [g["GrantId"] for g in grants_of(dep, key)] == [grant["GrantId"]]
    dep.refused(kms_in(dep, EAST, stranger).list_retirable_grants, RetiringPrincipal=retiree.arn)
    # The retiring principal may, with the grant token alone.
    kms_in(dep, EAST, retiree).retire_grant(GrantToken=grant["GrantToken"])
    assert grants_of(dep, key) == []
    assert dep.kms.list_retirable_grants(RetiringPrincipal=retiree.arn)["Grants"] == []
    # A grantee whose grant lists RetireGrant may retire that grant.
    own = dep.kms.create_grant(
        KeyId=key, GranteePrincipal=grantee.arn, Operations=["Decrypt", "RetireGrant"]
    )
    kms_in(dep, EAST, grantee).retire_grant(KeyId=key, GrantId=own["GrantId"])
    assert grants_of(dep, key) == []


def test_a_grantee_with_create_grant_passes_on_no_more_than_it_has(dep: Deployment) -> None:
    key = dep.kms.create_key()["KeyMetadata"]["KeyId"]
    lead, helper = make_user(dep), make_user(dep)
    subset = {"EncryptionContextSubset": {"team": "a"}}
    dep.kms.create_grant(
        KeyId=key,
        GranteePrincipal=lead.arn,
        Operations=["Encrypt", "Decrypt", "CreateGrant"],
        Constraints=subset,
    )
    theirs = kms_in(dep, EAST, lead)
    before = grants_of(dep, key)
    dep.refused(
        theirs.create_grant,
        KeyId=key,
        GranteePrincipal=helper.arn,
        Operations=["Encrypt", "ReEncryptFrom"],
        Constraints=subset,
    )
    dep.refused(theirs.create_grant, KeyId=key, GranteePrincipal=helper.arn, Operations=["Encrypt"])
    assert grants_of(dep, key) == before
    theirs.create_grant(
        KeyId=key,
        GranteePrincipal=helper.arn,
        Operations=["Encrypt"],
        Constraints={"EncryptionContextEquals": {"team": "a", "stage": "dev"}},
    )
    helped = kms_in(dep, EAST, helper)
    helped.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"team": "a", "stage": "dev"})
    dep.refused(helped.encrypt, KeyId=key, Plaintext=b"x", EncryptionContext={"team": "a"})


def test_policies_limit_who_may_grant_what(dep: Deployment) -> None:
    key = dep.kms.create_key()["KeyMetadata"]["KeyId"]
    grantee = make_user(dep)
    only_decrypt = {
        "ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt"]},
        "StringEquals": {"kms:GranteePrincipal": grantee.arn},
        "Null": {"kms:GrantConstraintType": "false"},
    }
    granter = make_user(dep, policy(allow("kms:CreateGrant", Condition=only_decrypt)))
    theirs = kms_in(dep, EAST, granter)
    constrained = {"EncryptionContextSubset": {"app": "a"}}
    refused = [
        {"Operations": ["Decrypt", "Encrypt"], "Constraints": constrained},
        {"Operations": ["Decrypt"]},  # no constraint
        {"Operations": ["Decrypt"], "Constraints": constrained, "GranteePrincipal": granter.arn},
    ]
    for extra in refused:
        request = {"KeyId": key, "GranteePrincipal": grantee.arn, **extra}
        dep.refused(theirs.create_grant, **request)
    assert grants_of(dep, key) == []
    theirs.create_grant(
        KeyId=key, GranteePrincipal=grantee.arn, Operations=["Decrypt"], Constraints=constrained
    )
    assert [g["GranteePrincipal"] for g in grants_of(dep, key)] == [grantee.arn]


def test_grant_requests_refused_with_awss_codes_change_nothing(dep: Deployment) -> None:
    kms = dep.kms
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    user = make_user(dep)
    grant = kms.create_grant(KeyId=key, GranteePrincipal=user.arn, Operations=["Encrypt"])
    before = grants_of(dep, key)
    dep.refused(
        kms.create_grant,
        KeyId=key,
        GranteePrincipal=user.arn,
        Operations=["Sign"],
        code="ValidationException",
    )
    dep.refused(
        kms.create_grant,
        KeyId=key,
        GranteePrincipal="not-an-arn",
        Operations=["Encrypt"],
        code="InvalidArnException",
    )
    dep.refused(
        kms.create_grant,
        KeyId=key,
        GranteePrincipal=user.arn,
        Operations=["Encrypt"],
        GrantTokens=["made-up"],
        code="InvalidGrantTokenException",
    )
    dep.refused(
        kms.encrypt, KeyId=key, Plaintext=b"x", GrantTokens=["made-up"],
        code="InvalidGrantTokenException",
    )  # fmt: skip
    dep.refused(kms.retire_grant, GrantToken="made-up", code="InvalidGrantTokenException")
    dep.refused(kms.revoke_grant, KeyId=key, GrantId="nope", code="InvalidGrantIdException")
    dep.refused(kms.revoke_grant, KeyId=key, GrantId="f" * 64, code="NotFoundException")
    dep.refused(kms.retire_grant, KeyId=key, GrantId="f" * 64, code="NotFoundException")
    dep.refused(kms.list_grants, KeyId=key, GrantId="nope", code="InvalidGrantIdException")
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    dep.refused(kms.revoke_grant, KeyId=other, GrantId=grant["GrantId"], code="NotFoundException")
    dep.refused(
        kms.create_grant,
        KeyId=str(uuid.uuid4()),
        GranteePrincipal=user.arn,
        Operations=["Encrypt"],
        code="NotFoundException",
    )
    kms.schedule_key_deletion(KeyId=other, PendingWindowInDays=7)
    dep.refused(
        kms.create_grant,
        KeyId=other,
        GranteePrincipal=user.arn,
        Operations=["Encrypt"],
        code="KMSInvalidStateException",
    )
    assert grants_of(dep, key) == before
    assert grants_of(dep, other) == []
    # A valid grant token is accepted.
    kms.encrypt(KeyId=key, Plaintext=b"x", GrantTokens=[grant["GrantToken"]])


# Item 13 ----------------------------------------------------------------------------------


def test_pending_deletion_allows_put_key_policy_and_rotation_status(dep: Deployment) -> None:
    kms = dep.kms
    key = kms.create_key(Description="doomed")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    status = kms.get_key_rotation_status(KeyId=key)
    assert status["KeyRotationEnabled"] is False
    new_policy = policy(
        allow("kms:*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Sid="Root")
    )
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=new_policy)
    assert json.loads(kms.get_key_policy(KeyId=key)["Policy"]) == json.loads(new_policy)
    dep.refused(
        kms.update_key_description,
        KeyId=key,
        Description="changed",
        code="KMSInvalidStateException",
    )
    assert described(kms, key)["Description"] == "doomed"
    assert described(kms, key)["KeyState"] == "PendingDeletion"


def test_a_ciphertext_of_a_missing_key_answers_as_one_not_allowed(dep: Deployment) -> None:
    kms = dep.kms
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    # The blob's header names its key (format version byte, then the 36-character id).
    forged = blob[:1] + str(uuid.uuid4()).encode() + blob[37:]
    missing = dep.refused(kms.decrypt, CiphertextBlob=forged, message=UNKNOWN_CIPHERTEXT)
    west_blob = kms_in(dep, WEST).encrypt(
        KeyId=kms_in(dep, WEST).create_key()["KeyMetadata"]["KeyId"], Plaintext=b"x"
    )["CiphertextBlob"]
    elsewhere = dep.refused(kms.decrypt, CiphertextBlob=west_blob)
    # Another account's principal that the key's policy does not let in hears the same.
    _, theirs = member_kms(dep, "ciphertext-reader")
    not_theirs = dep.refused(theirs.decrypt, CiphertextBlob=blob)
    # A user without any KMS permission hears it too, whether the key exists or not.
    nobody = kms_in(dep, EAST, make_user(dep))
    denied_missing = dep.refused(nobody.decrypt, CiphertextBlob=forged)
    denied_elsewhere = dep.refused(nobody.decrypt, CiphertextBlob=west_blob)
    assert missing == elsewhere == not_theirs == denied_missing == denied_elsewhere
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_predefined_aliases_are_listed_before_first_use(dep: Deployment) -> None:
    fresh = kms_in(dep, "ap-south-2")
    assert fresh.list_keys()["Keys"] == []
    (predefined,) = [
        a for a in fresh.list_aliases()["Aliases"] if a["AliasName"] == "alias/aws/secretsmanager"
    ]
    assert predefined == {
        "AliasName": "alias/aws/secretsmanager",
        "AliasArn": f"arn:aws:kms:ap-south-2:{ACCOUNT}:alias/aws/secretsmanager",
    }
    assert fresh.list_keys()["Keys"] == []  # listing creates nothing
    managed = fresh.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    (used,) = [
        a for a in fresh.list_aliases()["Aliases"] if a["AliasName"] == "alias/aws/secretsmanager"
    ]
    assert used["TargetKeyId"] == managed["KeyId"]


def test_list_key_policies_list_key_rotations_and_update_key_description(
    dep: Deployment,
) -> None:
    kms = dep.kms
    key = kms.create_key(Description="before")["KeyMetadata"]["KeyId"]
    listed = kms.list_key_policies(KeyId=key)
    assert (listed["PolicyNames"], listed["Truncated"]) == (["default"], False)
    assert kms.list_key_rotations(KeyId=key)["Rotations"] == []
    kms.rotate_key_on_demand(KeyId=key)
    (rotation,) = kms.list_key_rotations(KeyId=key)["Rotations"]
    assert rotation["KeyId"] == key and rotation["RotationType"] == "ON_DEMAND"
    assert rotation["KeyMaterialId"] == described(kms, key)["CurrentKeyMaterialId"]
    first, rotated = kms.list_key_rotations(KeyId=key, IncludeKeyMaterial="ALL_KEY_MATERIAL")[
        "Rotations"
    ]
    assert rotated == rotation
    assert "RotationType" not in first and first["KeyMaterialId"] != rotation["KeyMaterialId"]
    kms.update_key_description(KeyId=key, Description="after")
    assert described(kms, key)["Description"] == "after"
    # A narrow user: each needs its own permission.
    reader = make_user(dep, policy(allow("kms:ListKeyPolicies")))
    theirs = kms_in(dep, EAST, reader)
    assert theirs.list_key_policies(KeyId=key)["PolicyNames"] == ["default"]
    dep.refused(theirs.list_key_rotations, KeyId=key)
    dep.refused(theirs.update_key_description, KeyId=key, Description="theirs")
    # An AWS managed key's description is not changed.
    managed = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    dep.refused(kms.update_key_description, KeyId=managed["KeyId"], Description="mine")
    assert described(kms, managed["KeyId"])["Description"] == managed["Description"]
    assert described(kms, key)["Description"] == "after"
