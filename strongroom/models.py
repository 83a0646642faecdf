"""botocore's shipped service models, loaded once: the single source of truth for operation
names, members, constraints and error shapes. At the bottom of the layering, so the shared
types (:mod:`strongroom.types`) can describe a service by its model."""

from __future__ import annotations

from functools import cache

import botocore.session
from botocore.model import OperationModel, ServiceModel

# Credentials the shipped models do not mark sensitive: an STS session token is half of
# a temporary credential. Marked here, they stay out of audit records and validation
# messages like every member the model marks.
_ALSO_SENSITIVE = {"sts": ("tokenType",)}


@cache
def service_model(service: str) -> ServiceModel:
    """The botocore model of ``service`` (e.g. ``"secretsmanager"``), loaded once."""
    loader = botocore.session.get_session().get_component("data_loader")
    description = loader.load_service_model(service, "service-2")
    shapes = description["shapes"]
    for name in _ALSO_SENSITIVE.get(service, ()):
        shapes[name] = {**shapes[name], "sensitive": True}
    return ServiceModel(description, service_name=service)


def operation_model(service: str, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)
