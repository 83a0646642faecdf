"""strongroom/protocol/model.py: plans made once per shape, and plans of shapes that
contain themselves made on first use."""

from __future__ import annotations

from typing import Any

from strongroom.protocol.model import planned_on_first_use, service_model, shape_plan


def test_a_plan_is_made_once_per_shape_object_and_may_be_none() -> None:
    shape = service_model("secretsmanager").operation_model("GetSecretValue").input_shape
    assert shape is not None
    made: list[str] = []

    def build(of: Any) -> None:
        made.append(of.name)

    assert shape_plan(shape, "_test_plan", build) is None
    assert shape_plan(shape, "_test_plan", build) is None
    assert made == [shape.name]
    del shape.__dict__["_test_plan"]


def test_a_plan_made_on_first_use_is_built_once_and_none_does_nothing() -> None:
    builds: list[int] = []

    def build() -> Any:
        builds.append(1)
        return lambda value, path: f"{path}={value}"

    plan = planned_on_first_use(build)
    assert builds == []  # not while planning
    assert plan(1, "a") == "a=1"
    assert plan(2, "b") == "b=2"
    assert builds == [1]
    assert planned_on_first_use(lambda: None)("anything") is None
