"""CloudTrail-shaped audit events, built from the request and the service model.

Members the model marks ``sensitive`` (secret values, passwords, tokens) are dropped,
found by the model's trait rather than a hand-kept list.

The shapes follow CloudTrail's record contents (eventVersion 1.11), its userIdentity
element (IAMUser, AssumedRole, Root; ``invokedBy`` for a service's own events) and its
AWS service events (``eventType`` ``AwsServiceEvent``, as KMS writes for ``RotateKey`` and
``DeleteKey``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.model import OperationModel, Shape

from strongroom.ids import unique_id
from strongroom.protocol.model import planned_on_first_use, shape_plan
from strongroom.types import Principal

EVENT_VERSION = "1.11"  # CloudTrail's current record format
READ_ONLY_PREFIXES = ("Get", "Describe", "List", "BatchGet", "Validate", "Lookup")
# KMS records its cryptographic operations as reads ("readOnly": true), like CloudTrail.
READ_ONLY_OPERATIONS = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateRandom",
        "GenerateMac",
        "VerifyMac",
        "Sign",
        "Verify",
        "DeriveSharedSecret",
        "SimulatePrincipalPolicy",
        "SimulateCustomPolicy",
    }
)
# CloudTrail's resource types by the service and resource of an ARN.
_RESOURCE_TYPES = {
    ("secretsmanager", "secret"): "AWS::SecretsManager::Secret",
    ("kms", "key"): "AWS::KMS::Key",
    ("kms", "alias"): "AWS::KMS::Alias",
    ("iam", "user"): "AWS::IAM::User",
    ("iam", "group"): "AWS::IAM::Group",
    ("iam", "role"): "AWS::IAM::Role",
    ("iam", "policy"): "AWS::IAM::Policy",
    ("iam", "instance-profile"): "AWS::IAM::InstanceProfile",
    ("sts", "assumed-role"): "AWS::STS::AssumedRole",
}


@dataclass(frozen=True)
class RequestFacts:
    request_id: str
    time: datetime
    source_ip: str
    user_agent: str
    region: str


def is_read_only(operation_name: str) -> bool:
    return operation_name.startswith(READ_ONLY_PREFIXES) or operation_name in READ_ONLY_OPERATIONS


def cloudtrail_resource_type(arn: str, default: str = "") -> str:
    """CloudTrail's type for the resource ``arn`` names, e.g. ``AWS::IAM::Role``."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return default
    kind = parts[5].split("/", 1)[0].split(":", 1)[0]
    return _RESOURCE_TYPES.get((parts[2], kind), default)


def user_identity(principal: Principal) -> dict[str, Any]:
    """CloudTrail's userIdentity for an authenticated caller. ``principalId`` is IAM's
    unique id (``AIDA...`` for a user, ``AROA...:<session>`` for a role session, the account
    id for root) when the credentials carry it; otherwise the access key id stands in."""
    identity: dict[str, Any] = {
        "type": "IAMUser",
        "principalId": principal.unique_id or principal.access_key_id,
        "arn": principal.arn,
        "accountId": principal.account_id,
        "accessKeyId": principal.access_key_id,
    }
    if principal.kind == "root" or principal.arn.endswith(":root"):
        identity["type"] = "Root"
        identity["principalId"] = principal.account_id
    elif principal.kind == "assumed-role" or ":assumed-role/" in principal.arn:
        identity["type"] = "AssumedRole"
        role_arn = principal.identity_arn
        issuer = {"type": "Role"}
        if principal.unique_id and ":" in principal.unique_id:
            issuer["principalId"] = principal.unique_id.split(":", 1)[0]
        issuer.update(
            arn=role_arn, accountId=principal.account_id, userName=role_arn.rsplit("/", 1)[-1]
        )
        identity["sessionContext"] = {
            "sessionIssuer": issuer,
            "attributes": {
                "mfaAuthenticated": "true"
                if principal.mfa_authenticated_ms is not None
                else "false"
            },
        }
        if principal.source_identity:
            identity["sessionContext"]["sourceIdentity"] = principal.source_identity
    elif principal.kind == "federated-user":
        identity["type"] = "FederatedUser"
        issuer_arn = principal.identity_arn
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Root" if issuer_arn.endswith(":root") else "IAMUser",
                "arn": issuer_arn,
                "accountId": principal.account_id,
                "userName": issuer_arn.rsplit("/", 1)[-1],
            },
            "attributes": {"mfaAuthenticated": "false"},
        }
    else:
        identity["userName"] = principal.arn.rsplit("/", 1)[-1]
    return identity


def unverified_identity(access_key_id: str, account_id: str | None) -> dict[str, Any]:
    """The userIdentity of a request whose signature was not verified: only the access
    key it claims (and that key's account, when the key exists)."""
    identity: dict[str, Any] = {"type": "Unknown", "accessKeyId": access_key_id}
    if account_id:
        identity["accountId"] = account_id
    return identity


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
    return _redactor(shape)(value)


# What redact does with one shape, worked out once per shape object (botocore's models are
# loaded once and their shapes cached, so a request only runs the plan): which members a
# structure keeps and under what name, and which values need a walk at all.
Redactor = Callable[[Any], Any]
_REDACTOR = "_strongroom_redactor"  # the slot in a shape's __dict__ holding its plan


def _redactor(shape: Shape) -> Redactor:
    return shape_plan(shape, _REDACTOR, lambda root: _plan(root, frozenset()))


def _nothing(value: Any) -> None:
    return None


def _leaf(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _plan(shape: Shape, active: frozenset[str]) -> Redactor:
    """The redactor of ``shape`` (never given None). ``active`` names the shapes being
    planned around it: a recursive shape is planned lazily, on first use."""
    if shape.metadata.get("sensitive") or shape.type_name == "blob":
        return _nothing
    if shape.name in active:
        return planned_on_first_use(lambda: _plan(shape, frozenset()))
    active = active | {shape.name}
    kind = shape.type_name
    if kind == "structure":
        return _structure_plan(shape, active)
    if kind == "list":
        return _list_plan(_plan(shape.member, active))
    if kind == "map":
        return _map_plan(_plan(shape.value, active))
    return _leaf


def _structure_plan(shape: Shape, active: frozenset[str]) -> Redactor:
    # Sensitive members (and blobs, never recorded) are simply not in the plan. A plain
    # member's plan is None: its value is kept as it is (a datetime in ISO form).
    members: dict[str, tuple[str, Redactor | None]] = {}
    for name, member in shape.members.items():
        plan = _plan(member, active)
        if plan is not _nothing:
            members[name] = (camel(name), None if plan is _leaf else plan)

    def redact_structure(value: Any) -> Any:
        if not isinstance(value, Mapping):
            return _leaf(value)
        kept = {}
        for name, item in value.items():
            if item is None:
                continue
            entry = members.get(name)
            if entry is None:
                continue
            key, plan = entry
            if plan is None:
                kept[key] = item.isoformat() if isinstance(item, datetime) else item
            else:
                cleaned = plan(item)
                if cleaned is not None:
                    kept[key] = cleaned
        return kept

    return redact_structure


def _list_plan(item_plan: Redactor) -> Redactor:
    def redact_list(value: Any) -> Any:
        if not isinstance(value, list):
            return _leaf(value)
        return [None if item is None else item_plan(item) for item in value]

    return redact_list


def _map_plan(value_plan: Redactor) -> Redactor:
    def redact_map(value: Any) -> Any:
        if not isinstance(value, Mapping):
            return _leaf(value)
        return {k: None if v is None else value_plan(v) for k, v in value.items()}

    return redact_map


def _event_time(moment: datetime) -> str:
    """``moment.strftime("%Y-%m-%dT%H:%M:%SZ")`` (its fields as they are, no conversion),
    in a third of the time."""
    return "%d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031 (the fastest spelling)
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
    )


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
    event_id: str | None = None,
) -> dict[str, Any]:
    read_only = is_read_only(operation_name)
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": dict(identity) if identity else {"type": "Unknown"},
        "eventTime": _event_time(facts.time),
        "eventSource": event_source,
        "eventName": operation_name,
        "awsRegion": facts.region,
        "sourceIPAddress": facts.source_ip,
        "userAgent": facts.user_agent,
        "requestParameters": redact(operation.input_shape, params) if operation else None,
        "responseElements": None
        if read_only or operation is None
        else redact(operation.output_shape, output),
        "resources": _resources(resources, resource_type),
        "requestID": facts.request_id,
        "eventID": event_id or unique_id(),
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


def build_service_event(
    *,
    time: datetime,
    event_source: str,
    event_name: str,
    account_id: str,
    region: str,
    invoked_by: str,
    resources: list[str],
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An event the service itself caused, not a request (CloudTrail's AwsServiceEvent):
    a KMS key rotated or deleted on schedule, a secret deleted after its recovery window.
    No request, so no requestParameters, responseElements or requestID; the identity is
    the account on whose behalf the service acted, ``invokedBy`` the service."""
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"accountId": account_id, "invokedBy": invoked_by},
        "eventTime": _event_time(time),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": invoked_by,
        "userAgent": invoked_by,
        "requestParameters": None,
        "responseElements": None,
        "eventID": unique_id(),
        "readOnly": False,
        "resources": _resources(resources, ""),
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    if details:
        event["serviceEventDetails"] = dict(details)
    return event


def _resources(arns: list[str] | None, default_type: str) -> list[dict[str, str]] | None:
    """CloudTrail's resources for ``arns`` (each split once; see cloudtrail_resource_type)."""
    if not arns:
        return None
    resources = []
    for arn in arns:
        parts = arn.split(":", 5)
        if len(parts) < 6:
            continue
        kind = parts[5].split("/", 1)[0].split(":", 1)[0]
        resources.append(
            {
                "accountId": parts[4],
                "type": _RESOURCE_TYPES.get((parts[2], kind), default_type),
                "ARN": arn,
            }
        )
    return resources or None
