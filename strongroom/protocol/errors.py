"""AWS-shaped errors.

Every failure a client can see is a :class:`ServiceError` carrying the AWS error code
(``__type`` on the JSON wire, ``Code`` in Query XML), the HTTP status and a message.
Messages never contain secret material: callers pass only identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from botocore.model import ServiceModel


class ServiceError(Exception):
    """An error answered to the client in the AWS error shape."""

    def __init__(self, code: str, message: str, status: int = 400, sender_fault: bool = True):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.sender_fault = sender_fault

    def __repr__(self) -> str:
        return f"ServiceError({self.code!r}, {self.message!r}, status={self.status})"


# What a request that breaks the model's constraints is called, by botocore's protocol name;
# the JSON protocols' ValidationException otherwise.
_VALIDATION_CODES = {"query": "ValidationError"}


def validation_error(message: str, protocol: str = "json") -> ServiceError:
    """The one validation error: ``ValidationException``, or ``ValidationError`` for a
    service speaking the Query protocol (IAM, STS: ``protocol="query"``)."""
    return ServiceError(_VALIDATION_CODES.get(protocol, "ValidationException"), message)


@lru_cache(maxsize=32)
def modeled_errors(service: ServiceModel) -> Mapping[str, tuple[int, bool]]:
    """Error code -> (HTTP status, sender fault), from the error shapes of ``service``
    (``"error": {"code": "NoSuchEntity", "httpStatusCode": 404}``)."""
    errors: dict[str, tuple[int, bool]] = {}
    for shape in service.error_shapes:
        trait: Mapping[str, Any] = shape.metadata.get("error") or {}
        code = str(trait.get("code", shape.name))
        status = int(trait.get("httpStatusCode", 400))
        errors[code] = (status, bool(trait.get("senderFault", status < 500)))
    return errors


def serialization_error(message: str) -> ServiceError:
    return ServiceError("SerializationException", message)


def internal_error(message: str = "An internal error occurred. Try again later.") -> ServiceError:
    return ServiceError("InternalServiceError", message, status=500, sender_fault=False)


# Authentication failures, with the codes and texts AWS answers for JSON-protocol services.
def missing_authentication() -> ServiceError:
    return ServiceError("MissingAuthenticationTokenException", "Missing Authentication Token")


def unrecognized_client() -> ServiceError:
    return ServiceError(
        "UnrecognizedClientException", "The security token included in the request is invalid."
    )


def expired_token() -> ServiceError:
    """Temporary credentials past their expiration."""
    return ServiceError(
        "ExpiredTokenException", "The security token included in the request is expired"
    )


def invalid_signature(message: str | None = None) -> ServiceError:
    return ServiceError(
        "InvalidSignatureException",
        message
        or "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details.",
    )


def incomplete_signature(message: str) -> ServiceError:
    return ServiceError("IncompleteSignatureException", message)
