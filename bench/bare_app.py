"""The ceiling: a bare ASGI app that reads the request and answers a fixed
GetSecretValue-sized body, served by uvicorn with Strongroom's flags (uvloop, httptools).

    python -m uvicorn bench.bare_app:app --loop uvloop --http httptools
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from bench.secretdata import secret_name, secret_value

Message = MutableMapping[str, Any]

BODY = orjson.dumps(
    {
        "ARN": f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{secret_name(0)}-AbCdEf",
        "Name": secret_name(0),
        "VersionId": "5f2bd9d3-0b0b-4bd6-9d43-5f1f0b1c2d3e",
        "SecretString": secret_value(),
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1767225600.0,
    }
)
HEADERS = [
    (b"content-type", b"application/x-amz-json-1.1"),
    (b"content-length", str(len(BODY)).encode()),
]


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the whole request body, as a real handler must
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
