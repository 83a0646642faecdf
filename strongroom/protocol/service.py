"""What the pipeline needs to know about one AWS service we serve."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.model import ServiceModel

from strongroom.policy.checks import Check
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.model import service_model


def snake_case(operation: str) -> str:
    """``GetSecretValue`` -> ``get_secret_value``: the domain method serving an operation."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


Handler = Callable[[Any, Mapping[str, Any]], Mapping[str, Any] | None]
# (caller, operation, params) -> what the authorizer must allow before the operation runs.
CheckBuilder = Callable[[Any, str, Mapping[str, Any]], list[Check]]
# (principal, the check refused) -> the error a service gives for a refusal, when it is
# not the authorizer's (STS names no reason).
Refusal = Callable[[Any, Check], Exception]
# (params, output or None) -> the ARNs an event is about, for the audit record.
ResourceFinder = Callable[[Mapping[str, Any], Mapping[str, Any] | None], list[str]]


def _no_resources(_params: Mapping[str, Any], _output: Mapping[str, Any] | None) -> list[str]:
    return []


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # botocore's service name and the IAM action prefix, e.g. "secretsmanager"
    handlers: Mapping[str, Handler]  # operation name -> handler(caller, params)
    resource_type: str = ""  # CloudTrail's type for resources, e.g. AWS::SecretsManager::Secret
    resources_of: ResourceFinder = _no_resources
    checks: CheckBuilder | None = None  # None: the action on "*"
    refused: Refusal | None = None  # None: the authorizer's AccessDenied as it is

    def checks_for(self, caller: Any, operation: str, params: Mapping[str, Any]) -> list[Check]:
        if self.checks is None:
            return [Check(f"{self.name}:{operation}")]
        return self.checks(caller, operation, params)

    def authorize(
        self,
        caller: Any,
        operation: str,
        params: Mapping[str, Any],
        authorize: Callable[[Check], None],
    ) -> None:
        """Ask ``authorize`` about every check of the operation; the first refusal is
        raised (in the service's words when it has its own)."""
        for check in self.checks_for(caller, operation, params):
            if self.refused is None:
                authorize(check)
                continue
            try:
                authorize(check)
            except ServiceError as denied:
                if denied.code != "AccessDeniedException":
                    raise
                raise self.refused(caller.principal, check) from None

    @property
    def model(self) -> ServiceModel:
        return service_model(self.name)

    @property
    def target_prefix(self) -> str:
        return str(self.model.metadata.get("targetPrefix", ""))

    @property
    def signing_name(self) -> str:
        return str(self.model.metadata.get("signingName") or self.model.endpoint_prefix)

    @property
    def protocol(self) -> str:
        return str(self.model.metadata["protocol"])

    @property
    def event_source(self) -> str:
        return f"{self.model.endpoint_prefix}.amazonaws.com"
