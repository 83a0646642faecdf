"""Reading a request body within its limit (strongroom/protocol/limits.py).

A body announced larger than its limit is refused on ``Content-Length`` alone, before a
byte of it is read; a body without a length (chunked) is counted as it arrives and
refused as soon as it passes the limit. Either way the worker never holds more than one
limit's worth of a request, whoever sends it."""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from strongroom.protocol.limits import BodyLimits, too_large


async def read_body(scope: Scope, receive: Receive, limits: BodyLimits) -> bytes:
    """The body of the request in ``scope``; :class:`ServiceError` (413) past its limit,
    :class:`ClientDisconnect` if the client leaves first."""
    length = target = authorization = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value
        elif name == b"x-amz-target":
            target = value
        elif name == b"authorization":
            authorization = value
    limit = limits.limit(target, authorization)
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise too_large(limit)
    return await read_limited(receive, limit)


async def read_limited(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
