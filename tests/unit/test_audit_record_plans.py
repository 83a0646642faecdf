"""The shortcuts a request's audit records are built with (audit/events.py,
audit/identities.py, audit/derived.py) give exactly what the plain formulas they replace
give: the per-operation plan, the per-principal userIdentity, the KMS event built from the
request's own record, the fast exit from cross_account_copies, the collecting scope."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from strongroom.audit import events
from strongroom.audit.derived import OnBehalf, collecting, on_behalf, service_event
from strongroom.audit.events import (
    GLOBAL_REGION,
    GLOBAL_SOURCES,
    RESPONSE_RECORDED,
    RequestFacts,
    build_event,
    build_on_behalf_event,
    cross_account_copies,
    is_read_only,
    principal_identity,
    redact,
    user_identity,
)
from strongroom.ids import unique_id
from strongroom.types import Principal
from tests.unit.test_audit_events import operations, sample

ACCOUNT = "123456789012"
OTHER = "210987654321"
FACTS = RequestFacts(
    "req-1", datetime(2024, 5, 1, 12, 30, 45, 999999, tzinfo=UTC), "10.0.0.1", "ua", "eu-west-1"
)
SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:app-AbCdEf"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = f"arn:aws:kms:eu-west-1:{OTHER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

PRINCIPALS = [
    Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/alice", "AKIAALICE", unique_id="AIDAX"),
    Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/bob", "AKIABOB"),
    Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", "AKIAROOT", kind="root"),
    Principal(
        ACCOUNT,
        f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1",
        "ASIAROLE",
        kind="assumed-role",
        identity_arn=f"arn:aws:iam::{ACCOUNT}:role/app",
        session_token=True,
        unique_id="AROAX:s1",
        token_issued_ms=1_714_566_645_000,
        mfa_authenticated_ms=1_714_566_600_000,
        source_identity="alice",
    ),
    Principal(
        ACCOUNT,
        f"arn:aws:sts::{ACCOUNT}:federated-user/fed",
        "ASIAFED",
        kind="federated-user",
        identity_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        session_token=True,
        token_issued_ms=1_714_566_645_000,
    ),
    Principal(
        ACCOUNT,
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        "ASIATEMP",
        session_token=True,
        token_issued_ms=1_714_566_645_000,
    ),
]


# ------------------------------------------------------------- the operation plans


def reference_parts(op: Any, name: str, params: Any, output: Any) -> tuple[Any, Any, bool]:
    """requestParameters, responseElements and readOnly as build_event worked them out
    per request before they were planned per operation."""
    read_only = name.startswith(events.READ_ONLY_PREFIXES) or name in events.READ_ONLY_OPERATIONS
    request = redact(op.input_shape, params)
    response = (
        None if read_only and name not in RESPONSE_RECORDED else redact(op.output_shape, output)
    )
    return request, response, read_only


def test_every_operation_records_what_the_per_request_formulas_give() -> None:
    rng = random.Random(11)
    for op in operations():
        params = sample(op.input_shape, rng, 0.0) if op.input_shape else {}
        output = sample(op.output_shape, rng, 0.0) if op.output_shape else None
        # Its own name, then another (a read and a write): the plan follows the name given.
        for name in (op.name, "GetSomething", "PutSomething", "AssumeRole"):
            for given_output in (output, None):
                event = build_event(
                    facts=FACTS,
                    event_source="secretsmanager.amazonaws.com",
                    operation=op,
                    operation_name=name,
                    identity=None,
                    params=params,
                    output=given_output,
                    error_code=None,
                    error_message=None,
                )
                request, response, read_only = reference_parts(op, name, params, given_output)
                assert event["requestParameters"] == request, (op.name, name)
                assert event["responseElements"] == response, (op.name, name)
                assert event["readOnly"] is read_only, (op.name, name)
                assert event["eventName"] == name


def test_an_event_without_an_operation_records_no_parameters() -> None:
    event = build_event(
        facts=FACTS,
        event_source="secretsmanager.amazonaws.com",
        operation=None,
        operation_name="GetSecretValue",
        identity=None,
        params={"SecretId": "x"},
        output={"Name": "x"},
        error_code="AccessDenied",
        error_message="no",
    )
    assert event["requestParameters"] is None and event["responseElements"] is None
    assert event["readOnly"] is True and event["errorCode"] == "AccessDenied"


def test_read_only_is_the_prefix_and_list_rule() -> None:
    for name in ("GetSecretValue", "Decrypt", "ListSecrets", "PutSecretValue", "Encrypt", "X"):
        expected = name.startswith(events.READ_ONLY_PREFIXES) or (
            name in events.READ_ONLY_OPERATIONS
        )
        assert is_read_only(name) is expected


# ------------------------------------------------------------ per-principal identity


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p.access_key_id)
def test_a_principals_identity_is_made_once_and_is_its_user_identity(principal: Principal) -> None:
    shared = principal_identity(principal)
    assert shared == user_identity(principal)
    assert principal_identity(principal) is shared
    # An equal principal (the row cache reloaded it) shows the same identity.
    twin = Principal(
        **{f: getattr(principal, f) for f in principal.__dataclass_fields__ if f != "_hash"}
    )
    assert principal_identity(twin) == shared


def test_principals_that_differ_show_their_own_identity() -> None:
    shown = [principal_identity(p) for p in PRINCIPALS]
    assert shown == [user_identity(p) for p in PRINCIPALS]
    later = Principal(
        ACCOUNT,
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        "ASIATEMP",
        session_token=True,
        token_issued_ms=1_714_570_000_000,  # another session of the same user
    )
    assert principal_identity(later) != principal_identity(PRINCIPALS[-1])
    assert principal_identity(later)["sessionContext"]["attributes"]["creationDate"] == (
        "2024-05-01T13:26:40Z"
    )


def test_an_event_copies_the_shared_identity() -> None:
    principal = PRINCIPALS[0]
    event = request_event(principal_identity(principal), [SECRET])
    event["userIdentity"]["changed"] = True
    assert "changed" not in principal_identity(principal)


# ------------------------------------------------------- the call made on one's behalf


def request_event(identity: Mapping[str, Any] | None, arns: list[str], source: str = "") -> Any:
    return build_event(
        facts=FACTS,
        event_source=source or "secretsmanager.amazonaws.com",
        operation=None,
        operation_name="GetSecretValue",
        identity=identity,
        params=None,
        output=None,
        error_code=None,
        error_message=None,
        resources=arns,
        event_id=unique_id(),
    )


def reference_on_behalf(event: Mapping[str, Any], call: OnBehalf) -> dict[str, Any]:
    """The KMS event as it was built from its parts before (ids aside)."""
    identity = event["userIdentity"]
    shown = (
        {**identity, "invokedBy": call.invoked_by} if identity else {"invokedBy": call.invoked_by}
    )
    return {
        "eventVersion": events.EVENT_VERSION,
        "userIdentity": shown,
        "eventTime": event["eventTime"],
        "eventSource": call.event_source,
        "eventName": call.event_name,
        "awsRegion": GLOBAL_REGION if call.event_source in GLOBAL_SOURCES else FACTS.region,
        "sourceIPAddress": call.invoked_by,
        "userAgent": call.invoked_by,
        "requestParameters": dict(call.request_parameters),
        "responseElements": None,
        "resources": events.resource_elements(list(call.resources), ""),
        "readOnly": is_read_only(call.event_name),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": shown.get("accountId"),
        "eventCategory": "Management",
    }


@pytest.mark.parametrize("source", ["", "iam.amazonaws.com"])
@pytest.mark.parametrize("principal", [*PRINCIPALS, None])
def test_the_kms_event_is_built_from_the_request_record(
    principal: Principal | None, source: str
) -> None:
    identity = principal_identity(principal) if principal else None
    event = request_event(identity, [SECRET], source)
    call = OnBehalf(
        invoked_by="secretsmanager.amazonaws.com",
        event_source="kms.amazonaws.com",
        event_name="Decrypt",
        request_parameters={"keyId": KEY, "encryptionContext": {"SecretARN": SECRET}},
        resources=(KEY,),
    )
    caused = build_on_behalf_event(FACTS, event, call)
    # Members in canonical order (events.py's CANONICAL_ORDER: orjson's sort has less to do).
    assert list(caused) == sorted(caused)
    assert list(event) == sorted(event)
    assert list(caused["resources"][0]) == sorted(caused["resources"][0])
    request_id, event_id = caused.pop("requestID"), caused.pop("eventID")
    assert caused == reference_on_behalf(event, call)
    assert len({request_id, event_id, event["eventID"], event["requestID"]}) == 4
    assert caused["awsRegion"] == "eu-west-1"  # KMS's region, whatever the request's source
    assert caused["userIdentity"] is not event["userIdentity"]


# ---------------------------------------------------------------- cross-account copies


def test_a_call_on_the_callers_own_resources_has_no_copies_and_is_unchanged() -> None:
    event = request_event(principal_identity(PRINCIPALS[0]), [SECRET, KEY])
    before = dict(event)
    assert cross_account_copies(event) == []
    assert event == before and "sharedEventID" not in event


def test_a_call_on_another_accounts_resource_still_has_its_copy() -> None:
    for arns in ([OTHER_KEY], [SECRET, OTHER_KEY], [OTHER_KEY, SECRET, OTHER_KEY]):
        event = request_event(principal_identity(PRINCIPALS[0]), arns)
        copies = cross_account_copies(event)
        assert [copy["recipientAccountId"] for copy in copies] == [OTHER]
        assert copies[0]["userIdentity"] == {
            "type": "AWSAccount",
            "principalId": "AIDAX",
            "accountId": ACCOUNT,
        }
        assert copies[0]["sharedEventID"] == event["sharedEventID"]


def test_no_copies_without_resources_or_an_authenticated_caller() -> None:
    assert cross_account_copies(request_event(principal_identity(PRINCIPALS[0]), [])) == []
    assert cross_account_copies(request_event(None, [OTHER_KEY])) == []


# ------------------------------------------------------------------ the collecting scope


def test_collecting_scopes_nest_and_reports_outside_are_dropped() -> None:
    call = OnBehalf("a", "b", "c", {}, ())
    on_behalf(call)  # outside any scope: dropped
    with collecting() as outer:
        on_behalf(call)
        with collecting() as inner:
            service_event({"eventName": "X"})
        on_behalf(call)
    on_behalf(call)
    assert outer == [call, call]
    assert inner == [{"eventName": "X"}]


def test_a_collecting_scope_ends_when_the_operation_raises() -> None:
    with pytest.raises(RuntimeError), collecting() as found:
        on_behalf(OnBehalf("a", "b", "c", {}, ()))
        raise RuntimeError("failed")
    on_behalf(OnBehalf("a", "b", "c", {}, ()))
    assert len(found) == 1


def test_events_and_identities_are_made_in_canonical_order() -> None:
    """Built with their members already in the order canonical() sorts them into (events.py's
    CANONICAL_ORDER), so orjson's sort has little to do; an error's members come last."""
    for principal in PRINCIPALS:
        identity = principal_identity(principal)
        assert list(identity) == sorted(identity)
    made = [
        request_event(principal_identity(PRINCIPALS[0]), [SECRET, KEY]),
        request_event(None, [], "iam.amazonaws.com"),
        events.build_service_event(
            time=FACTS.time,
            event_source="kms.amazonaws.com",
            event_name="RotateKey",
            account_id=ACCOUNT,
            region="eu-west-1",
            invoked_by="AWS Internal",
            resources=[KEY],
            details={"rotationType": "AUTOMATIC"},
        ),
        events.sign_in_event(
            facts=FACTS, event_name="ConsoleLogin", identity={"type": "Root"}, error_message=None
        ),
    ]
    for event in made:
        assert list(event) == sorted(event)
        assert all(list(r) == sorted(r) for r in event.get("resources") or ())
    refused = events.build_event(
        facts=FACTS,
        event_source="secretsmanager.amazonaws.com",
        operation=None,
        operation_name="GetSecretValue",
        identity=None,
        params=None,
        output=None,
        error_code="AccessDeniedException",
        error_message="no",
    )
    assert list(refused)[-2:] == ["errorCode", "errorMessage"]
    assert list(refused)[:-2] == sorted(refused.keys() - {"errorCode", "errorMessage"})
