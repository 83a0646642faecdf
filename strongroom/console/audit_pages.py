"""Audit events (CloudTrail LookupEvents with its filters, an event's JSON) and the
rotation functions (the Lambda-compatible service's ListFunctions and GetFunction)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.responses import Response

from strongroom.console.backend import ApiError
from strongroom.console.web import Console, page

ATTRIBUTE_KEYS = (
    "EventName", "Username", "ResourceName", "ResourceType", "EventSource", "ReadOnly",
    "AccessKeyId", "EventId",
)  # fmt: skip


def _time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@page
async def events(console: Console) -> Response:
    query = console.request.query_params
    key = query.get("key", "")
    value = query.get("value", "").strip()
    start, end = _time(query.get("start", "")), _time(query.get("end", ""))
    looked = await console.attempt(
        "cloudtrail",
        "LookupEvents",
        LookupAttributes=(
            [{"AttributeKey": key, "AttributeValue": value}]
            if key in ATTRIBUTE_KEYS and value
            else None
        ),
        StartTime=start,
        EndTime=end,
        MaxResults=50,
        NextToken=query.get("token") or None,
    )
    return console.render(
        "events.html",
        events=[] if isinstance(looked, ApiError) else looked.get("Events", []),
        next_token=None if isinstance(looked, ApiError) else looked.get("NextToken"),
        error=looked if isinstance(looked, ApiError) else None,
        keys=ATTRIBUTE_KEYS,
        key=key,
        value=value,
        start=query.get("start", ""),
        end=query.get("end", ""),
    )


@page
async def functions(console: Console) -> Response:
    query = console.request.query_params
    listed = await console.attempt(
        "lambda", "ListFunctions", MaxItems=50, Marker=query.get("marker") or None
    )
    name = query.get("name", "")
    detail = await console.attempt("lambda", "GetFunction", FunctionName=name) if name else None
    return console.render(
        "functions.html",
        functions=[] if isinstance(listed, ApiError) else listed.get("Functions", []),
        next_marker=None if isinstance(listed, ApiError) else listed.get("NextMarker"),
        error=listed if isinstance(listed, ApiError) else None,
        name=name,
        detail=None if detail is None or isinstance(detail, ApiError) else detail,
        detail_error=detail if isinstance(detail, ApiError) else None,
    )
