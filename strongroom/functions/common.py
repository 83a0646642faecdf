"""What the function service's modules share: names, ARNs, Lambda's errors."""

from __future__ import annotations

import re
from datetime import UTC

from strongroom.clock import from_ms
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.limits import too_large

SERVICE_PRINCIPAL = "lambda.amazonaws.com"
RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")
DEFAULT_TIMEOUT = 3  # seconds, as Lambda
DEFAULT_MEMORY = 128  # MB, as Lambda
MAX_ZIP_BYTES = 50 * 1000 * 1000  # a direct upload, zipped
MAX_UNZIPPED_BYTES = 250 * 1000 * 1000  # the deployment package, unzipped
MAX_POLICY_BYTES = 20 * 1024  # a function's resource policy
# Invoke's request payload (the raw body), by invocation type. Lambda's Invoke API
# reference and the Payload member of botocore's model: "The maximum payload size is 6 MB
# for synchronous invocations and 1 MB for asynchronous invocations" (the asynchronous
# limit was 256 KB until AWS raised it in October 2025: AWS Compute Blog, "More room to
# build: serverless services now support payloads up to 1 MB"). Lambda counts them in
# bytes of 1024 * 1024 and refuses with RequestEntityTooLargeException, HTTP 413, "N byte
# payload is too large for the RequestResponse invocation type (limit 6291456 bytes)"
# ("... Event ... (limit 1048576 bytes)"), as clients have logged it; a payload of exactly
# the limit is accepted. botocore's model names the error RequestTooLargeException, which
# the service does not send. DryRun runs nothing: given the synchronous limit.
MAX_PAYLOAD_BYTES = {
    "RequestResponse": 6 * 1024 * 1024,
    "DryRun": 6 * 1024 * 1024,
    "Event": 1024 * 1024,
}
# Keys a function's own variables may not set (Lambda's reserved environment variables).
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)

LOG_GROUP = "/aws/lambda/"  # a function's log group is LOG_GROUP + its name


def log_stream(request_id: str, at_ms: int) -> str:
    """The log stream of one invocation, as Lambda names them: its day and request id."""
    day = from_ms(at_ms).astimezone(UTC).strftime("%Y/%m/%d")
    return f"{day}/[$LATEST]{request_id.replace('-', '')}"


_ARN = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"function:(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?"
)
_PARTIAL = re.compile(r"(?P<account>\d{12}):function:(?P<name>[a-zA-Z0-9_-]+)")
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def function_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def name_parts(reference: str, region: str, account: str) -> tuple[str, str, str]:
    """(region, account, name) of a FunctionName as Lambda takes it: a name, a full ARN
    or a partial ARN (``123456789012:function:name``)."""
    match = _ARN.fullmatch(reference)
    if match is not None:
        if match.group("qualifier") not in (None, "$LATEST"):
            raise not_found(reference)  # versions and aliases are not served
        return match.group("region"), match.group("account"), match.group("name")
    match = _PARTIAL.fullmatch(reference)
    if match is not None:
        return region, match.group("account"), match.group("name")
    if _NAME.fullmatch(reference) is None:
        raise invalid_parameter(f"Function name {reference!r} is not valid.")
    return region, account, reference


def payload_too_large(invocation_type: str, size: int) -> ServiceError | None:
    """Lambda's refusal of an Invoke payload of ``size`` bytes, or None within the limit
    of its invocation type."""
    limit = MAX_PAYLOAD_BYTES.get(invocation_type, MAX_PAYLOAD_BYTES["RequestResponse"])
    if size <= limit:
        return None
    return too_large(
        limit,
        f"{size} byte payload is too large for the {invocation_type} invocation type "
        f"(limit {limit} bytes)",
    )


def not_found(what: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Function not found: {what}", 404)


def no_policy() -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException", "The resource you requested does not exist.", 404
    )


def conflict(message: str) -> ServiceError:
    return ServiceError("ResourceConflictException", message, 409)


def invalid_parameter(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message)


def builtin_refused(name: str) -> ServiceError:
    """A built-in function is part of the server: it cannot be changed or deleted."""
    return ServiceError(
        "AccessDeniedException",
        f"Function {name} is a Strongroom built-in rotation function; it cannot be changed "
        "or deleted.",
        403,
    )
