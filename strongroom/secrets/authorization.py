"""What each Secrets Manager operation asks of the authorizer: generated from the
Service Authorization Reference (:mod:`strongroom.policy.operation_checks`), with the
secret resolved here and the request keys of :mod:`strongroom.secrets.checks`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from strongroom.policy.checks import Check
from strongroom.policy.operation_checks import (
    Authorization,
    CheckBuilder,
    ContextValues,
    Resource,
    reference_checks,
)
from strongroom.secrets.checks import kms_key_arn_keys, request_keys_for, secret_keys
from strongroom.secrets.service import SecretsManager
from strongroom.types import Caller


def _unnamed_arn(caller: Caller, secret_id: str) -> tuple[str, str]:
    """The resource of a request for a secret that does not exist: the ARN as given, or
    the name in the caller's account (AWS answers AccessDenied before NotFound)."""
    if secret_id.startswith("arn:"):
        parts = secret_id.split(":")
        return secret_id, parts[4] if len(parts) > 4 else caller.account_id
    arn = f"arn:aws:secretsmanager:{caller.region}:{caller.account_id}:secret:{secret_id}"
    return arn, caller.account_id


def secret_resolver(service: SecretsManager) -> Any:
    """The resolver of the ``Secret`` resource type: the stored secret with its resource
    policy and keys; for CreateSecret the ARN the secret will have."""

    def resolve(caller: Caller, operation: str, params: Mapping[str, Any]) -> Sequence[Resource]:
        if operation == "CreateSecret":
            # The ARN the secret will have; its random suffix is not drawn yet.
            arn = (
                f"arn:aws:secretsmanager:{caller.region}:{caller.account_id}:secret:"
                f"{params['Name']}-??????"
            )
            return [Resource(arn, caller.account_id)]
        if not params.get("SecretId"):
            return []  # ValidateResourcePolicy of a policy alone
        record = service.target(caller, params["SecretId"])
        if record is None:
            arn, account = _unnamed_arn(caller, params["SecretId"])
            return [Resource(arn, account)]
        # tuple.__new__ makes the Resource from its fields in order (asserted below),
        # without the generated __new__'s Python frame: one a request naming a secret.
        fields = (record.arn, record.account_id, record.resource_policy, False)
        return [tuple.__new__(Resource, (*fields, secret_keys(record), False))]

    return resolve


def request_keys_of(service: SecretsManager) -> Any:
    """The condition keys Secrets Manager's request members define, per operation
    (:func:`~strongroom.secrets.checks.request_keys_for`); KmsKeyId also as the ARN of the
    key it names (``secretsmanager:KmsKeyArn``)."""

    def keys_for(operation: str) -> Any:
        members = request_keys_for(operation)
        if operation not in ("CreateSecret", "UpdateSecret"):
            return members

        def keys(caller: Caller, operation: str, params: Mapping[str, Any]) -> ContextValues:
            found = members(caller, operation, params)
            if params.get("KmsKeyId"):
                key = service.kms_key(caller, str(params["KmsKeyId"]))
                found.update(kms_key_arn_keys(key.arn if key is not None else None))
            return found

        return keys

    return keys_for


def _also_put_resource_policy(
    _caller: Caller, _params: Mapping[str, Any], found: Sequence[Check]
) -> list[Check]:
    # ValidateResourcePolicy API reference, "Required permissions":
    # secretsmanager:ValidateResourcePolicy and secretsmanager:PutResourcePolicy.
    return [replace(check, action="secretsmanager:PutResourcePolicy") for check in found]


def _also_invoke_function(
    _caller: Caller, params: Mapping[str, Any], _found: Sequence[Check]
) -> list[Check]:
    # RotateSecret API reference, "Required permissions": passing a rotation function to
    # Secrets Manager also needs lambda:InvokeFunction on it.
    function = params.get("RotationLambdaARN")
    if not function:
        return []
    parts = str(function).split(":")
    account = parts[4] if len(parts) > 4 and parts[4] else None
    return [Check("lambda:InvokeFunction", str(function), resource_account=account)]


def _filters_list_secrets(
    _caller: Caller, params: Mapping[str, Any], _found: Sequence[Check]
) -> list[Check]:
    # BatchGetSecretValue API reference, "Required permissions": with Filters, choosing
    # the secrets lists them, so secretsmanager:ListSecrets too.
    return [Check("secretsmanager:ListSecrets")] if params.get("Filters") else []


def secretsmanager_authorization(service: SecretsManager) -> Authorization:
    base = Authorization(
        "secretsmanager",
        {"Secret": secret_resolver(service)},
        dependent={
            "ValidateResourcePolicy": _also_put_resource_policy,
            "BatchGetSecretValue": _filters_list_secrets,
            "RotateSecret": _also_invoke_function,
        },
        request_keys_for=request_keys_of(service),
    )
    get_policy = reference_checks(base, ("GetResourcePolicy",))

    def list_policies(caller: Caller, _operation: str, params: Mapping[str, Any]) -> list[Check]:
        # ListResourcePolicies is newer than the Service Authorization Reference data we
        # pin; its API reference: "Required permissions: secretsmanager:ListResourcePolicies",
        # on the secret, as GetResourcePolicy is.
        return [
            replace(check, action="secretsmanager:ListResourcePolicies")
            for check in get_policy(caller, "GetResourcePolicy", params)
        ]

    return replace(base, replace={"ListResourcePolicies": list_policies})


def secretsmanager_checks(service: SecretsManager, operations: Sequence[str]) -> CheckBuilder:
    return reference_checks(secretsmanager_authorization(service), operations)


assert Resource._fields == ("arn", "account", "policy", "key_policy", "keys", "bounded"), (
    "the secret resolver makes a Resource field by field: keep them in step"
)
