"""Every operation of every served service, sent with each optional structure empty
(lists of structures holding one empty structure): validation runs before anything reads
a member, so the answer is an AWS error or a success, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.model import Shape

from strongroom.server.deployment import Deployment
from tests.inprocess import client, signing_at

# Values tried, in order, for a required string: the first its length and pattern accept.
CANDIDATES = (
    "test",
    "us-east-1",
    "arn:aws:iam::000000000000:role/r",
    "alias/test",
    "AKIAIOSFODNN7EXAMPLE",
    "00000000-0000-0000-0000-000000000000",
    "/",
    "1",
    "x" * 20,
)


def _string(shape: Shape) -> str:
    if shape.enum:
        return str(shape.enum[0])
    low = int(shape.metadata.get("min", 0))
    high = int(shape.metadata.get("max", 1 << 20))
    for candidate in CANDIDATES:
        if low <= len(candidate) <= high and _matches(shape.metadata.get("pattern"), candidate):
            return candidate
    return "x" * max(low, 1)


def _matches(pattern: str | None, candidate: str) -> bool:
    try:
        return pattern is None or re.fullmatch(pattern, candidate, re.DOTALL) is not None
    except re.error:  # a Java-only construct (\\p{...}): let the server judge the value
        return True


def value_for(shape: Shape, required: bool, depth: int = 0) -> Any:
    """A value for ``shape``: required scalars filled in, optional structures empty."""
    if shape.type_name == "structure":
        if not required or depth > 4:
            return {}
        return {
            name: value_for(member, True, depth + 1)
            for name, member in shape.members.items()
            if name in shape.required_members
        }
    if shape.type_name == "list":
        return [value_for(shape.member, False, depth + 1)]
    if shape.type_name == "map":
        return {}
    if shape.type_name == "string":
        return _string(shape)
    if shape.type_name in ("integer", "long"):
        return int(shape.metadata.get("min", 1))
    if shape.type_name == "boolean":
        return False
    if shape.type_name == "blob":
        return b"x"
    if shape.type_name == "timestamp":
        return 0
    return 1.0


def requests(shape: Shape | None) -> Iterator[dict[str, Any]]:
    """The required members filled in, and each optional structure or list of structures
    (one at a time) present but empty."""
    if shape is None:
        yield {}
        return
    base = {
        name: value_for(member, True)
        for name, member in shape.members.items()
        if name in shape.required_members
    }
    yield base
    for name, member in shape.members.items():
        if name in shape.required_members:
            continue
        if member.type_name == "structure":
            yield {**base, name: {}}
        elif member.type_name == "list" and member.member.type_name == "structure":
            yield {**base, name: [{}]}


def test_no_operation_answers_500_to_empty_structures(deployment: Deployment) -> None:
    failures: list[str] = []
    succeeded = 0
    specs = deployment.pipeline.services
    with signing_at(deployment.clock):
        for spec in specs:
            caller = client(deployment, spec.name, validate=False)
            for operation in sorted(spec.handlers):
                model = spec.model.operation_model(operation)
                for params in requests(model.input_shape):
                    try:
                        caller._make_api_call(operation, params)
                        succeeded += 1
                    except ClientError as error:
                        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
                        if status >= 500:
                            failures.append(f"{spec.name}.{operation} {params}: {status}")
                    except Exception as error:  # botocore could not even send it
                        pytest.fail(f"{spec.name}.{operation} {params}: {error!r}")
    assert failures == []
    # The filled-in required members are good enough that many calls get past validation.
    assert succeeded > 25, succeeded
