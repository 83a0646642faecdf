"""The ``lambda`` service as the pipeline serves it (REST-JSON, botocore's model)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.functions.authorization import lambda_checks
from strongroom.functions.service import FunctionService
from strongroom.protocol.service import Handler, ServiceSpec, snake_case

OPERATIONS = (
    "CreateFunction",
    "GetFunction",
    "GetFunctionConfiguration",
    "ListFunctions",
    "UpdateFunctionCode",
    "UpdateFunctionConfiguration",
    "DeleteFunction",
    "AddPermission",
    "RemovePermission",
    "GetPolicy",
    "PutFunctionEventInvokeConfig",
    "GetFunctionEventInvokeConfig",
    "UpdateFunctionEventInvokeConfig",
    "DeleteFunctionEventInvokeConfig",
    "ListFunctionEventInvokeConfigs",
)


def lambda_spec(service: FunctionService) -> ServiceSpec:
    handlers: dict[str, Handler] = {name: getattr(service, snake_case(name)) for name in OPERATIONS}
    handlers["Invoke"] = service.invoke_operation
    return ServiceSpec(
        "lambda",
        handlers,
        "AWS::Lambda::Function",
        function_arns,
        lambda_checks(service, [*OPERATIONS, "Invoke"]),
    )


def function_arns(params: Mapping[str, Any], output: Mapping[str, Any] | None) -> list[str]:
    if output and output.get("FunctionArn"):
        return [str(output["FunctionArn"])]
    if output and isinstance(output.get("Configuration"), Mapping):
        return [str(output["Configuration"]["FunctionArn"])]
    name = str(params.get("FunctionName", ""))
    return [name] if name.startswith("arn:") else []
