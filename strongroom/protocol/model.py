"""Service models: botocore's shipped JSON models are the single source of truth for
operation names, members, constraints and error shapes."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

T = TypeVar("T")

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


def planned_on_first_use(build: Callable[[], Callable[..., Any] | None]) -> Callable[..., Any]:
    """The plan (a parser, checker, writer or redactor made once per shape) of a shape that
    contains itself, built the first time it runs: building it while building itself would
    never end. ``build`` may give None (nothing to do): then running it does nothing."""
    plan: Callable[..., Any] | None = None
    built = False

    def run(*args: Any) -> Any:
        nonlocal plan, built
        if not built:
            plan, built = build(), True
        return plan(*args) if plan is not None else None

    return run


def shape_plan(shape: Shape, slot: str, build: Callable[[Shape], T]) -> T:
    """``build(shape)``, made once and kept in ``slot`` of the shape object: botocore loads
    a model once and caches its shapes, so a request only runs the plan."""
    kept = shape.__dict__
    if slot not in kept:
        kept[slot] = build(shape)
    found: T = kept[slot]
    return found
