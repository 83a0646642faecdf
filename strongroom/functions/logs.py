"""The CloudWatch Logs subset over the functions' invocation logs: each function's log
group is ``/aws/lambda/<name>``, each invocation one log stream
(``YYYY/MM/DD/[$LATEST]<request id>``), each line of its log one event.

Served: ``FilterLogEvents`` (log stream names, a time range, a filter pattern of terms
that must all appear, or one quoted phrase), ``GetLogEvents`` and ``DescribeLogStreams``,
through the pipeline like every API (SigV4, ``logs:*`` authorization, audit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from strongroom.functions.base import LOG_GROUP
from strongroom.policy.operation_checks import Authorization, Resource, reference_checks
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec, request_scope
from strongroom.protocol.service import Handler, ServiceSpec, snake_case
from strongroom.store import schema
from strongroom.store.engine import Store
from strongroom.types import Caller

Params = Mapping[str, Any]
OPERATIONS = ("FilterLogEvents", "GetLogEvents", "DescribeLogStreams")
DEFAULT_LIMIT = 10_000


@dataclass(frozen=True)
class _Invocation:
    request_id: str
    function_name: str
    started_ms: int
    duration_ms: int
    log: str

    @property
    def stream(self) -> str:
        day = datetime.fromtimestamp(self.started_ms / 1000, UTC).strftime("%Y/%m/%d")
        return f"{day}/[$LATEST]{self.request_id.replace('-', '')}"

    def events(self) -> list[dict[str, Any]]:
        lines = self.log.splitlines()
        found = []
        for index, line in enumerate(lines):
            # START at the start, END and REPORT at the end, the rest in between.
            at = self.started_ms if index == 0 else self.started_ms + self.duration_ms
            found.append(
                {
                    "logStreamName": self.stream,
                    "timestamp": at,
                    "ingestionTime": at,
                    "message": line + "\n",
                    "eventId": f"{self.request_id}-{index:06d}",
                }
            )
        return found


def _not_found() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "The specified log group does not exist.")


def _group_arn(caller: Caller, group: str) -> str:
    return f"arn:aws:logs:{caller.region}:{caller.account_id}:log-group:{group}"


class FunctionLogs:
    def __init__(self, store: Store, tokens: TokenCodec) -> None:
        self._store = store
        self._tokens = tokens

    def _function(self, params: Params) -> str:
        group = str(params.get("logGroupName") or params.get("logGroupIdentifier") or "")
        group = group.rsplit(":log-group:", 1)[-1]
        if not group.startswith(LOG_GROUP):
            raise _not_found()
        return group[len(LOG_GROUP) :]

    def _invocations(self, caller: Caller, name: str) -> list[_Invocation]:
        t = schema.lambda_invocations
        with self._store.read() as conn:
            rows = conn.execute(
                select(t)
                .where(
                    t.c.account_id == caller.account_id,
                    t.c.region == caller.region,
                    t.c.function_name == name,
                )
                .order_by(t.c.started_ms, t.c.request_id)
            ).all()
        if not rows:
            raise _not_found()
        return [
            _Invocation(row.request_id, row.function_name, row.started_ms, row.duration_ms, row.log)
            for row in rows
        ]

    def _page(
        self, operation: str, params: Params, items: Sequence[Any], default: int
    ) -> tuple[list[Any], str | None]:
        scope = request_scope(operation, {k: v for k, v in params.items() if k != "nextToken"})
        start = 0
        if params.get("nextToken"):
            start = int(self._tokens.decode(scope, str(params["nextToken"]))["at"])
        limit = int(params.get("limit") or default)
        page = list(items[start : start + limit])
        more = start + limit < len(items)
        return page, self._tokens.encode(scope, {"at": start + limit}) if more else None

    def filter_log_events(self, caller: Caller, params: Params) -> dict[str, Any]:
        invocations = self._invocations(caller, self._function(params))
        wanted = set(params.get("logStreamNames") or ())
        prefix = params.get("logStreamNamePrefix") or ""
        start, end = params.get("startTime"), params.get("endTime")
        matches = _pattern(params.get("filterPattern") or "")
        events = [
            event
            for invocation in invocations
            if (not wanted or invocation.stream in wanted) and invocation.stream.startswith(prefix)
            for event in invocation.events()
            if (start is None or event["timestamp"] >= start)
            and (end is None or event["timestamp"] <= end)
            and matches(event["message"])
        ]
        page, token = self._page("FilterLogEvents", params, events, DEFAULT_LIMIT)
        out: dict[str, Any] = {"events": page}
        if token:
            out["nextToken"] = token
        return out

    def get_log_events(self, caller: Caller, params: Params) -> dict[str, Any]:
        invocations = self._invocations(caller, self._function(params))
        stream = str(params["logStreamName"])
        found = [invocation for invocation in invocations if invocation.stream == stream]
        if not found:
            raise ServiceError(
                "ResourceNotFoundException", "The specified log stream does not exist."
            )
        events = found[0].events()
        token = f"f/{len(events):056d}"
        return {"events": events, "nextForwardToken": token, "nextBackwardToken": "b/" + "0" * 56}

    def describe_log_streams(self, caller: Caller, params: Params) -> dict[str, Any]:
        name = self._function(params)
        invocations = self._invocations(caller, name)
        streams: list[dict[str, Any]] = [
            {
                "logStreamName": invocation.stream,
                "creationTime": invocation.started_ms,
                "firstEventTimestamp": invocation.started_ms,
                "lastEventTimestamp": invocation.started_ms + invocation.duration_ms,
                "lastIngestionTime": invocation.started_ms + invocation.duration_ms,
                "arn": f"{_group_arn(caller, LOG_GROUP + name)}:log-stream:{invocation.stream}",
            }
            for invocation in invocations
            if invocation.stream.startswith(params.get("logStreamNamePrefix") or "")
        ]
        if params.get("orderBy") == "LastEventTime":
            streams.sort(key=lambda stream: stream["lastEventTimestamp"])
        else:
            streams.sort(key=lambda stream: stream["logStreamName"])
        if params.get("descending"):
            streams.reverse()
        page, token = self._page("DescribeLogStreams", params, streams, 50)
        out: dict[str, Any] = {"logStreams": page}
        if token:
            out["nextToken"] = token
        return out


def _pattern(text: str) -> Any:
    """CloudWatch's filter pattern, for unstructured lines: every term must appear (case
    sensitive); a quoted pattern is one phrase."""
    text = text.strip()
    if not text:
        return lambda _message: True
    if len(text) >= 2 and text[0] == text[-1] == '"':
        phrase = text[1:-1]
        return lambda message: phrase in message
    terms = [term.strip('"') for term in text.split()]
    return lambda message: all(term in message for term in terms)


def _group_resolver(caller: Caller, _operation: str, params: Params) -> Sequence[Resource]:
    group = str(params.get("logGroupName") or params.get("logGroupIdentifier") or "")
    return [Resource(_group_arn(caller, group.rsplit(":log-group:", 1)[-1]), caller.account_id)]


def _stream_resolver(caller: Caller, operation: str, params: Params) -> Sequence[Resource]:
    (group,) = _group_resolver(caller, operation, params)
    return [Resource(f"{group.arn}:log-stream:{params.get('logStreamName', '')}", group.account)]


def logs_spec(logs: FunctionLogs) -> ServiceSpec:
    handlers: dict[str, Handler] = {name: getattr(logs, snake_case(name)) for name in OPERATIONS}
    authorization = Authorization(
        "logs", {"log-group": _group_resolver, "log-stream": _stream_resolver}
    )
    return ServiceSpec(
        "logs",
        handlers,
        "AWS::Logs::LogGroup",
        checks=reference_checks(authorization, OPERATIONS),
    )
