"""CloudTrail-shaped audit events, built from the request and the service model.

Members the model marks ``sensitive`` (secret values, passwords, tokens) are dropped,
found by the model's trait rather than a hand-kept list.

The shapes follow CloudTrail's record contents (eventVersion 1.11), its userIdentity
element (IAMUser, AssumedRole, Root; ``invokedBy`` for a service's own events) and its
AWS service events (``eventType`` ``AwsServiceEvent``, as KMS writes for ``RotateKey`` and
``DeleteKey``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from botocore.model import OperationModel, Shape

from strongroom.clock import from_ms
from strongroom.ids import unique_id
from strongroom.protocol.model import planned_on_first_use, shape_plan
from strongroom.types import Principal

EVENT_VERSION = "1.11"  # CloudTrail's current record format
READ_ONLY_PREFIXES = ("Get", "Describe", "List", "BatchGet", "Validate", "Lookup")
# KMS records its cryptographic operations as reads ("readOnly": true), like CloudTrail;
# so are STS's credential requests (they change no resource).
READ_ONLY_OPERATIONS = frozenset(
    {
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "AssumeRoot",
        "DecodeAuthorizationMessage",
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
        # CloudWatch Logs' read of log events (as CloudTrail records it): its response,
        # the log events (a function's output, sealed at rest), is not recorded.
        "FilterLogEvents",
    }
)
# Read-only, yet CloudTrail records their responseElements: the credentials they issue
# (without the secret), so a session key can be traced to the call that made it.
RESPONSE_RECORDED = frozenset(
    {
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "AssumeRoot",
        "GetSessionToken",
        "GetFederationToken",
    }
)
# Global services: CloudTrail records their calls in us-east-1 whatever region the client
# signed for ("global service events"). STS is served as its global endpoint.
GLOBAL_REGION = "us-east-1"
GLOBAL_SOURCES = frozenset(
    {"iam.amazonaws.com", "sts.amazonaws.com", "organizations.amazonaws.com"}
)
# Members that hold a credential though the model does not mark them sensitive (an MFA
# one-time code, a session token, ...): never recorded, like the sensitive ones.
CREDENTIAL_MEMBERS = frozenset(
    {
        "TokenCode",
        "AuthenticationCode1",
        "AuthenticationCode2",
        "SessionToken",
        "SecretAccessKey",
        "Password",
        "OldPassword",
        "NewPassword",
        "PrivateKey",
        "SAMLAssertion",
        "WebIdentityToken",
        "ClientSecret",
        "SSHPublicKeyBody",
    }
)
# Sensitive members CloudTrail keeps, masked (Organizations' CreateAccount): the record
# says they were given, never what they were.
MASKED_MEMBERS = frozenset({"Email", "AccountName"})
MASK = "****"
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
    id for root) when the credentials carry it; otherwise the access key id stands in.
    Temporary credentials carry ``sessionContext.attributes`` (when they were issued,
    whether with MFA): a role session's with its ``sessionIssuer``, GetSessionToken's on
    the IAM user's (or root's) own identity."""
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
            "webIdFederationData": {},
            "attributes": session_attributes(principal),
        }
        if principal.source_identity:
            identity["sessionContext"]["sourceIdentity"] = principal.source_identity
        return identity
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
            "attributes": session_attributes(principal),
        }
        return identity
    else:
        identity["userName"] = principal.arn.rsplit("/", 1)[-1]
    if principal.session_token:
        identity["sessionContext"] = {"attributes": session_attributes(principal)}
    return identity


def session_attributes(principal: Principal) -> dict[str, str]:
    """``sessionContext.attributes``: when the credentials were issued, and with MFA or not."""
    attributes = {
        "mfaAuthenticated": "true" if principal.mfa_authenticated_ms is not None else "false"
    }
    if principal.token_issued_ms is not None:
        attributes["creationDate"] = _event_time(from_ms(principal.token_issued_ms))
    return attributes


def account_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """The userIdentity a resource owner's copy of a cross-account call shows: the calling
    account and its principal's id, nothing more (CloudTrail's ``AWSAccount``)."""
    shown: dict[str, Any] = {"type": "AWSAccount"}
    if identity.get("principalId"):
        shown["principalId"] = identity["principalId"]
    shown["accountId"] = identity.get("accountId")
    return shown


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
        if name in CREDENTIAL_MEMBERS:
            continue
        if name in MASKED_MEMBERS and member.type_name == "string":
            members[name] = (camel(name), _masked)
            continue
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


def _masked(value: Any) -> str:
    return MASK


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
    request_parameters = redact(operation.input_shape, params) if operation else None
    if event_source == KMS_SOURCE and request_parameters is not None and output:
        _kms_parameters(request_parameters, output)
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": dict(identity) if identity else {"type": "Unknown"},
        "eventTime": _event_time(facts.time),
        "eventSource": event_source,
        "eventName": operation_name,
        "awsRegion": GLOBAL_REGION if event_source in GLOBAL_SOURCES else facts.region,
        "sourceIPAddress": facts.source_ip,
        "userAgent": facts.user_agent,
        "requestParameters": request_parameters,
        "responseElements": None
        if operation is None or (read_only and operation_name not in RESPONSE_RECORDED)
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


KMS_SOURCE = "kms.amazonaws.com"


def _kms_parameters(parameters: dict[str, Any], output: Mapping[str, Any]) -> None:
    """KMS's records name the key by its ARN and the algorithm used, as CloudTrail's do,
    even when the caller named the key by alias or not at all (Decrypt)."""
    key_arn = output.get("KeyId")
    if isinstance(key_arn, str) and key_arn.startswith("arn:") and "sourceKeyId" not in parameters:
        parameters["keyId"] = key_arn
    algorithm = output.get("EncryptionAlgorithm")
    if isinstance(algorithm, str) and "encryptionAlgorithm" not in parameters:
        parameters["encryptionAlgorithm"] = algorithm


def build_on_behalf_event(
    *,
    facts: RequestFacts,
    event_time: str,
    identity: Mapping[str, Any] | None,
    invoked_by: str,
    event_source: str,
    event_name: str,
    request_parameters: Mapping[str, Any],
    resources: list[str],
) -> dict[str, Any]:
    """A call one service made to another on the caller's behalf while serving its request
    (Secrets Manager's GenerateDataKey and Decrypt with the secret's KMS key): the caller's
    identity with ``invokedBy``, the service as source and agent, its own event and request
    ids. Recorded with the request's own record, in the same durable batch.
    ``event_time``: the request record's ``eventTime`` (the same moment)."""
    shown = {**identity, "invokedBy": invoked_by} if identity else {"invokedBy": invoked_by}
    return {
        "eventVersion": EVENT_VERSION,
        "userIdentity": shown,
        "eventTime": event_time,
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": GLOBAL_REGION if event_source in GLOBAL_SOURCES else facts.region,
        "sourceIPAddress": invoked_by,
        "userAgent": invoked_by,
        "requestParameters": dict(request_parameters),
        "responseElements": None,
        "resources": _resources(resources, ""),
        "requestID": unique_id(),
        "eventID": unique_id(),
        "readOnly": is_read_only(event_name),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": shown.get("accountId"),
        "eventCategory": "Management",
    }


def cross_account_copies(event: dict[str, Any]) -> list[dict[str, Any]]:
    """CloudTrail delivers a call on another account's resource to both accounts: the
    copies ``event`` needs, one per other account owning one of its resources, each with
    its own ``eventID``, that account as ``recipientAccountId`` and only the calling
    account and principal id as ``userIdentity`` (type ``AWSAccount``). ``event`` and its
    copies share one ``sharedEventID`` (set on ``event`` too). The ids follow from
    ``event``'s ``eventID`` and the account, so a correction of ``event`` corrects the same
    copies. Requests whose caller was not authenticated are not delivered to other
    accounts: anyone could fill them."""
    identity = event.get("userIdentity") or {}
    recipient = event.get("recipientAccountId")
    if identity.get("type") in (None, "Unknown") or not recipient:
        return []
    owners: list[str] = []
    for resource in event.get("resources") or ():
        owner = resource.get("accountId")
        if owner and owner != recipient and owner.isdigit() and owner not in owners:
            owners.append(owner)
    if not owners:
        return []
    origin = str(event["eventID"])
    shared = event["sharedEventID"] = derived_id(origin, "shared")
    shown = account_identity(identity)
    return [
        {
            **event,
            "userIdentity": dict(shown),
            "eventID": derived_id(origin, owner),
            "recipientAccountId": owner,
            "sharedEventID": shared,
        }
        for owner in owners
    ]


def derived_id(origin: str, purpose: str) -> str:
    """An event id (UUID v4 form) that follows from ``origin``'s and ``purpose``."""
    digits = hashlib.sha256(f"{origin}/{purpose}".encode()).hexdigest()[:32]
    digits = f"{digits[:12]}4{digits[13:16]}{'89ab'[int(digits[16], 16) % 4]}{digits[17:]}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


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
    """CloudTrail's resources for ``arns`` (see cloudtrail_resource_type). An event is
    written, never changed, so the element of an ARN is made once and shared."""
    if not arns:
        return None
    resources = [element for arn in arns if (element := _resource(arn, default_type))]
    return resources or None


SIGN_IN_SOURCE = "signin.amazonaws.com"


def sign_in_event(
    *,
    facts: RequestFacts,
    event_name: str,
    identity: Mapping[str, Any],
    error_message: str | None,
) -> dict[str, Any]:
    """A console sign-in attempt (``ConsoleLogin``) or sign-out, as CloudTrail records
    sign-in events (``eventType`` ``AwsConsoleSignIn``, source ``signin.amazonaws.com``):
    the outcome in ``responseElements.ConsoleLogin``, a failure's reason in
    ``errorMessage`` ("Failed authentication"). Never the password."""
    success = error_message is None
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": dict(identity),
        "eventTime": _event_time(facts.time),
        "eventSource": SIGN_IN_SOURCE,
        "eventName": event_name,
        "awsRegion": facts.region,
        "sourceIPAddress": facts.source_ip,
        "userAgent": facts.user_agent,
        "requestParameters": None,
        "responseElements": {event_name: "Success" if success else "Failure"},
        "additionalEventData": {"LoginTo": "/console", "MobileVersion": "No", "MFAUsed": "No"},
        "eventID": unique_id(),
        "readOnly": False,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": True,
        "recipientAccountId": identity.get("accountId"),
        "eventCategory": "Management",
    }
    if not success:
        event["errorMessage"] = error_message
    return event


@lru_cache(maxsize=4096)
def _resource(arn: str, default_type: str) -> dict[str, str] | None:
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None
    kind = parts[5].split("/", 1)[0].split(":", 1)[0]
    return {
        "accountId": parts[4],
        "type": _RESOURCE_TYPES.get((parts[2], kind), default_type),
        "ARN": arn,
    }
