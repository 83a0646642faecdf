"""CloudTrail-shaped audit events, built from the request and the service model.

Members the model marks ``sensitive`` (secret values, passwords, tokens) are dropped,
found by the model's trait rather than a hand-kept list.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.model import OperationModel, Shape

READ_ONLY_PREFIXES = ("Get", "Describe", "List", "BatchGet", "Validate", "Lookup")


@dataclass(frozen=True)
class RequestFacts:
    request_id: str
    time: datetime
    source_ip: str
    user_agent: str
    region: str


def camel(member: str) -> str:
    """CloudTrail's spelling of a member name: ``SecretId`` -> ``secretId``,
    ``ARN`` -> ``arn``, ``KMSKeyArn`` -> ``kmsKeyArn``."""
    head = len(member) - len(member.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    if head == 0:
        return member
    if head == len(member):
        return member.lower()
    cut = head - 1 if head > 1 else 1
    return member[:cut].lower() + member[cut:]


def redact(shape: Shape | None, value: Any) -> Any:
    """``value`` with every member under a sensitive shape removed and member names
    spelled as CloudTrail spells them."""
    if shape is None or value is None:
        return None
    if shape.metadata.get("sensitive"):
        return None
    if shape.type_name == "structure" and isinstance(value, Mapping):
        members = shape.members
        kept = {}
        for name, item in value.items():
            member = members.get(name)
            if member is None or member.metadata.get("sensitive"):
                continue
            cleaned = redact(member, item)
            if cleaned is not None:
                kept[camel(name)] = cleaned
        return kept
    if shape.type_name == "list" and isinstance(value, list):
        return [redact(shape.member, item) for item in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {k: redact(shape.value, v) for k, v in value.items()}
    if shape.type_name == "blob":
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def build_event(
    *,
    facts: RequestFacts,
    event_source: str,
    operation: OperationModel | None,
    operation_name: str,
    identity: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
    output: Mapping[str, Any] | None,
    error_code: str | None,
    error_message: str | None,
    resources: list[str] | None = None,
    resource_type: str = "",
) -> dict[str, Any]:
    read_only = operation_name.startswith(READ_ONLY_PREFIXES)
    event: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": dict(identity) if identity else {"type": "Unknown"},
        "eventTime": facts.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": event_source,
        "eventName": operation_name,
        "awsRegion": facts.region,
        "sourceIPAddress": facts.source_ip,
        "userAgent": facts.user_agent,
        "requestParameters": redact(operation.input_shape, params) if operation else None,
        "responseElements": None
        if read_only or operation is None
        else redact(operation.output_shape, output),
        "resources": [
            {"ARN": arn, "accountId": arn.split(":")[4], "type": resource_type}
            for arn in resources or []
        ]
        or None,
        "requestID": facts.request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": identity.get("accountId") if identity else None,
        "eventCategory": "Management",
    }
    if error_code:
        event["errorCode"] = error_code
        event["errorMessage"] = error_message
    return event
