"""Built-in rotation of a random value (an API key, a token) that no external system has to
learn: createSecret draws a new value with GetRandomPassword (the rules of the function's
environment: ``PASSWORD_LENGTH``, ``EXCLUDE_CHARACTERS``, ...), setSecret and testSecret
have nothing to do, finishSecret makes it current.

A secret whose value is a JSON object keeps its other members: the member named by
``VALUE_FIELD`` (default ``password``) gets the new value. Any other value is replaced whole.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

try:
    from . import rotation_steps as steps
except ImportError:  # loaded as Lambda loads a handler: a top-level module of the code
    import rotation_steps as steps  # type: ignore[no-redef,import-not-found,unused-ignore]

logger = logging.getLogger("strongroom.rotators")


def create(client: steps.Client, arn: str, token: str) -> None:
    current = client.get_secret_value(SecretId=arn, VersionStage=steps.CURRENT)
    if steps.pending_exists(client, arn, token):
        logger.info("createSecret: the AWSPENDING value of %s exists already", arn)
        return
    new_value = steps.random_password(client)
    text = current.get("SecretString")
    document: Any = None
    if text is not None:
        try:
            document = json.loads(text)
        except ValueError:
            document = None
    if isinstance(document, dict):
        document[os.environ.get("VALUE_FIELD") or "password"] = new_value
        steps.put_pending(client, arn, token, document)
    else:
        steps.put_pending(client, arn, token, new_value)


def _nothing(client: steps.Client, arn: str, token: str) -> None:
    """No external system holds the value."""


STEPS = steps.Steps(create=create, set=_nothing, test=_nothing)


def rotate(event: dict[str, Any], context: Any) -> None:
    """Lambda handler: a random value."""
    steps.handle(event, STEPS)
