"""Invoke's request payload limit by invocation type (functions/common.py): Lambda's
figures in bytes, the last byte of each accepted, the next refused with Lambda's error."""

from __future__ import annotations

import pytest

from strongroom.functions.common import MAX_PAYLOAD_BYTES, payload_too_large
from strongroom.protocol.limits import OPERATION_LIMITS


@pytest.mark.parametrize(
    ("kind", "limit"),
    [("RequestResponse", 6_291_456), ("DryRun", 6_291_456), ("Event", 1_048_576)],
)
def test_a_payload_of_the_limit_passes_and_one_byte_more_is_refused(kind: str, limit: int) -> None:
    assert MAX_PAYLOAD_BYTES[kind] == limit
    assert payload_too_large(kind, 0) is None
    assert payload_too_large(kind, limit) is None
    refused = payload_too_large(kind, limit + 1)
    assert refused is not None
    assert (refused.code, refused.status) == ("RequestEntityTooLargeException", 413)
    assert refused.message == (
        f"{limit + 1} byte payload is too large for the {kind} invocation type "
        f"(limit {limit} bytes)"
    )


def test_the_http_body_limit_lets_every_invocation_type_refuse_for_itself() -> None:
    """Past Invoke's body limit the server refuses before authentication, unaudited and in
    its own words: that limit must stay above the largest payload an Invoke takes."""
    assert OPERATION_LIMITS["lambda"]["Invoke"] > max(MAX_PAYLOAD_BYTES.values())
