"""Tags (spec 3.11) and resource policies (spec 3.10), end to end with boto3 against a
real server."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.aws import aws_error, body, described, not_found, state
from tests.server import ServerProcess

ACCOUNT = "000000000000"
PUBLIC_POLICY = (
    "The BlockPublicPolicy parameter is set to true, and the resource policy did not "
    "prevent broad access to the secret."
)


def tags_of(sm: Any, secret_id: str) -> dict[str, str] | None:
    tags = sm.describe_secret(SecretId=secret_id).get("Tags")
    return None if tags is None else {t["Key"]: t["Value"] for t in tags}


def policy(principal: Any, **statement: Any) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                    **statement,
                }
            ],
        }
    )


ACCOUNT_POLICY = policy({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
OTHER_ACCOUNT_POLICY = policy({"AWS": "arn:aws:iam::111122223333:root"})
PUBLIC_POLICIES = {
    "star": policy("*"),
    "aws-star": policy({"AWS": "*"}),
    "aws-list-star": policy({"AWS": ["arn:aws:iam::111122223333:root", "*"]}),
}


# Tags ---------------------------------------------------------------------------------


def test_create_with_tags(sm: Any, name: str) -> None:
    tags = [{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": ""}]
    sm.create_secret(Name=name, SecretString="v", Tags=tags)
    assert sorted(sm.describe_secret(SecretId=name)["Tags"], key=lambda t: t["Key"]) == sorted(
        tags, key=lambda t: t["Key"]
    )
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert {t["Key"]: t["Value"] for t in listed[0]["Tags"]} == {"team": "payments", "env": ""}


def test_tag_resource_merges_and_overwrites(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    answer = sm.tag_resource(
        SecretId=name, Tags=[{"Key": "b", "Value": "two"}, {"Key": "c", "Value": "3"}]
    )
    assert body(answer) == {}
    assert tags_of(sm, name) == {"a": "1", "b": "two", "c": "3"}
    assert len(sm.describe_secret(SecretId=name)["Tags"]) == 3


def test_tag_keys_are_case_sensitive(sm: Any, name: str) -> None:
    sm.create_secret(Name=name)
    sm.tag_resource(SecretId=name, Tags=[{"Key": "Env", "Value": "prod"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "env", "Value": "dev"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "ENV", "Value": "qa"}])
    assert tags_of(sm, name) == {"Env": "prod", "env": "dev", "ENV": "qa"}
    sm.untag_resource(SecretId=name, TagKeys=["env"])
    assert tags_of(sm, name) == {"Env": "prod", "ENV": "qa"}


def test_untag_is_idempotent_and_ignores_missing_keys(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    answer = sm.untag_resource(SecretId=name, TagKeys=["a", "missing"])
    assert body(answer) == {}
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert tags_of(sm, name) == {"b": "2"}
    sm.untag_resource(SecretId=name, TagKeys=["a", "missing"])
    assert tags_of(sm, name) == {"b": "2"}


def test_tags_key_absent_until_tagged_and_empty_after_all_removed(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="v")
    assert "Tags" not in sm.describe_secret(SecretId=name)
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert "Tags" not in listed[0]
    sm.tag_resource(SecretId=name, Tags=[{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": ""}])
    assert tags_of(sm, name) == {"k1": "v1", "k2": ""}
    sm.untag_resource(SecretId=name, TagKeys=["k1", "k2"])
    assert sm.describe_secret(SecretId=name)["Tags"] == []


def test_tags_at_the_length_limits(sm: Any, name: str) -> None:
    key, value = "k" * 128, "v" * 256
    sm.create_secret(Name=name, Tags=[{"Key": key, "Value": value}])
    assert tags_of(sm, name) == {key: value}
    sm.untag_resource(SecretId=name, TagKeys=[key])
    assert tags_of(sm, name) == {}


TOO_LONG_TAGS = {
    "key-129": (
        [{"Key": "k" * 129, "Value": "v"}],
        "tags.1.member.key",
        "length less than or equal to 128",
    ),
    "key-empty": (
        [{"Key": "", "Value": "v"}],
        "tags.1.member.key",
        "length greater than or equal to 1",
    ),
    "value-257": (
        [{"Key": "ok", "Value": "v"}, {"Key": "k", "Value": "v" * 257}],
        "tags.2.member.value",
        "length less than or equal to 256",
    ),
}


@pytest.mark.parametrize("case", list(TOO_LONG_TAGS))
def test_tag_resource_rejects_tags_beyond_the_limits(
    raw: Any, sm: Any, name: str, case: str
) -> None:
    tags, path, constraint = TOO_LONG_TAGS[case]
    sm.create_secret(Name=name, Tags=[{"Key": "keep", "Value": "me"}])
    before = described(sm, name)
    error = aws_error(
        lambda: raw.tag_resource(SecretId=name, Tags=tags), code="ValidationException"
    )
    message = error["Message"]
    assert message.startswith("1 validation error detected: Value '")
    assert f"at '{path}' failed to satisfy constraint: Member must have {constraint}" in message
    assert described(sm, name) == before


@pytest.mark.parametrize("case", list(TOO_LONG_TAGS))
def test_create_secret_with_bad_tags_creates_nothing(
    raw: Any, sm: Any, name: str, case: str
) -> None:
    tags, _, _ = TOO_LONG_TAGS[case]
    aws_error(
        lambda: raw.create_secret(Name=name, SecretString="v", Tags=tags),
        code="ValidationException",
    )
    not_found(lambda: sm.describe_secret(SecretId=name))


def test_untag_rejects_keys_beyond_the_limit(raw: Any, sm: Any, name: str) -> None:
    sm.create_secret(Name=name, Tags=[{"Key": "keep", "Value": "me"}])
    before = described(sm, name)
    error = aws_error(
        lambda: raw.untag_resource(SecretId=name, TagKeys=["keep", "k" * 129]),
        code="ValidationException",
    )
    assert "Member must have length less than or equal to 128" in error["Message"]
    assert described(sm, name) == before


def test_tagging_a_missing_secret_is_not_found(sm: Any, name: str) -> None:
    not_found(lambda: sm.tag_resource(SecretId=name, Tags=[{"Key": "k", "Value": "v"}]))
    not_found(lambda: sm.untag_resource(SecretId=name, TagKeys=["k"]))


# Resource policies --------------------------------------------------------------------


def test_policy_round_trip(sm: Any, name: str) -> None:
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    put = sm.put_resource_policy(SecretId=name, ResourcePolicy=ACCOUNT_POLICY)
    assert body(put) == {"ARN": arn, "Name": name}
    got = sm.get_resource_policy(SecretId=arn)
    assert body(got) == {
        "ARN": arn,
        "Name": name,
        "ResourcePolicy": ACCOUNT_POLICY,
        "PolicyName": "default",
    }
    # A second Put replaces the first.
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=OTHER_ACCOUNT_POLICY)
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == OTHER_ACCOUNT_POLICY
    deleted = sm.delete_resource_policy(SecretId=name)
    assert body(deleted) == {"ARN": arn, "Name": name}
    assert body(sm.get_resource_policy(SecretId=name)) == {"ARN": arn, "Name": name}
    # Deleting when there is none is fine.
    assert body(sm.delete_resource_policy(SecretId=name)) == {"ARN": arn, "Name": name}


def test_get_resource_policy_without_a_policy_omits_it(sm: Any, name: str) -> None:
    arn = sm.create_secret(Name=name)["ARN"]
    got = sm.get_resource_policy(SecretId=name)
    assert body(got) == {"ARN": arn, "Name": name}


def test_policy_operations_on_a_missing_secret(sm: Any, name: str) -> None:
    not_found(lambda: sm.put_resource_policy(SecretId=name, ResourcePolicy=ACCOUNT_POLICY))
    not_found(lambda: sm.get_resource_policy(SecretId=name))
    not_found(lambda: sm.delete_resource_policy(SecretId=name))
    not_found(lambda: sm.validate_resource_policy(SecretId=name, ResourcePolicy=ACCOUNT_POLICY))


MALFORMED = {
    "not-json": "{not json",
    "truncated": ACCOUNT_POLICY[:-5],
    "array": "[]",
    "no-statement": json.dumps({"Version": "2012-10-17"}),
    "empty-statement": json.dumps({"Version": "2012-10-17", "Statement": []}),
    "bad-effect": policy({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Effect="Maybe"),
    "no-principal": json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}],
        }
    ),
    "action-without-vendor": policy(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Action="GetSecretValue"
    ),
    "bad-version": json.dumps(
        {"Version": "2020-01-01", "Statement": json.loads(ACCOUNT_POLICY)["Statement"]}
    ),
    "unknown-element": policy({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Foo="bar"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_policy_is_refused_and_nothing_stored(sm: Any, name: str, case: str) -> None:
    sm.create_secret(Name=name)
    aws_error(
        lambda: sm.put_resource_policy(SecretId=name, ResourcePolicy=MALFORMED[case]),
        code="MalformedPolicyDocumentException",
    )
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    # An existing policy survives a refused replacement.
    sm.put_resource_policy(SecretId=name, ResourcePolicy=ACCOUNT_POLICY)
    before = described(sm, name)
    aws_error(
        lambda: sm.put_resource_policy(SecretId=name, ResourcePolicy=MALFORMED[case]),
        code="MalformedPolicyDocumentException",
    )
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == ACCOUNT_POLICY
    assert described(sm, name) == before


@pytest.mark.parametrize("case", list(PUBLIC_POLICIES))
def test_block_public_policy_refuses_broad_access(sm: Any, name: str, case: str) -> None:
    sm.create_secret(Name=name)
    sm.put_resource_policy(SecretId=name, ResourcePolicy=ACCOUNT_POLICY)
    before = described(sm, name)
    aws_error(
        lambda: sm.put_resource_policy(
            SecretId=name, ResourcePolicy=PUBLIC_POLICIES[case], BlockPublicPolicy=True
        ),
        code="PublicPolicyException",
        message=PUBLIC_POLICY,
    )
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == ACCOUNT_POLICY
    assert described(sm, name) == before


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        {"AWS": ACCOUNT},
        {"AWS": "arn:aws:iam::111122223333:root"},
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"},
    ],
)
def test_block_public_policy_accepts_named_principals(
    server: ServerProcess, sm: Any, name: str, principal: dict[str, str]
) -> None:
    if principal["AWS"].endswith(":role/app"):
        # A principal must exist (it is bound by its unique id): a role of its own.
        role_name = f"app-{uuid.uuid4().hex[:10]}"
        principal = {
            "AWS": server.client("iam").create_role(
                RoleName=role_name,
                AssumeRolePolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "*"}
                        ],
                    }
                ),
            )["Role"]["Arn"]
        }
    sm.create_secret(Name=name)
    text = policy(principal)
    sm.put_resource_policy(SecretId=name, ResourcePolicy=text, BlockPublicPolicy=True)
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == text


def test_broad_policy_is_accepted_when_not_blocked(sm: Any, name: str) -> None:
    # BlockPublicPolicy defaults to false.
    sm.create_secret(Name=name)
    sm.put_resource_policy(SecretId=name, ResourcePolicy=PUBLIC_POLICIES["star"])
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == PUBLIC_POLICIES["star"]
    sm.put_resource_policy(
        SecretId=name, ResourcePolicy=PUBLIC_POLICIES["aws-star"], BlockPublicPolicy=False
    )
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == PUBLIC_POLICIES["aws-star"]


@pytest.mark.parametrize("with_secret", [False, True])
def test_validate_resource_policy_passing(sm: Any, name: str, with_secret: bool) -> None:
    extra = {}
    if with_secret:
        sm.create_secret(Name=name)
        extra = {"SecretId": name}
    answer = sm.validate_resource_policy(ResourcePolicy=ACCOUNT_POLICY, **extra)
    assert body(answer) == {"PolicyValidationPassed": True, "ValidationErrors": []}
    if with_secret:
        # Validating stores nothing.
        assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)


@pytest.mark.parametrize("with_secret", [False, True])
@pytest.mark.parametrize("case", ["broad", "syntax"])
def test_validate_resource_policy_failing(sm: Any, name: str, with_secret: bool, case: str) -> None:
    extra = {}
    if with_secret:
        sm.create_secret(Name=name)
        extra = {"SecretId": name}
    text = PUBLIC_POLICIES["star"] if case == "broad" else MALFORMED["empty-statement"]
    answer = body(sm.validate_resource_policy(ResourcePolicy=text, **extra))
    assert answer["PolicyValidationPassed"] is False
    errors = answer["ValidationErrors"]
    assert len(errors) == 1
    assert set(errors[0]) == {"CheckName", "ErrorMessage"}
    assert errors[0]["CheckName"]
    assert errors[0]["ErrorMessage"]
    if with_secret:
        assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)


def test_validate_resource_policy_names_the_failed_checks(sm: Any) -> None:
    broad = body(sm.validate_resource_policy(ResourcePolicy=PUBLIC_POLICIES["aws-star"]))
    syntax = body(sm.validate_resource_policy(ResourcePolicy=MALFORMED["bad-effect"]))
    assert broad["ValidationErrors"][0]["CheckName"] != syntax["ValidationErrors"][0]["CheckName"]


def test_validate_resource_policy_rejects_text_that_is_not_json(sm: Any) -> None:
    aws_error(
        lambda: sm.validate_resource_policy(ResourcePolicy="{not json"),
        code="MalformedPolicyDocumentException",
    )


def _padded(length: int) -> str:
    """ACCOUNT_POLICY padded with insignificant whitespace to exactly ``length`` chars."""
    text = ACCOUNT_POLICY[:-1] + " " * (length - len(ACCOUNT_POLICY)) + "}"
    assert len(text) == length
    json.loads(text)
    return text


def test_policy_of_20480_characters_is_accepted(sm: Any, name: str) -> None:
    sm.create_secret(Name=name)
    text = _padded(20480)
    sm.put_resource_policy(SecretId=name, ResourcePolicy=text)
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == text
    assert sm.validate_resource_policy(ResourcePolicy=text)["PolicyValidationPassed"] is True


def test_policy_of_20481_characters_is_rejected(raw: Any, sm: Any, name: str) -> None:
    sm.create_secret(Name=name)
    sm.put_resource_policy(SecretId=name, ResourcePolicy=ACCOUNT_POLICY)
    before = described(sm, name)
    text = _padded(20481)
    for call in (
        lambda: raw.put_resource_policy(SecretId=name, ResourcePolicy=text),
        lambda: raw.validate_resource_policy(SecretId=name, ResourcePolicy=text),
    ):
        error = aws_error(call, code="ValidationException")
        assert error["Message"].endswith(
            "at 'resourcePolicy' failed to satisfy constraint: Member must have length less "
            "than or equal to 20480"
        )
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == ACCOUNT_POLICY
    assert described(sm, name) == before


# Issue 23 item 3: tag rules -------------------------------------------------------------------


def fifty_tags(prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{number}", "Value": str(number)} for number in range(50)]


def test_a_secret_has_at_most_fifty_tags(sm: Any, name: str) -> None:
    aws_error(
        sm.create_secret,
        Name=name,
        SecretString="v",
        Tags=[*fifty_tags(), {"Key": "one-more", "Value": "x"}],
        code="InvalidParameterException",
        message="A secret can have at most 50 tags; this request would give it 51.",
    )
    not_found(sm.describe_secret, SecretId=name)
    sm.create_secret(Name=name, SecretString="v", Tags=fifty_tags())
    before = described(sm, name)
    aws_error(
        sm.tag_resource,
        SecretId=name,
        Tags=[{"Key": "one-more", "Value": "x"}],
        code="InvalidParameterException",
        message="A secret can have at most 50 tags; this request would give it 51.",
    )
    assert described(sm, name) == before
    # Overwriting a tag that is there adds none.
    sm.tag_resource(SecretId=name, Tags=[{"Key": "k0", "Value": "new"}])
    assert len(sm.describe_secret(SecretId=name)["Tags"]) == 50


@pytest.mark.parametrize("key", ["aws:secretsmanager:owningService", "AWS:team", "aws:x"])
def test_the_aws_prefix_is_reserved(sm: Any, name: str, key: str) -> None:
    message = f"Tag key {key} is not valid: the aws: prefix is reserved for AWS use."
    aws_error(
        sm.create_secret,
        Name=name,
        SecretString="v",
        Tags=[{"Key": key, "Value": "rds"}],
        code="InvalidParameterException",
        message=message,
    )
    not_found(sm.describe_secret, SecretId=name)
    sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "team", "Value": "a"}])
    before = described(sm, name)
    for call in (
        lambda: sm.tag_resource(SecretId=name, Tags=[{"Key": key, "Value": "rds"}]),
        lambda: sm.untag_resource(SecretId=name, TagKeys=[key]),
    ):
        aws_error(call, code="InvalidParameterException", message=message)
    assert described(sm, name) == before
    assert "OwningService" not in before


# Issue 23 item 5: policy names, ListResourcePolicies, LastChangedDate on deletion ----------


def test_the_resource_policy_is_named_default(sm: Any, name: str) -> None:
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    assert body(sm.list_resource_policies(SecretId=name)) == {"ResourcePolicies": []}
    assert body(sm.get_resource_policy(SecretId=name)) == {"ARN": arn, "Name": name}
    sm.put_resource_policy(SecretId=name, ResourcePolicy=ACCOUNT_POLICY)
    assert body(sm.get_resource_policy(SecretId=name)) == {
        "ARN": arn,
        "Name": name,
        "ResourcePolicy": ACCOUNT_POLICY,
        "PolicyName": "default",
    }
    assert sm.get_resource_policy(SecretId=name, PolicyName="default")["PolicyName"] == "default"
    assert body(sm.list_resource_policies(SecretId=arn)) == {
        "ResourcePolicies": [{"PolicyName": "default"}]
    }
    before = state(sm, name, policy=True)
    for call in (sm.get_resource_policy, sm.delete_resource_policy):
        aws_error(call, SecretId=name, PolicyName="other", code="ResourceNotFoundException")
    aws_error(
        sm.put_resource_policy,
        SecretId=name,
        ResourcePolicy=ACCOUNT_POLICY,
        PolicyName="other",
        code="ResourceNotFoundException",
    )
    assert state(sm, name, policy=True) == before
    sm.delete_resource_policy(SecretId=name)
    assert body(sm.list_resource_policies(SecretId=name)) == {"ResourcePolicies": []}
    not_found(sm.list_resource_policies, SecretId=f"{name}-missing")


def test_scheduling_a_deletion_moves_last_changed_date(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="v")
    created = sm.describe_secret(SecretId=name)
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    deleted = sm.describe_secret(SecretId=name)
    assert deleted["LastChangedDate"] == deleted["DeletedDate"]
    assert deleted["LastChangedDate"] > created["LastChangedDate"]
