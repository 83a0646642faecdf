"""The condition keys Secrets Manager's request members define (strongroom/secrets/checks.py),
per operation: what each operation carries, and nothing it does not."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.secrets.checks import request_keys, request_keys_for


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("GetSecretValue", {"SecretId": "s"}, {}),
        (
            "GetSecretValue",
            {"SecretId": "s", "VersionId": "v1", "VersionStage": "AWSCURRENT"},
            {
                "secretsmanager:VersionId": ("v1",),
                "secretsmanager:VersionStage": ("AWSCURRENT",),
            },
        ),
        ("GetSecretValue", {"VersionId": None}, {}),  # an explicit null is absent
        (
            "CreateSecret",
            {
                "Name": "n",
                "ForceOverwriteReplicaSecret": False,
                "Tags": [{"Key": "team", "Value": "blue"}, {"Key": "env"}],
                "AddReplicaRegions": [{"Region": "eu-west-1"}, {"KmsKeyId": "k"}],
            },
            {
                "secretsmanager:Name": ("n",),
                "secretsmanager:ForceOverwriteReplicaSecret": ("false",),
                "secretsmanager:AddReplicaRegions": ("eu-west-1",),
                "aws:RequestTag/team": ("blue",),
                "aws:RequestTag/env": ("",),
                "aws:TagKeys": ("team", "env"),
            },
        ),
        (
            "TagResource",
            {"Tags": [{"Key": "a", "Value": "1"}]},
            {"aws:RequestTag/a": ("1",), "aws:TagKeys": ("a",)},
        ),
        ("UpdateSecret", {"Tags": [{"Key": "a", "Value": "1"}]}, {}),  # tags only where given
        ("UntagResource", {"TagKeys": ["a", "b"]}, {"aws:TagKeys": ("a", "b")}),
        ("TagResource", {"TagKeys": ["a"]}, {}),
        (
            "RotateSecret",
            {"RotateImmediately": True},
            {
                "secretsmanager:RotateImmediately": ("true",),
                "secretsmanager:ModifyRotationRules": ("false",),
            },
        ),
        (
            "RotateSecret",
            {"RotationRules": {"AutomaticallyAfterDays": 1}},
            {"secretsmanager:ModifyRotationRules": ("true",)},
        ),
        (
            "DeleteSecret",
            {"RecoveryWindowInDays": 7},
            {"secretsmanager:RecoveryWindowInDays": ("7",)},
        ),
        ("ListSecrets", {"VersionId": "v"}, {}),  # a member another operation maps
    ],
)
def test_request_keys(operation: str, params: dict[str, Any], expected: dict[str, Any]) -> None:
    found = request_keys(operation, params)
    assert found == expected
    assert list(found) == list(expected)  # in the same order
    assert request_keys_for(operation)(None, operation, params) == expected


def test_each_request_gets_a_dictionary_of_its_own() -> None:
    keys = request_keys_for("GetSecretValue")
    first = keys(None, "GetSecretValue", {"VersionId": "v1"})
    first["extra"] = ("x",)
    assert keys(None, "GetSecretValue", {"VersionId": "v1"}) == {
        "secretsmanager:VersionId": ("v1",)
    }
    assert request_keys_for("GetSecretValue") is keys  # made once per operation
