"""What the KMS modules share: constants, errors in KMS's words, and request checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.keys.repository import KeyRecord
from strongroom.protocol.errors import ServiceError, validation_error
from strongroom.types import Caller

Params = Mapping[str, Any]
Output = dict[str, Any]
SECRETS_MANAGER_ALIAS = "alias/aws/secretsmanager"
# The predefined aliases of AWS managed keys of the services Strongroom serves, listed
# before the key is first used.
PREDEFINED_ALIASES = (SECRETS_MANAGER_ALIAS,)
SYMMETRIC = "SYMMETRIC_DEFAULT"
MAX_ON_DEMAND_ROTATIONS = 25


def not_found(message: str) -> ServiceError:
    return ServiceError("NotFoundException", message)


def disabled(key: KeyRecord) -> ServiceError:
    return ServiceError("DisabledException", f"{key.arn} is disabled.")


def invalid_state(key: KeyRecord, what: str) -> ServiceError:
    return ServiceError("KMSInvalidStateException", f"{key.arn} is {what}.")


def invalid_ciphertext() -> ServiceError:
    return ServiceError("InvalidCiphertextException", "")


def unknown_ciphertext_key() -> ServiceError:
    """What AWS answers for a ciphertext whose key is gone, in another region, or not the
    caller's to use: one answer for all three, so absence is not told from refusal."""
    return ServiceError(
        "AccessDeniedException",
        "The ciphertext refers to a customer master key that does not exist, does not exist "
        "in this region, or you are not allowed to access.",
    )


def unsupported(message: str) -> ServiceError:
    return ServiceError("UnsupportedOperationException", message)


def access_denied(caller: Caller, action: str, key: KeyRecord) -> ServiceError:
    """What AWS answers when a key policy grants nothing: e.g. changing an AWS managed key,
    whose policy allows only Describe*/Get*/List* (and use through its service)."""
    return ServiceError(
        "AccessDeniedException",
        f"User: {caller.arn} is not authorized to perform: kms:{action} on resource: "
        f"{key.arn} because no resource-based policy allows the kms:{action} action",
    )


def ignores_ciphertext(params: Params) -> bool:
    """A dry run of Decrypt or ReEncrypt with DryRunModifiers IGNORE_CIPHERTEXT: only the
    named key's authorization and state are checked, not the ciphertext."""
    return bool(params.get("DryRun")) and "IGNORE_CIPHERTEXT" in (
        params.get("DryRunModifiers") or ()
    )


def _days_ms(days: int) -> int:
    return days * 86_400_000


def _check_algorithm(algorithm: str | None) -> None:
    if algorithm not in (None, SYMMETRIC):
        raise ServiceError(
            "InvalidKeyUsageException",
            f"The encryption algorithm {algorithm} is not compatible with symmetric keys.",
        )


def _check_alias_name(name: str) -> None:
    if not name.startswith("alias/") or name == "alias/":
        raise validation_error(
            'Alias must start with the prefix "alias/". Please see '
            "https://docs.aws.amazon.com/kms/latest/developerguide/"
            "kms-alias.html"
        )
    if name.startswith("alias/aws/"):
        raise ServiceError(
            "NotAuthorizedException",
            "AliasName cannot begin with alias/aws/: that prefix is reserved for AWS managed keys.",
        )


def _data_key_size(params: Params) -> int:
    spec, size = params.get("KeySpec"), params.get("NumberOfBytes")
    if spec is None and size is None:
        raise validation_error("Please specify either number of bytes or key spec.")
    if spec is not None and size is not None:
        raise validation_error("Please specify either number of bytes or key spec, not both.")
    if spec is not None:
        return {"AES_256": 32, "AES_128": 16}[spec]
    assert size is not None
    return int(size)


def _tags(existing: list[list[str]] | None, new: list[Mapping[str, str]]) -> list[list[str]]:
    merged = {k: v for k, v in existing or []}
    for tag in new:
        merged[tag["TagKey"]] = tag["TagValue"]
    return [[k, v] for k, v in merged.items()]
