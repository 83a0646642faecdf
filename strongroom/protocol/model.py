"""Plans made once per botocore shape: the parsers, checkers, writers and redactors the
protocol code walks a request with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botocore.model import Shape

# Loaded in strongroom.models (below the shared types); named here for the protocol code.
from strongroom.models import operation_model, service_model

__all__ = ["operation_model", "planned_on_first_use", "service_model", "shape_plan"]

T = TypeVar("T")


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
