"""What Secrets Manager's modules share: quotas and page sizes, errors with AWS's own texts,
the value a request carries, and tag helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from strongroom.protocol.errors import ServiceError
from strongroom.secrets import labels
from strongroom.types import Caller

Params = Mapping[str, Any]
Output = dict[str, Any]
MAX_VERSIONS = 100
DEPRECATED_GRACE = timedelta(hours=24)
DEFAULT_RECOVERY_DAYS = 30
LIST_PAGE = 100
BATCH_PAGE = 20
_CHUNK = 200
SCAN_BUDGET = 5000  # rows one ListSecrets call may scan before it answers with a NextToken
MANAGED_KEY = "alias/aws/secretsmanager"


@lru_cache(maxsize=1024)
def _acting_for(account_id: str, region: str) -> Caller:
    """The caller Secrets Manager is when it uses the account's KMS keys for a secret:
    made once per account and region, as every read of a value needs it."""
    return Caller(account_id, region)


def not_found() -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException", "Secrets Manager can't find the specified secret."
    )


def _invalid_request(message: str) -> ServiceError:
    return ServiceError("InvalidRequestException", message)


def _invalid_parameter(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def _marked_for_deletion() -> ServiceError:
    return _invalid_request(
        "You can't perform this operation on the secret because it was marked for deletion."
    )


def _replica_readonly() -> ServiceError:
    return _invalid_parameter(
        "Operation not permitted on a replica secret. Call must be made in primary secret's region."
    )


def _check_label_quota(stages: labels.Stages) -> None:
    """AWS quota: at most 20 staging labels across all versions of a secret (user guide,
    "Secrets Manager quotas"); the declared error of PutSecretValue, UpdateSecret and
    UpdateSecretVersionStage for a quota is LimitExceededException."""
    if len(stages) > labels.MAX_LABELS:
        raise ServiceError(
            "LimitExceededException",
            f"A secret can have at most {labels.MAX_LABELS} staging labels attached across "
            "all of its versions.",
        )


def _decryption_failure() -> ServiceError:
    return ServiceError(
        "DecryptionFailure",
        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
    )


def _encryption_failure(cause: ServiceError) -> ServiceError:
    # KMS's own message names only the key, never data, so it is safe and useful to pass on.
    return ServiceError(
        "EncryptionFailure",
        "Secrets Manager can't encrypt the protected secret text using the provided KMS key. "
        f"Check that the KMS key is available, enabled, and not in an invalid state. "
        f"({cause.code}: {cause.message})",
    )


def token_in_use(token: str, arn: str) -> ServiceError:
    return ServiceError(
        "ResourceExistsException",
        f"You can't use ClientRequestToken {token} because that value is already in use for "
        f"a version of secret {arn}.",
    )


def bad_rotation_token() -> ServiceError:
    """PutSecretValue's RotationToken is not the one of this secret's rotation in progress.
    AWS documents that it "validates the identity with the rotation token", not the error
    a token that fails the check gets. Decision: AccessDeniedException (the identity was
    not validated; AWS's common error for a caller it refuses), in our words. The token
    itself is never echoed."""
    return ServiceError(
        "AccessDeniedException",
        "The RotationToken isn't valid: it doesn't belong to a rotation of this secret "
        "that is in progress.",
    )


_NEED_TOKEN = "You must provide a ClientRequestToken value. We recommend a UUID-type value."  # noqa: S105 - a message, not a password
_BOTH_VALUES = (
    "You can't specify both a binary secret value and a string secret value in the same secret."
)


@dataclass(frozen=True)
class _Value:
    kind: str  # "string" | "binary"
    data: bytes

    def __repr__(self) -> str:
        return f"_Value(kind={self.kind!r}, <{len(self.data)} bytes>)"

    def output(self) -> Output:
        if self.kind == "string":
            return {"SecretString": self.data.decode()}
        return {"SecretBinary": self.data}


def _value_from(params: Params) -> _Value | None:
    string, binary = params.get("SecretString"), params.get("SecretBinary")
    if string is not None and binary is not None:
        raise _invalid_parameter(_BOTH_VALUES)
    if string is not None:
        return _Value("string", string.encode())
    if binary is not None:
        return _Value("binary", binary)
    return None


def _merge_tags(existing: list[list[str]] | None, new: list[Mapping[str, str]]) -> list[list[str]]:
    merged = {k: v for k, v in existing or []}
    for tag in new:
        merged[tag.get("Key", "")] = tag.get("Value", "")
    return [[k, v] for k, v in merged.items()]


MAX_TAGS = 50  # "Maximum number of tags per secret: 50" (TagResource API reference)
RESERVED_TAG_PREFIX = "aws:"


def _check_user_tags(keys: Iterable[str]) -> None:
    """Tag keys a client may set or remove: not ``aws:``-prefixed, in any case ("Do not use
    the aws: prefix [...] You can't edit or delete tag names or values with this prefix").
    Decision: InvalidParameterException (an error TagResource's reference lists), in our
    words. This is also what keeps ``OwningService`` true: only a service sets it."""
    for key in keys:
        if key.lower().startswith(RESERVED_TAG_PREFIX):
            raise ServiceError(
                "InvalidParameterException",
                f"Tag key {key} is not valid: the aws: prefix is reserved for AWS use.",
            )


def _tags_within_quota(tags: list[list[str]]) -> list[list[str]]:
    """``tags`` if they are at most :data:`MAX_TAGS` (AWS's ``aws:`` tags would not count;
    clients cannot set any). Decision: InvalidParameterException, in our words."""
    if len(tags) > MAX_TAGS:
        raise ServiceError(
            "InvalidParameterException",
            f"A secret can have at most {MAX_TAGS} tags; this request would give it {len(tags)}.",
        )
    return tags
