"""The CloudWatch Logs subset over the functions' invocation logs: each function's log
group is ``/aws/lambda/<name>``, each invocation one log stream
(``YYYY/MM/DD/[$LATEST]<request id>``), each line of its log one event.

Served: ``FilterLogEvents`` (log stream names, a time range, a filter pattern of terms
that must all appear, or one quoted phrase), ``GetLogEvents``, ``DescribeLogStreams``,
``DescribeLogGroups``, ``PutRetentionPolicy``, ``DeleteRetentionPolicy``,
``DeleteLogGroup`` and ``DeleteLogStream``, through the pipeline like every API (SigV4,
``logs:*`` authorization from the reference, audit). The logs are kept sealed
(:mod:`strongroom.functions.log_groups`): reads open them, and a filter pattern is
matched after opening.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.functions.common import LOG_GROUP
from strongroom.functions.log_groups import RETENTION_DAYS, LogGroup, LogGroups, StoredLog
from strongroom.policy.operation_checks import Authorization, Resource, reference_checks
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec, request_scope
from strongroom.protocol.service import Handler, ServiceSpec, snake_case
from strongroom.types import Caller

Params = Mapping[str, Any]
OPERATIONS = (
    "FilterLogEvents",
    "GetLogEvents",
    "DescribeLogStreams",
    "DescribeLogGroups",
    "PutRetentionPolicy",
    "DeleteRetentionPolicy",
    "DeleteLogGroup",
    "DeleteLogStream",
)
DEFAULT_LIMIT = 10_000


def _events(invocation: StoredLog) -> list[dict[str, Any]]:
    stream = invocation.stream
    # A retry's events are told apart from the first attempt's (same request id).
    prefix = invocation.request_id + ("" if invocation.attempt == 1 else f"-{invocation.attempt}")
    found = []
    for index, line in enumerate(invocation.log.splitlines()):
        # START at the start, END and REPORT at the end, the rest in between.
        at = invocation.started_ms if index == 0 else invocation.started_ms + invocation.duration_ms
        found.append(
            {
                "logStreamName": stream,
                "timestamp": at,
                "ingestionTime": at,
                "message": line + "\n",
                "eventId": f"{prefix}-{index:06d}",
            }
        )
    return found


def _not_found() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "The specified log group does not exist.")


def _stream_not_found() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "The specified log stream does not exist.")


def _bad_retention(value: Any) -> ServiceError:
    allowed = ", ".join(str(days) for days in RETENTION_DAYS)
    return ServiceError(
        "InvalidParameterException",
        f"1 validation error detected: Value '{value}' at 'retentionInDays' failed to satisfy "
        f"constraint: Member must satisfy enum value set: [{allowed}]",
    )


def _group_arn(caller: Caller, group: str) -> str:
    return f"arn:aws:logs:{caller.region}:{caller.account_id}:log-group:{group}"


class FunctionLogs:
    def __init__(self, groups: LogGroups, tokens: TokenCodec) -> None:
        self._groups = groups
        self._tokens = tokens

    def _group(self, caller: Caller, params: Params) -> LogGroup:
        name = str(params.get("logGroupName") or params.get("logGroupIdentifier") or "")
        name = name.rsplit(":log-group:", 1)[-1]
        if not name.startswith(LOG_GROUP):
            raise _not_found()
        group = self._groups.find(caller.account_id, caller.region, name[len(LOG_GROUP) :])
        if group is None:
            raise _not_found()
        return group

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
        wanted = set(params.get("logStreamNames") or ())
        prefix = params.get("logStreamNamePrefix") or ""
        start, end = params.get("startTime"), params.get("endTime")
        matches = _pattern(params.get("filterPattern") or "")
        invocations = self._groups.logs(
            self._group(caller, params),
            only=lambda stored: (
                (not wanted or stored.stream in wanted) and stored.stream.startswith(prefix)
            ),
        )
        events = [
            event
            for invocation in invocations
            for event in _events(invocation)
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
        stream = str(params["logStreamName"])
        group = self._group(caller, params)
        found = self._groups.logs(group, only=lambda stored: stored.stream == stream)
        if not found:
            raise _stream_not_found()
        events = [event for attempt in found for event in _events(attempt)]
        token = f"f/{len(events):056d}"
        return {"events": events, "nextForwardToken": token, "nextBackwardToken": "b/" + "0" * 56}

    def describe_log_streams(self, caller: Caller, params: Params) -> dict[str, Any]:
        group = self._group(caller, params)
        by_stream: dict[str, dict[str, Any]] = {}
        for invocation in self._groups.logs(group, opened=False):  # oldest first
            if not invocation.stream.startswith(params.get("logStreamNamePrefix") or ""):
                continue
            stream = by_stream.setdefault(
                invocation.stream,
                {
                    "logStreamName": invocation.stream,
                    "creationTime": invocation.started_ms,
                    "firstEventTimestamp": invocation.started_ms,
                    "arn": f"{group.arn}:log-stream:{invocation.stream}",
                },
            )
            # Every attempt of a request (asynchronous retries) is in its one stream.
            last = max(stream.get("lastEventTimestamp", 0), invocation.ended_ms)
            stream["lastEventTimestamp"] = stream["lastIngestionTime"] = last
        streams = list(by_stream.values())
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

    def describe_log_groups(self, caller: Caller, params: Params) -> dict[str, Any]:
        prefix = params.get("logGroupNamePrefix") or ""
        pattern = params.get("logGroupNamePattern") or ""
        groups = []
        for group, size in self._groups.listing(caller.account_id, caller.region):
            if not (group.name.startswith(prefix) and pattern in group.name):
                continue
            described: dict[str, Any] = {
                "logGroupName": group.name,
                "creationTime": group.created_ms,
                "metricFilterCount": 0,
                "arn": group.arn + ":*",
                "logGroupArn": group.arn,
                "storedBytes": size,
                "logGroupClass": "STANDARD",
            }
            if group.retention_days is not None:  # absent when the logs never expire
                described["retentionInDays"] = group.retention_days
            groups.append(described)
        page, token = self._page("DescribeLogGroups", params, groups, 50)
        out: dict[str, Any] = {"logGroups": page}
        if token:
            out["nextToken"] = token
        return out

    def put_retention_policy(self, caller: Caller, params: Params) -> dict[str, Any]:
        days = params.get("retentionInDays")
        if isinstance(days, bool) or days not in RETENTION_DAYS:
            raise _bad_retention(days)
        self._groups.set_retention(self._group(caller, params), int(days))
        return {}

    def delete_retention_policy(self, caller: Caller, params: Params) -> dict[str, Any]:
        self._groups.set_retention(self._group(caller, params), None)
        return {}

    def delete_log_group(self, caller: Caller, params: Params) -> dict[str, Any]:
        self._groups.delete_group(self._group(caller, params))
        return {}

    def delete_log_stream(self, caller: Caller, params: Params) -> dict[str, Any]:
        group = self._group(caller, params)
        stream = str(params.get("logStreamName") or "")
        found = self._groups.logs(group, opened=False, only=lambda stored: stored.stream == stream)
        if not found:
            raise _stream_not_found()
        self._groups.delete_stream(group, found[0].request_id)
        return {}


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
