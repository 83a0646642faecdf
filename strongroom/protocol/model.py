"""Service models: botocore's shipped JSON models are the single source of truth for
operation names, members, constraints and error shapes."""

from __future__ import annotations

from functools import cache

import botocore.session
from botocore.model import OperationModel, ServiceModel


@cache
def service_model(service: str) -> ServiceModel:
    """The botocore model of ``service`` (e.g. ``"secretsmanager"``), loaded once."""
    loader = botocore.session.get_session().get_component("data_loader")
    return ServiceModel(loader.load_service_model(service, "service-2"), service_name=service)


def operation_model(service: str, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)
