"""Audit records rendered from templates: the canonical bytes of a record that a server
writes again and again with only its ids, its time and a member or two changed.

Every record is serialized on the event loop that served its request (orjson, keys
sorted; integrity.canonical). The KMS call Secrets Manager makes on a caller's behalf
(``Decrypt`` on every read, audit/events.py's build_on_behalf_event) is such a record:
for one caller, one region and one key it is the same but for its event id, request id,
time and encryption context. A :class:`RecordTemplate` is the canonical form of an event
cut around those members, once; a record is then its parts joined with the members'
bytes, instead of a dict of 18 members built, serialized and sorted for every read.

What is written does not change, byte for byte: a template is used only once a record
rendered from it has been found equal to the canonical form of the same event built as a
dict (checked when the template is made), and the members put in its holes are made by
this server in fixed forms (UUIDs, the record time's text, a serialized JSON value).
tests/unit/test_audit_templates.py compares the two ways; ``strongroom audit verify``
recomputes every record's canonical form from the written line.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import orjson
from botocore.model import OperationModel

from strongroom.audit.derived import OnBehalf
from strongroom.audit.events import (
    GLOBAL_REGION,
    GLOBAL_SOURCES,
    RequestFacts,
    build_event,
    build_on_behalf_event,
    cross_account_copies,
    recorded_members,
    resource_elements,
)
from strongroom.audit.identities import event_time, principal_identity
from strongroom.audit.integrity import PLAIN_ONLY, canonical
from strongroom.ids import unique_id_pair
from strongroom.types import Principal

_MARK = "\x00%d"  # a member no event holds: orjson writes it escaped, as "\u0000<n>"


class RecordTemplate:
    """The canonical bytes of ``event`` cut around the members named in ``texts`` (strings
    written as they are, between the quotes: ids, times) and ``values`` (any JSON value,
    given serialized). :attr:`holes` lists them in the order their bytes are given to
    :meth:`render`: the record's order (sorted, as canonical sorts keys)."""

    __slots__ = ("holes", "parts")

    def __init__(self, event: Mapping[str, Any], texts: Sequence[str], values: Sequence[str]):
        if set(texts) & set(values) or not set(texts) | set(values) <= set(event):
            raise ValueError("each hole must be one member of the event")
        self.holes = tuple(sorted((*texts, *values)))
        marked = dict(event)
        for index, name in enumerate(self.holes):
            marked[name] = _MARK % index
        data = canonical(marked)
        parts: list[bytes] = []
        for index, name in enumerate(self.holes):
            mark = b"\\u0000%d" % index
            if name in values:
                mark = b'"' + mark + b'"'
            if data.count(mark) != 1:
                raise ValueError(f"the member {name} cannot be cut out of this event")
            head, _, data = data.partition(mark)
            parts.append(head)
        parts.append(data)
        self.parts = tuple(parts)

    def render(self, pieces: Sequence[bytes]) -> bytes:
        """The record with ``pieces`` (one per hole, in :attr:`holes` order) in its holes."""
        if len(pieces) != len(self.holes):
            raise ValueError(f"{len(self.holes)} pieces expected, {len(pieces)} given")
        joined: list[bytes] = [self.parts[0]]
        for piece, part in zip(pieces, self.parts[1:], strict=True):
            joined += (piece, part)
        return b"".join(joined)


class _Templates:
    """Templates learnt per key, at most ``capacity`` (when full, all are dropped and
    learnt again); a key whose records the template cannot render maps to None."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._learned: dict[Hashable, tuple[bytes, ...] | None] = {}

    def __len__(self) -> int:
        return len(self._learned)

    def _learn(
        self,
        key: Hashable,
        built: dict[str, Any],
        texts: Sequence[str],
        values: Sequence[str],
        pieces: Sequence[bytes],
    ) -> tuple[bytes, ...] | None:
        """Remember under ``key`` the template cut from ``built`` (the record built as a
        dict, with ``pieces`` as its holes' bytes) and return its parts; None (remembered
        too) where other accounts get copies of the record, or where the template does not
        render ``pieces`` into ``built``'s canonical form."""
        parts: tuple[bytes, ...] | None = None
        if not cross_account_copies(dict(built)):
            try:
                template = RecordTemplate(built, texts, values)
                if template.render(pieces) == canonical(built):
                    parts = template.parts
            except (TypeError, ValueError):  # not plain JSON, or not cut cleanly
                pass
        if len(self._learned) >= self._capacity:
            self._learned.clear()
        self._learned[key] = parts
        return parts


# An on-behalf record's holes, in record order.
_TEXTS = ("eventID", "eventTime", "requestID")
_VALUES = ("requestParameters",)


class OnBehalfRecords(_Templates):
    """The records of the calls made on callers' behalf (audit/derived.py's
    :class:`OnBehalf`), rendered from a template per caller, region and call: what
    :func:`build_on_behalf_event` and the log's serialization make of them, made in a
    fraction of the time. One per server (an event loop's thread uses it alone)."""

    def render(
        self, facts: RequestFacts, event: Mapping[str, Any], call: OnBehalf, caller: Principal
    ) -> bytes | None:
        """The canonical record of ``build_on_behalf_event(facts, event, call)`` with new
        ids, or None where only the dict will do (its requestParameters are not plain
        JSON, or other accounts get copies of it): build that instead. ``caller``: what
        ``event``'s userIdentity is made from, and only from."""
        key = (
            caller,
            facts.region,
            call.invoked_by,
            call.event_source,
            call.event_name,
            call.resources,
        )
        parts = self._learned.get(key, _UNKNOWN)
        if parts is None:
            return None
        try:
            parameters = _dumps(call.request_parameters, option=PLAIN_ONLY)
        except TypeError:  # not plain JSON (or not a dict): the dict's way decides
            return None
        ids = request_id, event_id = unique_id_pair()
        time = event["eventTime"]
        if parts is _UNKNOWN:
            built = build_on_behalf_event(facts, event, call, ids)
            pieces = (event_id.encode(), time.encode(), request_id.encode(), parameters)
            parts = self._learn(key, built, _TEXTS, _VALUES, pieces)
            if parts is None:
                return None
        return b"".join(
            (
                parts[0],
                event_id.encode(),
                parts[1],
                time.encode(),
                parts[2],
                request_id.encode(),
                parts[3],
                parameters,
                parts[4],
            )
        )


# A request record's holes, in record order.
_REQUEST_VALUES = (
    "eventID",
    "eventTime",
    "requestID",
    "requestParameters",
    "resources",
    "responseElements",
    "sourceIPAddress",
    "userAgent",
)
assert tuple(sorted(_REQUEST_VALUES)) == _REQUEST_VALUES  # RecordTemplate's holes, in order


class RequestRecords(_Templates):
    """The records of requests that succeeded for an authenticated caller (audit/events.py's
    :func:`build_event`), rendered from a template per caller, region, service and
    operation: the members that vary from one request to the next (ids, time, what is
    kept of the input and output, the resources, the client's address and agent) are
    serialized each time, the rest joined from the template's parts. One per server (an
    event loop's thread uses it alone)."""

    def render(
        self,
        facts: RequestFacts,
        caller: Principal,
        event_source: str,
        operation: OperationModel,
        operation_name: str,
        params: Mapping[str, Any] | None,
        output: Mapping[str, Any] | None,
        resources: Sequence[str],
        resource_type: str,
        event_id: str,
    ) -> tuple[bytes, str] | None:
        """The canonical record of ``build_event(...)`` for this request (no error, the
        identity of ``caller``) and its ``eventTime``; or None where only the dict will do
        (another account owns one of its resources: it gets a copy; or a member is not
        plain JSON): build that instead."""
        elements = resource_elements(resources, resource_type)
        if elements:
            account = caller.account_id
            for element in elements:
                if element["accountId"] != account:
                    return None
        region = GLOBAL_REGION if event_source in GLOBAL_SOURCES else facts.region
        key = (caller, region, event_source, operation_name)
        parts = self._learned.get(key, _UNKNOWN)
        if parts is None:
            return None
        _, parameters, response = recorded_members(
            event_source, operation, operation_name, params, output
        )
        time = event_time(facts.time)
        dumps = _dumps
        try:
            pieces = (
                dumps(event_id),
                dumps(time),
                dumps(facts.request_id),
                dumps(parameters, option=PLAIN_ONLY),
                dumps(elements),
                dumps(response, option=PLAIN_ONLY),
                dumps(facts.source_ip),
                dumps(facts.user_agent),
            )
        except TypeError:  # not plain JSON: the dict's way (normalize) decides
            return None
        if parts is _UNKNOWN:
            built = build_event(
                facts=facts,
                event_source=event_source,
                operation=operation,
                operation_name=operation_name,
                identity=principal_identity(caller),
                params=params,
                output=output,
                error_code=None,
                error_message=None,
                resources=resources,
                resource_type=resource_type,
                event_id=event_id,
            )
            parts = self._learn(key, built, (), _REQUEST_VALUES, pieces)
            if parts is None:
                return None
        return (
            b"".join(
                (
                    parts[0],
                    pieces[0],
                    parts[1],
                    pieces[1],
                    parts[2],
                    pieces[2],
                    parts[3],
                    pieces[3],
                    parts[4],
                    pieces[4],
                    parts[5],
                    pieces[5],
                    parts[6],
                    pieces[6],
                    parts[7],
                    pieces[7],
                    parts[8],
                )
            ),
            time,
        )


_UNKNOWN: Any = object()  # no template learnt yet
_dumps = orjson.dumps
