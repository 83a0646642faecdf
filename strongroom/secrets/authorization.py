"""What each Secrets Manager operation asks of the authorizer, with the resource and
condition keys of the Service Authorization Reference for Secrets Manager."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.policy.checks import Check
from strongroom.protocol.service import CheckBuilder
from strongroom.secrets.checks import kms_key_arn_keys, request_keys, secret_check
from strongroom.secrets.service import SecretsManager
from strongroom.types import Caller

# Actions on "*": no secret is named.
_UNSCOPED = {"ListSecrets", "GetRandomPassword", "BatchGetSecretValue"}


def _unnamed_arn(caller: Caller, secret_id: str) -> tuple[str, str]:
    """The resource of a request for a secret that does not exist: the ARN as given, or
    the name in the caller's account (AWS answers AccessDenied before NotFound)."""
    if secret_id.startswith("arn:"):
        parts = secret_id.split(":")
        return secret_id, parts[4] if len(parts) > 4 else caller.account_id
    arn = f"arn:aws:secretsmanager:{caller.region}:{caller.account_id}:secret:{secret_id}"
    return arn, caller.account_id


def secretsmanager_checks(service: SecretsManager) -> CheckBuilder:
    def checks(caller: Caller, operation: str, params: Mapping[str, Any]) -> list[Check]:
        action = f"secretsmanager:{operation}"
        extra = request_keys(operation, params)
        if operation in ("CreateSecret", "UpdateSecret") and params.get("KmsKeyId"):
            key = service.kms_key(caller, str(params["KmsKeyId"]))
            extra.update(kms_key_arn_keys(key.arn if key is not None else None))
        if operation == "BatchGetSecretValue" and params.get("Filters"):
            # Choosing the secrets by filters lists them: AWS asks for ListSecrets too.
            return [Check(action, context=extra), Check("secretsmanager:ListSecrets")]
        if operation in _UNSCOPED:
            return [Check(action, context=extra)]
        if operation == "ValidateResourcePolicy" and not params.get("SecretId"):
            # Validating a policy needs the right to put it, too.
            return [Check(action, context=extra), Check("secretsmanager:PutResourcePolicy")]
        if operation == "CreateSecret":
            # The ARN the secret will have; its random suffix is not drawn yet.
            arn = (
                f"arn:aws:secretsmanager:{caller.region}:{caller.account_id}:secret:"
                f"{params['Name']}-??????"
            )
            return [Check(action, arn, caller.account_id, context=extra)]
        record = service.target(caller, params["SecretId"])
        if record is None:
            arn, account = _unnamed_arn(caller, params["SecretId"])
            return [Check(action, arn, account, context=extra)]
        found = [secret_check(action, record, extra)]
        if operation == "ValidateResourcePolicy":
            found.append(secret_check("secretsmanager:PutResourcePolicy", record, extra))
        return found

    return checks
