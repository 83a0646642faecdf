"""CloudTrail LookupEvents against a real server, with boto3 (client and paginator) and the
AWS CLI: every lookup attribute, time ranges, pagination, the errors AWS gives, and the
events themselves (CloudTrailEvent) as CloudTrail records them, never with a secret value.

AWS behaviour followed (CloudTrail API reference "LookupEvents", "Event", "Resource"; user
guide "CloudTrail record contents" and "userIdentity element"): one lookup attribute at a
time, newest events first, at most 50 a page, ReadOnly "true"/"false", Username the IAM
user's name, Resources as (ResourceType, ResourceName), the events of the caller's account
and region only; the CloudTrailEvent of a read has responseElements null.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strongroom.iam.credentials import admin_arn
from strongroom.iam.service import create_admin_user
from strongroom.server.deployment import initialize, open_deployment
from tests.aws import ACCOUNT, aws_error, random_region
from tests.server import ServerProcess

BIN = Path(sys.executable).parent
SECRET_TYPE = "AWS::SecretsManager::Secret"
StartServer = Callable[..., ServerProcess]


def lookup(client: Any, key: str | None = None, value: str | None = None, **params: Any) -> Any:
    if key is not None:
        params["LookupAttributes"] = [{"AttributeKey": key, "AttributeValue": value}]
    return client.lookup_events(**params)


def every_event(client: Any, key: str | None = None, value: str | None = None) -> list[Any]:
    """All matching events, every page."""
    params: dict[str, Any] = {}
    if key is not None:
        params["LookupAttributes"] = [{"AttributeKey": key, "AttributeValue": value}]
    found: list[Any] = []
    for page in client.get_paginator("lookup_events").paginate(**params):
        found.extend(page["Events"])
    return found


def request_ids(events: list[Any]) -> set[str]:
    return {json.loads(e["CloudTrailEvent"])["requestID"] for e in events}


def rid(response: Any) -> str:
    return str(response["ResponseMetadata"]["RequestId"])


@dataclass
class Story:
    """What happened in a fresh region: a secret created and read by the admin, a read
    with a forged signature, a read refused to an IAM user without permissions."""

    region: str
    name: str
    value: str
    arn: str
    user: str
    user_key: str
    started: datetime
    ended: datetime
    created: str
    reads: list[str]
    forged: str
    refused: str


@pytest.fixture
def story(server: ServerProcess) -> Story:
    region = random_region("ct")
    started = datetime.now(UTC).replace(microsecond=0)
    sm = server.client(region=region)
    name = f"lookup/{uuid.uuid4().hex[:8]}"
    value = f"s3cr3t-{uuid.uuid4().hex}"
    created = sm.create_secret(Name=name, SecretString=value)
    reads = [rid(sm.get_secret_value(SecretId=name)) for _ in range(5)]
    forger = server.client(
        region=region, aws_access_key_id="test", aws_secret_access_key="not-the-secret"
    )
    with pytest.raises(ClientError) as forged:
        forger.get_secret_value(SecretId=name)
    assert forged.value.response["Error"]["Code"] == "InvalidSignatureException"
    iam = server.client("iam")
    user = f"nobody-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    stranger = server.client(
        region=region,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    with pytest.raises(ClientError) as refused:
        stranger.get_secret_value(SecretId=created["ARN"])
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    return Story(
        region=region,
        name=name,
        value=value,
        arn=created["ARN"],
        user=user,
        user_key=key["AccessKeyId"],
        started=started,
        ended=datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1),
        created=rid(created),
        reads=reads,
        forged=rid(forged.value.response),
        refused=rid(refused.value.response),
    )


@pytest.fixture
def ct(server: ServerProcess, story: Story) -> Any:
    return server.client("cloudtrail", region=story.region)


def test_each_lookup_attribute_finds_its_events(ct: Any, story: Story) -> None:
    everything = every_event(ct)
    by_request = {json.loads(e["CloudTrailEvent"])["requestID"]: e for e in everything}
    assert {story.created, *story.reads, story.refused} <= set(by_request)

    names = every_event(ct, "EventName", "GetSecretValue")
    assert request_ids(names) == {*story.reads, story.forged, story.refused}
    assert {e["EventName"] for e in names} == {"GetSecretValue"}

    one = by_request[story.reads[0]]
    assert [e["EventId"] for e in every_event(ct, "EventId", one["EventId"])] == [one["EventId"]]

    writes = every_event(ct, "ReadOnly", "false")
    assert story.created in request_ids(writes)
    assert {e["ReadOnly"] for e in writes} == {"false"}
    reads = every_event(ct, "ReadOnly", "true")
    assert set(story.reads) <= request_ids(reads)
    assert {e["ReadOnly"] for e in reads} == {"true"}

    admin = every_event(ct, "Username", "admin")
    assert {story.created, *story.reads} <= request_ids(admin)
    assert [e["EventName"] for e in every_event(ct, "Username", story.user)] == ["GetSecretValue"]

    by_key = every_event(ct, "AccessKeyId", story.user_key)
    assert request_ids(by_key) == {story.refused}
    assert by_key[0]["AccessKeyId"] == story.user_key

    secrets = every_event(ct, "ResourceType", SECRET_TYPE)
    assert {story.created, *story.reads} <= request_ids(secrets)
    named = every_event(ct, "ResourceName", story.arn)
    assert {story.created, *story.reads, story.refused} <= request_ids(named)
    assert all(
        {"ResourceType": SECRET_TYPE, "ResourceName": story.arn} in e["Resources"] for e in named
    )

    source = every_event(ct, "EventSource", "secretsmanager.amazonaws.com")
    assert {story.created, *story.reads} <= request_ids(source)
    assert {e["EventSource"] for e in source} == {"secretsmanager.amazonaws.com"}
    assert every_event(ct, "EventName", "NoSuchEvent") == []


def test_events_as_cloudtrail_records_them(ct: Any, story: Story) -> None:
    events = every_event(ct)
    records = {json.loads(e["CloudTrailEvent"])["requestID"]: e for e in events}
    read = records[story.reads[0]]
    assert read["EventName"] == "GetSecretValue"
    assert read["EventSource"] == "secretsmanager.amazonaws.com"
    assert read["Username"] == "admin" and read["AccessKeyId"] == "test"
    assert read["ReadOnly"] == "true"
    assert read["Resources"] == [{"ResourceType": SECRET_TYPE, "ResourceName": story.arn}]
    assert story.started <= read["EventTime"] <= story.ended
    event = json.loads(read["CloudTrailEvent"])
    assert event["eventVersion"] == "1.11"
    assert event["eventID"] == read["EventId"]
    assert event["eventType"] == "AwsApiCall" and event["readOnly"] is True
    assert event["userIdentity"]["principalId"].startswith("AIDA")  # IAM's unique user id
    assert event["userIdentity"] == {
        "type": "IAMUser",
        "principalId": event["userIdentity"]["principalId"],
        "arn": admin_arn(ACCOUNT),
        "accountId": ACCOUNT,
        "accessKeyId": "test",
        "userName": "admin",
    }
    assert event["requestParameters"] == {"secretId": story.name}
    assert event["responseElements"] is None  # a read
    assert (event["awsRegion"], event["recipientAccountId"]) == (story.region, ACCOUNT)
    assert "strongroomIntegrity" not in event and "errorCode" not in event

    created = json.loads(records[story.created]["CloudTrailEvent"])
    assert created["readOnly"] is False
    assert created["requestParameters"]["name"] == story.name
    assert "secretString" not in created["requestParameters"]  # sensitive: never recorded
    assert created["responseElements"]["arn"] == story.arn

    refused = json.loads(records[story.refused]["CloudTrailEvent"])
    assert refused["errorCode"] == "AccessDeniedException"
    assert story.user in refused["errorMessage"]
    assert refused["userIdentity"]["userName"] == story.user
    assert refused["userIdentity"]["accessKeyId"] == story.user_key

    # Nothing a lookup returns carries the secret's value.
    assert all(story.value not in json.dumps(e, default=str) for e in events)


def test_a_request_with_a_bad_signature_appears_with_its_error(ct: Any, story: Story) -> None:
    attempts = [
        json.loads(e["CloudTrailEvent"])
        for e in every_event(ct, "AccessKeyId", "test")
        if json.loads(e["CloudTrailEvent"]).get("errorCode") == "InvalidSignatureException"
    ]
    [attempt] = attempts
    assert attempt["eventName"] == "GetSecretValue"
    assert attempt["userIdentity"] == {
        "type": "Unknown",
        "accessKeyId": "test",
        "accountId": ACCOUNT,
    }
    assert attempt["requestParameters"] is None  # nothing from an unverified request
    assert attempt["requestID"] == story.forged
    # No Username: who signed it is not known.
    [seen] = [e for e in every_event(ct, "EventName", "GetSecretValue") if "Username" not in e]
    assert json.loads(seen["CloudTrailEvent"])["requestID"] == story.forged


def test_time_ranges(ct: Any, story: Story) -> None:
    happened = {story.created, *story.reads, story.forged, story.refused}
    events = lookup(ct, StartTime=story.started, EndTime=story.ended, MaxResults=50)["Events"]
    # Besides the requests: the KMS calls Secrets Manager made for them (one
    # GenerateDataKey for the create, a Decrypt per read), each with its own request id.
    on_behalf = [e for e in events if e["EventSource"] == "kms.amazonaws.com"]
    assert sorted(e["EventName"] for e in on_behalf) == ["Decrypt"] * 5 + ["GenerateDataKey"]
    window = request_ids([e for e in events if e not in on_behalf])
    assert window == happened
    later = lookup(
        ct, StartTime=story.ended + timedelta(seconds=2), EndTime=story.ended + timedelta(hours=1)
    )["Events"]
    assert not request_ids(later) & {story.created, *story.reads}
    earlier = lookup(ct, EndTime=story.started - timedelta(seconds=2))["Events"]
    assert not request_ids(earlier) & {story.created, *story.reads}
    aws_error(
        ct.lookup_events,
        StartTime=story.ended,
        EndTime=story.started,
        code="InvalidTimeRangeException",
    )


def test_pages_newest_first_with_next_tokens(ct: Any, story: Story) -> None:
    wanted = every_event(ct, "EventName", "GetSecretValue")
    assert len(wanted) == 7  # five reads, one forged, one refused
    times = [e["EventTime"] for e in wanted]
    assert times == sorted(times, reverse=True)

    pages: list[list[str]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"MaxResults": 4}
        if token:
            params["NextToken"] = token
        page = lookup(ct, "EventName", "GetSecretValue", **params)
        pages.append([e["EventId"] for e in page["Events"]])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [4, 3]
    assert [i for p in pages for i in p] == [e["EventId"] for e in wanted]

    paginated = ct.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GetSecretValue"}],
        PaginationConfig={"PageSize": 2},
    )
    sizes: list[int] = []
    found: list[str] = []
    for page in paginated:
        sizes.append(len(page["Events"]))
        found.extend(e["EventId"] for e in page["Events"])
    assert sizes == [2, 2, 2, 1] and found == [e["EventId"] for e in wanted]


def test_bad_lookups_get_cloudtrail_errors(ct: Any, story: Story) -> None:
    two = [
        {"AttributeKey": "EventName", "AttributeValue": "GetSecretValue"},
        {"AttributeKey": "Username", "AttributeValue": "admin"},
    ]
    aws_error(ct.lookup_events, LookupAttributes=two, code="InvalidLookupAttributesException")
    first = lookup(ct, "EventName", "GetSecretValue", MaxResults=2)
    token = first["NextToken"]
    tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    aws_error(
        lookup,
        ct,
        "EventName",
        "GetSecretValue",
        MaxResults=2,
        NextToken=tampered,
        code="InvalidNextTokenException",
    )
    # A token belongs to the lookup that made it.
    aws_error(
        lookup,
        ct,
        "EventName",
        "CreateSecret",
        MaxResults=2,
        NextToken=token,
        code="InvalidNextTokenException",
    )


def test_other_regions_do_not_see_these_events(
    server: ServerProcess, ct: Any, story: Story
) -> None:
    elsewhere = server.client("cloudtrail", region=random_region("ct"))
    assert not request_ids(every_event(elsewhere)) & {story.created, *story.reads}
    assert every_event(elsewhere, "ResourceName", story.arn) == []


def test_lookups_are_themselves_recorded(ct: Any) -> None:
    mine = rid(lookup(ct, "EventName", "CreateSecret"))
    [recorded] = [
        json.loads(e["CloudTrailEvent"])
        for e in every_event(ct, "EventName", "LookupEvents")
        if json.loads(e["CloudTrailEvent"])["requestID"] == mine
    ]
    assert recorded["eventSource"] == "cloudtrail.amazonaws.com"
    assert recorded["readOnly"] is True and recorded["responseElements"] is None
    assert recorded["requestParameters"] == {
        "lookupAttributes": [{"attributeKey": "EventName", "attributeValue": "CreateSecret"}]
    }


def test_a_role_session_is_named_by_its_session(server: ServerProcess, story: Story) -> None:
    iam = server.client("iam")
    role_name = f"auditor-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    session = server.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="night-shift")
    credentials = session["Credentials"]
    client = server.client(
        region=story.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    with pytest.raises(ClientError) as refused:  # the role has no permissions: refused
        client.get_secret_value(SecretId=story.arn)
    ct = server.client("cloudtrail", region=story.region)
    [found] = every_event(ct, "Username", "night-shift")
    assert found["AccessKeyId"] == credentials["AccessKeyId"]
    event = json.loads(found["CloudTrailEvent"])
    assert event["requestID"] == rid(refused.value.response)
    assert event["errorCode"] == "AccessDeniedException"
    role_id = session["AssumedRoleUser"]["AssumedRoleId"].split(":")[0]
    created = event["userIdentity"]["sessionContext"]["attributes"].pop("creationDate")
    # Issued for the default hour: created when the credentials' hour began.
    issued = credentials["Expiration"] - timedelta(hours=1)
    assert created == issued.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert event["userIdentity"] == {
        "type": "AssumedRole",
        "principalId": f"{role_id}:night-shift",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/night-shift",
        "accountId": ACCOUNT,
        "accessKeyId": credentials["AccessKeyId"],
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": role["Arn"],
                "accountId": ACCOUNT,
                "userName": role_name,
            },
            "webIdFederationData": {},
            "attributes": {"mfaAuthenticated": "false"},
        },
    }


def test_a_user_without_cloudtrail_permission_is_refused(server: ServerProcess) -> None:
    iam = server.client("iam")
    user = f"nolookup-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    client = server.client(
        "cloudtrail",
        region=random_region("ct"),
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    error = aws_error(client.lookup_events, code="AccessDeniedException")
    assert "cloudtrail:LookupEvents" in error["Message"]


# The AWS CLI ------------------------------------------------------------------------------


def aws(server: ServerProcess, region: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRONGROOM_"))}
    env.update(
        AWS_ENDPOINT_URL=server.url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=region,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_MAX_ATTEMPTS="1",
    )
    return subprocess.run(
        [str(BIN / "aws"), *args, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_the_aws_cli_looks_up_events(server: ServerProcess, story: Story) -> None:
    done = aws(
        server,
        story.region,
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=GetSecretValue",
    )
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)["Events"]
    assert request_ids(events) == {*story.reads, story.forged, story.refused}
    assert story.value not in done.stdout

    paged = aws(
        server,
        story.region,
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=ResourceName,AttributeValue=" + story.arn,
        "--max-items",
        "2",
    )
    assert paged.returncode == 0, paged.stderr
    first = json.loads(paged.stdout)
    assert len(first["Events"]) == 2 and first["NextToken"]
    rest = aws(
        server,
        story.region,
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=ResourceName,AttributeValue=" + story.arn,
        "--starting-token",
        first["NextToken"],
    )
    assert rest.returncode == 0, rest.stderr
    later = json.loads(rest.stdout)["Events"]
    assert request_ids(first["Events"] + later) == {story.created, *story.reads, story.refused}

    bad = aws(
        server,
        story.region,
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=GetSecretValue",
        "AttributeKey=Username,AttributeValue=admin",
    )
    assert bad.returncode != 0 and "InvalidLookupAttributesException" in bad.stderr


# Another account of the same deployment ---------------------------------------------------

OTHER_ACCOUNT = "111111111111"
OTHER_KEY = "AKIAOTHERACCOUNT0001"
OTHER_SECRET = "other-account-secret-key"


def test_events_of_another_account_are_not_returned(
    new_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    initialize(data_dir, dev=True)
    opened = open_deployment(data_dir)
    try:
        with opened.store.write() as conn:
            opened.credentials.create_account(conn, OTHER_ACCOUNT, "other")
            create_admin_user(conn, OTHER_ACCOUNT, 0)
            opened.credentials.create_access_key(
                conn, OTHER_ACCOUNT, admin_arn(OTHER_ACCOUNT), OTHER_KEY, OTHER_SECRET
            )
    finally:
        opened.close()
    server = new_server("--dev", "--data-dir", str(data_dir))
    other: dict[str, Any] = {"aws_access_key_id": OTHER_KEY, "aws_secret_access_key": OTHER_SECRET}
    region = "us-east-1"
    mine = server.client(region=region)
    theirs = server.client(region=region, **other)
    my_secret = mine.create_secret(Name="same/name", SecretString="mine")
    their_secret = theirs.create_secret(Name="same/name", SecretString="theirs")
    my_read = rid(mine.get_secret_value(SecretId="same/name"))
    their_read = rid(theirs.get_secret_value(SecretId="same/name"))

    my_view = every_event(server.client("cloudtrail", region=region))
    their_view = every_event(server.client("cloudtrail", region=region, **other))
    assert {rid(my_secret), my_read} <= request_ids(my_view)
    assert not request_ids(my_view) & {rid(their_secret), their_read}
    assert {rid(their_secret), their_read} <= request_ids(their_view)
    assert not request_ids(their_view) & {rid(my_secret), my_read}
    assert {e.get("Username") for e in their_view} == {"admin"}
    assert all(
        json.loads(e["CloudTrailEvent"])["recipientAccountId"] == OTHER_ACCOUNT for e in their_view
    )
