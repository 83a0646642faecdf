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
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from botocore.model import OperationModel, Shape

from strongroom.audit.derived import OnBehalf

# The userIdentity elements live in audit/identities.py; named here too, where the event
# builders have always been imported from.
from strongroom.audit.identities import account_identity as account_identity
from strongroom.audit.identities import event_time as _event_time
from strongroom.audit.identities import principal_identity as principal_identity
from strongroom.audit.identities import session_attributes as session_attributes
from strongroom.audit.identities import unverified_identity as unverified_identity
from strongroom.audit.identities import user_identity as user_identity
from strongroom.ids import unique_id, unique_id_pair
from strongroom.protocol.model import planned_on_first_use, shape_plan

EVENT_VERSION = "1.11"  # CloudTrail's current record format
# CANONICAL_ORDER: the builders below make their dicts with the keys already in the order
# canonical() sorts them into (Python's str order, which orjson's OPT_SORT_KEYS follows).
# What is written does not depend on it (the record is serialized with sorted keys
# whatever the order), but orjson sorts an already sorted dict in far fewer steps: 7k
# instructions less per GetSecretValue's two records (bench.request_instructions).
# tests/unit/test_audit_events.py checks the order.
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


class RequestFacts(NamedTuple):
    """What a request's records take from the request itself. (Immutable; a NamedTuple
    rather than a frozen dataclass: made in a fraction of the time, twice a request.)"""

    request_id: str
    time: datetime
    source_ip: str
    user_agent: str
    region: str


# Kept per name (a few hundred operations; bounded all the same, since a refused request's
# operation name is whatever its sender wrote): a call then runs no Python code.
@lru_cache(maxsize=1024)
def is_read_only(operation_name: str) -> bool:
    return operation_name.startswith(READ_ONLY_PREFIXES) or operation_name in READ_ONLY_OPERATIONS


def cloudtrail_resource_type(arn: str, default: str = "") -> str:
    """CloudTrail's type for the resource ``arn`` names, e.g. ``AWS::IAM::Role``."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return default
    kind = parts[5].split("/", 1)[0].split(":", 1)[0]
    return _RESOURCE_TYPES.get((parts[2], kind), default)


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


class _OperationAudit(NamedTuple):
    """What the records of one operation take from its model, worked out once per
    operation (botocore makes each operation's model once; the plan lives in its
    ``__dict__``, as the shapes' redactors do)."""

    name: str
    read_only: bool
    request: Redactor  # requestParameters from the input
    response: Redactor | None  # responseElements from the output; None: not recorded


_OPERATION_AUDIT = "_strongroom_audit"  # the slot in an operation model's __dict__


def _operation_audit(operation: OperationModel, operation_name: str) -> _OperationAudit:
    audit: _OperationAudit | None = operation.__dict__.get(_OPERATION_AUDIT)
    if audit is None:
        audit = _plan_operation(operation, operation.name)
        operation.__dict__[_OPERATION_AUDIT] = audit
    if audit.name != operation_name:  # recorded under another name: plan for that name
        return _plan_operation(operation, operation_name)
    return audit


def _plan_operation(operation: OperationModel, operation_name: str) -> _OperationAudit:
    read_only = is_read_only(operation_name)
    responds = not read_only or operation_name in RESPONSE_RECORDED
    return _OperationAudit(
        operation_name,
        read_only,
        _shape_redactor(operation.input_shape),
        _shape_redactor(operation.output_shape) if responds else None,
    )


def _shape_redactor(shape: Shape | None) -> Redactor:
    return _nothing if shape is None else _redactor(shape)


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
    resources: Sequence[str] | None = None,
    resource_type: str = "",
    event_id: str | None = None,
) -> dict[str, Any]:
    read_only, request_parameters, response_elements = recorded_members(
        event_source, operation, operation_name, params, output
    )
    # In canonical order (see CANONICAL_ORDER); an error's two members come last.
    event: dict[str, Any] = {
        "awsRegion": GLOBAL_REGION if event_source in GLOBAL_SOURCES else facts.region,
        "eventCategory": "Management",
        "eventID": event_id or unique_id(),
        "eventName": operation_name,
        "eventSource": event_source,
        "eventTime": _event_time(facts.time),
        "eventType": "AwsApiCall",
        "eventVersion": EVENT_VERSION,
        "managementEvent": True,
        "readOnly": read_only,
        "recipientAccountId": identity.get("accountId") if identity else None,
        "requestID": facts.request_id,
        "requestParameters": request_parameters,
        "resources": resource_elements(resources, resource_type),
        "responseElements": response_elements,
        "sourceIPAddress": facts.source_ip,
        "userAgent": facts.user_agent,
        "userIdentity": dict(identity) if identity else {"type": "Unknown"},
    }
    if error_code:
        event["errorCode"] = error_code
        event["errorMessage"] = error_message
    return event


def recorded_members(
    event_source: str,
    operation: OperationModel | None,
    operation_name: str,
    params: Mapping[str, Any] | None,
    output: Mapping[str, Any] | None,
) -> tuple[bool, Any, Any]:
    """A request record's ``readOnly``, ``requestParameters`` and ``responseElements``: what
    it keeps of its input and output (audit/templates.py renders records with them too)."""
    if operation is None:
        return is_read_only(operation_name), None, None
    audit = _operation_audit(operation, operation_name)
    request_parameters = None if params is None else audit.request(params)
    response = audit.response
    response_elements = None if output is None or response is None else response(output)
    if event_source == KMS_SOURCE and request_parameters is not None and output:
        _kms_parameters(request_parameters, output)
    return audit.read_only, request_parameters, response_elements


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
    facts: RequestFacts,
    event: Mapping[str, Any],
    call: OnBehalf,
    ids: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A call one service made to another on the caller's behalf while serving its request
    (Secrets Manager's GenerateDataKey and Decrypt with the secret's KMS key): the caller's
    identity with ``invokedBy``, the service as source and agent, its own event and request
    ids (``ids``: request id, event id; new ones by default). Recorded with the request's
    own record, in the same durable batch. ``event``: the request's own record, whose
    identity and ``eventTime`` (the same moment) it shares. (audit/templates.py renders the
    same record without building it, for the calls a server repeats.)"""
    invoked_by = call.invoked_by
    event_source = call.event_source
    identity = event["userIdentity"]
    shown = {**identity, "invokedBy": invoked_by} if identity else {"invokedBy": invoked_by}
    request_id, event_id = ids or unique_id_pair()
    return {  # in canonical order (see CANONICAL_ORDER)
        "awsRegion": GLOBAL_REGION if event_source in GLOBAL_SOURCES else facts.region,
        "eventCategory": "Management",
        "eventID": event_id,
        "eventName": call.event_name,
        "eventSource": event_source,
        "eventTime": event["eventTime"],
        "eventType": "AwsApiCall",
        "eventVersion": EVENT_VERSION,
        "managementEvent": True,
        "readOnly": is_read_only(call.event_name),
        "recipientAccountId": shown.get("accountId"),
        "requestID": request_id,
        "requestParameters": dict(call.request_parameters),
        "resources": resource_elements(call.resources, ""),
        "responseElements": None,
        "sourceIPAddress": invoked_by,
        "userAgent": invoked_by,
        "userIdentity": shown,
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
    resources = event.get("resources")
    if not resources:
        return []
    recipient = event.get("recipientAccountId")
    for resource in resources:
        if resource.get("accountId") != recipient:
            break
    else:  # every resource is the recipient's own (almost every call): no copies
        return []
    identity = event.get("userIdentity") or {}
    if identity.get("type") in (None, "Unknown") or not recipient:
        return []
    owners: list[str] = []
    for resource in resources:
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
    additional: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An event the service itself caused, not a request (CloudTrail's AwsServiceEvent):
    a KMS key rotated or deleted on schedule, a secret deleted after its recovery window.
    No request, so no requestParameters, responseElements or requestID; the identity is
    the account on whose behalf the service acted, ``invokedBy`` the service.
    ``details`` become ``serviceEventDetails``, ``additional`` ``additionalEventData``
    (where Secrets Manager's rotation events name the secret: ``SecretId``)."""
    event: dict[str, Any] = {  # in canonical order (see CANONICAL_ORDER)
        **({"additionalEventData": dict(additional)} if additional else {}),
        "awsRegion": region,
        "eventCategory": "Management",
        "eventID": unique_id(),
        "eventName": event_name,
        "eventSource": event_source,
        "eventTime": _event_time(time),
        "eventType": "AwsServiceEvent",
        "eventVersion": EVENT_VERSION,
        "managementEvent": True,
        "readOnly": False,
        "recipientAccountId": account_id,
        "requestParameters": None,
        "resources": resource_elements(resources, ""),
        "responseElements": None,
    }
    if details:
        event["serviceEventDetails"] = dict(details)
    event["sourceIPAddress"] = event["userAgent"] = invoked_by
    event["userIdentity"] = {"accountId": account_id, "invokedBy": invoked_by}
    return event


def resource_elements(arns: Sequence[str] | None, default_type: str) -> list[dict[str, str]] | None:
    """CloudTrail's resources for ``arns`` (see cloudtrail_resource_type). An event is
    written, never changed, so the element of an ARN is made once and shared."""
    if not arns:
        return None
    if len(arns) == 1:  # most requests name one resource: no comprehension's frame
        element = _resource(arns[0], default_type)
        return [element] if element else None
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
    event: dict[str, Any] = {  # in canonical order (see CANONICAL_ORDER)
        "additionalEventData": {"LoginTo": "/console", "MFAUsed": "No", "MobileVersion": "No"},
        "awsRegion": facts.region,
        "eventCategory": "Management",
        "eventID": unique_id(),
        "eventName": event_name,
        "eventSource": SIGN_IN_SOURCE,
        "eventTime": _event_time(facts.time),
        "eventType": "AwsConsoleSignIn",
        "eventVersion": EVENT_VERSION,
        "managementEvent": True,
        "readOnly": False,
        "recipientAccountId": identity.get("accountId"),
        "requestParameters": None,
        "responseElements": {event_name: "Success" if success else "Failure"},
        "sourceIPAddress": facts.source_ip,
        "userAgent": facts.user_agent,
        "userIdentity": dict(identity),
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
    return {  # in canonical order (see CANONICAL_ORDER)
        "ARN": arn,
        "accountId": parts[4],
        "type": _RESOURCE_TYPES.get((parts[2], kind), default_type),
    }
