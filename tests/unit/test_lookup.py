"""EventLookup over hand-written log files: which account sees which events, exact
attribute matching, and NextTokens that stay valid while time moves on."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.audit.events import cross_account_copies
from strongroom.audit.lookup import EventLookup
from strongroom.clock import ManualClock
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec
from strongroom.types import Caller

MINE, THEIRS = "111111111111", "222222222222"
REGION = "eu-west-1"
START = datetime(2026, 3, 1, tzinfo=UTC)


def event(
    name: str,
    *,
    account: str = MINE,
    at: datetime = START,
    read_only: bool = True,
    resources: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "eventVersion": "1.11",
        "userIdentity": {"type": "IAMUser", "accountId": account, "userName": "alice"},
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only,
        "resources": [
            {"accountId": arn.split(":")[4], "type": "AWS::SecretsManager::Secret", "ARN": arn}
            for arn in resources or []
        ]
        or None,
        "recipientAccountId": account,
        "strongroomIntegrity": {"writer": "w", "sequence": 1},
    }


def write(audit: Path, events: list[dict[str, Any]]) -> None:
    path = audit / "logs" / "20260101T000000Z-1-aaaaaaaa" / "000000000001.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        for item in events:
            handle.write(orjson.dumps(item) + b"\n")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START + timedelta(hours=1))


@pytest.fixture
def lookup(tmp_path: Path, clock: ManualClock) -> EventLookup:
    return EventLookup(tmp_path, clock, TokenCodec(os.urandom(32)))


def names(result: dict[str, Any]) -> list[str]:
    return [str(e["EventName"]) for e in result["Events"]]


def test_an_account_sees_its_own_copy_of_a_call_on_its_resources(
    tmp_path: Path, lookup: EventLookup
) -> None:
    mine = f"arn:aws:secretsmanager:{REGION}:{MINE}:secret:db-AbCdEf"
    theirs_on_mine = event("TheirsOnMine", account=THEIRS, resources=[mine])
    theirs_on_mine.pop("strongroomIntegrity")
    [copy] = cross_account_copies(theirs_on_mine)  # what the pipeline writes for MINE
    write(
        tmp_path,
        [event("Mine"), event("Theirs", account=THEIRS), theirs_on_mine, copy],
    )
    mine_view = lookup.lookup_events(Caller(MINE, REGION), {})["Events"]
    assert sorted(names({"Events": mine_view})) == ["Mine", "TheirsOnMine"]
    [seen] = [orjson.loads(e["CloudTrailEvent"]) for e in mine_view if e["EventName"] != "Mine"]
    assert seen["userIdentity"] == {"type": "AWSAccount", "accountId": THEIRS}
    assert seen["recipientAccountId"] == MINE
    their_view = lookup.lookup_events(Caller(THEIRS, REGION), {})["Events"]
    assert sorted(names({"Events": their_view})) == ["Theirs", "TheirsOnMine"]
    [own] = [orjson.loads(e["CloudTrailEvent"]) for e in their_view if e["EventName"] != "Theirs"]
    assert own["userIdentity"]["userName"] == "alice"
    assert own["sharedEventID"] == seen["sharedEventID"] and own["eventID"] != seen["eventID"]
    assert names(lookup.lookup_events(Caller(MINE, "us-east-1"), {})) == []


def test_attributes_match_exactly(tmp_path: Path, lookup: EventLookup) -> None:
    write(tmp_path, [event("Read"), event("Write", read_only=False)])
    caller = Caller(MINE, REGION)

    def by(key: str, value: str) -> list[str]:
        attribute = {"AttributeKey": key, "AttributeValue": value}
        return names(lookup.lookup_events(caller, {"LookupAttributes": [attribute]}))

    assert by("ReadOnly", "true") == ["Read"]
    assert by("ReadOnly", "false") == ["Write"]
    assert by("ReadOnly", "TRUE") == []
    assert by("EventName", "read") == []
    assert by("Username", "alice") != []
    entry = lookup.lookup_events(caller, {})["Events"][0]
    assert entry["ReadOnly"] in ("true", "false")
    assert "strongroomIntegrity" not in orjson.loads(entry["CloudTrailEvent"])


def test_insight_events_are_an_empty_list(tmp_path: Path, lookup: EventLookup) -> None:
    write(tmp_path, [event("Read")])
    result = lookup.lookup_events(Caller(MINE, REGION), {"EventCategory": "insight"})
    assert result == {"Events": []}


def test_next_tokens_survive_the_clock_moving_on(
    tmp_path: Path, lookup: EventLookup, clock: ManualClock
) -> None:
    write(tmp_path, [event(f"E{i}", at=START + timedelta(seconds=i)) for i in range(5)])
    caller = Caller(MINE, REGION)
    first = lookup.lookup_events(caller, {"MaxResults": 2})
    clock.advance(timedelta(minutes=5))  # "now" has moved between the pages
    write(tmp_path, [event("Later", at=clock.now())])
    second = lookup.lookup_events(caller, {"MaxResults": 2, "NextToken": first["NextToken"]})
    third = lookup.lookup_events(caller, {"MaxResults": 2, "NextToken": second["NextToken"]})
    assert names(first) + names(second) + names(third) == ["E4", "E3", "E2", "E1", "E0"]
    assert third["NextToken"] is None
    with pytest.raises(ServiceError) as raised:  # another lookup's token does not fit
        lookup.lookup_events(
            caller,
            {
                "MaxResults": 2,
                "NextToken": first["NextToken"],
                "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "E1"}],
            },
        )
    assert raised.value.code == "InvalidNextTokenException"
