"""How large a request body may be, per service and operation, known before it is read.

The figures come from AWS's own limits (docs/limits.md lists each with its source): the
largest member an operation takes, as it travels on the wire (JSON escaping can make a
string up to six bytes per character, base64 makes a blob 4/3 larger, form encoding
up to three bytes per character), rounded up to a power of two. Everything else gets
:data:`DEFAULT_LIMIT`, which is far above any operation's realistic body.

The server compares ``Content-Length`` with the limit before reading a byte of the body
and counts bytes against it when there is no length (chunked), so an unauthenticated
client cannot make a worker hold more than one limit per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from strongroom.protocol.errors import ServiceError
from strongroom.protocol.model import service_model
from strongroom.protocol.rest_routes import RestRoutes

KIB = 1024
DEFAULT_LIMIT = 64 * KIB
# JSON nesting far deeper than any served operation's input needs.
MAX_JSON_DEPTH = 32

# service -> operation -> limit; an operation not named gets DEFAULT_LIMIT.
OPERATION_LIMITS: Mapping[str, Mapping[str, int]] = {
    "secretsmanager": {
        # SecretString: 65,536 bytes, up to 6 bytes each once JSON-escaped; SecretBinary:
        # 65,536 bytes, 87,384 once base64-encoded.
        "CreateSecret": 512 * KIB,
        "PutSecretValue": 512 * KIB,
        "UpdateSecret": 512 * KIB,
        # ResourcePolicy: 20,480 characters, JSON-escaped.
        "PutResourcePolicy": 128 * KIB,
        "ValidateResourcePolicy": 128 * KIB,
    },
    "kms": {
        # A key policy: 32,768 characters, JSON-escaped.
        "CreateKey": 256 * KIB,
        "PutKeyPolicy": 256 * KIB,
        "ReplicateKey": 256 * KIB,
    },
    "organizations": {
        # Policy Content: Organizations' quotas allow at most 10,000 characters (tag,
        # backup and declarative policies; 5,120 for service control policies), JSON-escaped.
        "CreatePolicy": 128 * KIB,
        "UpdatePolicy": 128 * KIB,
    },
    "lambda": {
        # A function's deployment package uploaded directly: 50 MB zipped (Lambda quotas),
        # 66.7 MB once base64-encoded in the JSON body.
        "CreateFunction": 72 * KIB * KIB,
        "UpdateFunctionCode": 72 * KIB * KIB,
        # Invoke's payload is the raw body: 6 MiB synchronous, 1 MiB asynchronous. Above
        # both, so that Invoke itself refuses a payload past its invocation type's limit,
        # with Lambda's message and audited (functions/common.py, payload_too_large).
        "Invoke": 8 * KIB * KIB,
    },
    "iam": {
        # Policy documents: up to 131,072 characters, form-encoded.
        "CreatePolicy": 512 * KIB,
        "CreatePolicyVersion": 512 * KIB,
        "PutUserPolicy": 512 * KIB,
        "PutGroupPolicy": 512 * KIB,
        "PutRolePolicy": 512 * KIB,
        "CreateRole": 512 * KIB,
        "UpdateAssumeRolePolicy": 512 * KIB,
        # A list of policy documents to try; a megabyte holds several of the largest.
        "SimulatePrincipalPolicy": 1024 * KIB,
        "SimulateCustomPolicy": 1024 * KIB,
    },
}


def depth_exceeds(document: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``document`` (decoded JSON) nests deeper than ``limit``; iterative, so a
    hostile document cannot exhaust the stack."""
    level: list[object] = [document]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[object] = []
        for value in level:
            if isinstance(value, dict):
                below.extend(value.values())
            elif isinstance(value, list):
                below.extend(value)
        level = [value for value in below if isinstance(value, dict | list)]
    return False


def too_large(limit: int, message: str | None = None) -> ServiceError:
    """AWS's refusal of a request body past ``limit`` bytes (HTTP 413); ``message``, where
    a service words it its own way (Lambda's Invoke: functions/common.py)."""
    return ServiceError(
        "RequestEntityTooLargeException",
        message or f"The request body is larger than this operation accepts ({limit} bytes).",
        status=413,
    )


def nested_too_deep() -> ServiceError:
    return ServiceError(
        "SerializationException",
        f"The request body nests deeper than {MAX_JSON_DEPTH} levels.",
    )


class BodyLimits:
    """The limit for a request, from what routes it: ``X-Amz-Target`` for the JSON
    services, the SigV4 credential scope for the Query ones (whose operation is in the
    body, so they get their largest operation's limit), the method and path for the REST
    ones (Lambda)."""

    def __init__(self, services: Iterable[str]) -> None:
        self._by_target: dict[bytes, int] = {}
        self._by_scope: dict[bytes, int] = {}
        self._rest: list[tuple[RestRoutes, Mapping[str, int]]] = []
        for name in services:
            model = service_model(name)
            limits = OPERATION_LIMITS.get(name, {})
            unknown = set(limits) - set(model.operation_names)
            if unknown:
                raise ValueError(f"limits for operations {name} does not have: {unknown}")
            prefix = model.metadata.get("targetPrefix")
            if model.metadata.get("protocol") == "rest-json":
                self._rest.append((RestRoutes(model), limits))
            elif prefix:
                for operation in model.operation_names:
                    target = f"{prefix}.{operation}".encode()
                    self._by_target[target] = limits.get(operation, DEFAULT_LIMIT)
            else:
                scope = str(model.metadata.get("signingName") or model.endpoint_prefix)
                self._by_scope[scope.encode()] = max([DEFAULT_LIMIT, *limits.values()])

    def limit(self, target: bytes | None, authorization: bytes | None) -> int:
        if target is not None:
            return self._by_target.get(target, DEFAULT_LIMIT)
        if authorization is not None:
            # "AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ..."
            parts = authorization.split(b"/", 4)
            if len(parts) == 5:
                return self._by_scope.get(parts[3], DEFAULT_LIMIT)
        return DEFAULT_LIMIT

    def limit_rest(self, method: str, path: str) -> int:
        """The limit of the REST operation a method and path name (queries never change
        which Lambda operation is meant)."""
        for routes, limits in self._rest:
            operation = routes.match(method, path, "")
            if operation is not None:
                return limits.get(operation, DEFAULT_LIMIT)
        return DEFAULT_LIMIT

    def largest(self) -> int:
        rest = [limit for _routes, limits in self._rest for limit in limits.values()]
        return max([DEFAULT_LIMIT, *self._by_target.values(), *self._by_scope.values(), *rest])
