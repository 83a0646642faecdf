"""ListSecrets pages are positioned by (sort key, creation time, name) within the caller's
account and region: a NextToken (signed, readable) carries no row id, which would tell
how many secrets every tenant created before it."""

from __future__ import annotations

import base64
import json
import uuid

from strongroom.iam.credentials import admin_arn
from strongroom.secrets.service import SecretsManager
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.types import Caller

SM = Caller(DEV_ACCOUNT, "us-east-1", admin_arn(DEV_ACCOUNT))


def token_state(token: str) -> dict[str, object]:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    state: dict[str, object] = json.loads(raw[1:-32])  # version byte, payload, HMAC tag
    return state


def test_pages_are_positioned_by_name_among_equal_sort_keys(deployment: Deployment) -> None:
    secrets: SecretsManager = deployment.secrets
    names = [f"tie/{letter}" for letter in "edcba"]  # created at the same (injected) instant
    for name in names:
        secrets.create_secret(
            SM, {"Name": name, "SecretString": "v", "ClientRequestToken": str(uuid.uuid4())}
        )
    seen: list[str] = []
    params: dict[str, object] = {"MaxResults": 2, "SortBy": "created-date"}
    while True:
        page = secrets.list_secrets(SM, params)
        seen += [entry["Name"] for entry in page["SecretList"]]
        token = page.get("NextToken")
        if token is None:
            break
        state = token_state(token)
        assert set(state) == {"key", "created", "name"} and state["name"] in names
        params = {**params, "NextToken": token}
    assert seen == sorted(names)
