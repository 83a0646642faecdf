"""Audit records as CloudTrail's consumers read them (issue 20, items 3-7): cross-account
copies, KMS calls made on the caller's behalf, session identities, global services'
region, resources of key operations and refusals, the credentials sessions issue, and
LookupEvents' own exceptions. Driven through a real server with boto3."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key

from strongroom.audit.signing import fingerprint, read_public_key
from strongroom.iam.credentials import admin_arn
from strongroom.iam.service import create_admin_user
from strongroom.server.deployment import initialize, open_deployment
from tests.audit import audit_records
from tests.aws import ACCOUNT, aws_error, new_key, random_region
from tests.server import ServerProcess

StartServer = Callable[..., ServerProcess]
OTHER_ACCOUNT = "222222222222"
OTHER_KEY = "AKIAOTHERACCOUNT0002"
OTHER_SECRET = "other-secret-key-0002"
OTHER = {"aws_access_key_id": OTHER_KEY, "aws_secret_access_key": OTHER_SECRET}


def rid(response: Any) -> str:
    return str(response["ResponseMetadata"]["RequestId"])


def events(client: Any, key: str, value: str) -> list[dict[str, Any]]:
    """Every event LookupEvents gives for one attribute, as CloudTrail records."""
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}]
    ):
        found.extend(json.loads(e["CloudTrailEvent"]) for e in page["Events"])
    return found


def by_request(client: Any, name: str, request_id: str) -> dict[str, Any]:
    [event] = [e for e in events(client, "EventName", name) if e.get("requestID") == request_id]
    return event


# --- KMS calls on the caller's behalf (item 4) ---------------------------------------------


def test_a_customer_key_secret_read_records_its_kms_decrypt(server: ServerProcess) -> None:
    region = random_region("kmsb")
    sm, kms = server.client(region=region), server.client("kms", region=region)
    ct = server.client("cloudtrail", region=region)
    key = new_key(kms)
    name = f"behalf/{uuid.uuid4().hex[:8]}"
    created = sm.create_secret(Name=name, SecretString="v1", KmsKeyId=key["Alias"])
    read = sm.get_secret_value(SecretId=name)
    caused = [
        e
        for e in events(ct, "ResourceName", key["Arn"])
        if e["userIdentity"].get("invokedBy") == "secretsmanager.amazonaws.com"
    ]
    assert sorted(e["eventName"] for e in caused) == ["Decrypt", "GenerateDataKey"]
    context = {"SecretARN": created["ARN"], "SecretVersionId": created["VersionId"]}
    for event in caused:
        assert event["eventSource"] == "kms.amazonaws.com"
        assert event["sourceIPAddress"] == event["userAgent"] == "secretsmanager.amazonaws.com"
        assert event["requestParameters"]["encryptionContext"] == context
        assert event["requestParameters"]["keyId"] == key["Arn"]
        assert event["resources"] == [
            {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key["Arn"]}
        ]
        assert event["userIdentity"]["arn"] == admin_arn(ACCOUNT)
        assert event["readOnly"] is True and event["recipientAccountId"] == ACCOUNT
        assert event["requestID"] not in (rid(created), rid(read))
    [decrypt] = [e for e in caused if e["eventName"] == "Decrypt"]
    assert decrypt["requestParameters"]["encryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    [generate] = [e for e in caused if e["eventName"] == "GenerateDataKey"]
    assert generate["requestParameters"]["keySpec"] == "AES_256"


def test_the_kms_events_share_the_reads_durable_batch(
    new_server: StartServer, tmp_path: Path
) -> None:
    """A read's KMS Decrypt is written with the read's own record (adjacent sequences of
    one writer, one group commit), not by a second durable write."""
    data_dir = tmp_path / "data"
    server = new_server("--dev", "--data-dir", str(data_dir))
    sm = server.client()
    name = f"batch/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="v1")
    reads = {rid(sm.get_secret_value(SecretId=name)) for _ in range(3)}
    server.stop()
    records = audit_records(data_dir)
    for index, record in enumerate(records):
        if record.get("requestID") in reads:
            follower = records[index + 1]
            assert follower["eventName"] == "Decrypt"
            assert follower["userIdentity"]["invokedBy"] == "secretsmanager.amazonaws.com"
            mine, next_ = record["strongroomIntegrity"], follower["strongroomIntegrity"]
            assert next_["writer"] == mine["writer"]
            assert next_["sequence"] == mine["sequence"] + 1


# --- cross-account calls (item 3) ----------------------------------------------------------


@pytest.fixture
def two_accounts(new_server: StartServer, tmp_path: Path) -> ServerProcess:
    """A server with the dev account and a second account with its own admin key."""
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
    return new_server("--dev", "--data-dir", str(data_dir))


def test_a_cross_account_read_is_recorded_in_both_accounts(two_accounts: ServerProcess) -> None:
    server = two_accounts
    region = "us-east-1"
    owner_kms = server.client("kms", region=region, **OTHER)
    reader_arn = admin_arn(ACCOUNT)
    key_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": reader_arn},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ],
    }
    key = owner_kms.create_key(Policy=json.dumps(key_policy))["KeyMetadata"]
    owner_sm = server.client(region=region, **OTHER)
    secret = owner_sm.create_secret(Name="shared/db", SecretString="s", KmsKeyId=key["Arn"])
    owner_sm.put_resource_policy(
        SecretId=secret["ARN"],
        ResourcePolicy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": reader_arn},
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    read = server.client(region=region).get_secret_value(SecretId=secret["ARN"])
    mine = by_request(server.client("cloudtrail", region=region), "GetSecretValue", rid(read))
    theirs = by_request(
        server.client("cloudtrail", region=region, **OTHER), "GetSecretValue", rid(read)
    )
    assert mine["recipientAccountId"] == ACCOUNT
    assert mine["userIdentity"]["arn"] == reader_arn
    assert mine["userIdentity"]["accessKeyId"] == "test"
    assert theirs["recipientAccountId"] == OTHER_ACCOUNT
    assert theirs["userIdentity"] == {
        "type": "AWSAccount",
        "principalId": mine["userIdentity"]["principalId"],
        "accountId": ACCOUNT,
    }
    assert mine["sharedEventID"] == theirs["sharedEventID"]
    assert mine["eventID"] != theirs["eventID"]
    assert {
        k: v for k, v in mine.items() if k not in ("userIdentity", "eventID", "recipientAccountId")
    } == {
        k: v
        for k, v in theirs.items()
        if k not in ("userIdentity", "eventID", "recipientAccountId")
    }
    # The key's owner sees the Decrypt made with its key on the reader's behalf.
    [decrypt] = [
        e
        for e in events(server.client("cloudtrail", region=region, **OTHER), "EventName", "Decrypt")
        if e["requestParameters"]["encryptionContext"]["SecretARN"] == secret["ARN"]
        and e["userIdentity"].get("type") == "AWSAccount"
    ]
    assert decrypt["recipientAccountId"] == OTHER_ACCOUNT
    assert decrypt["userIdentity"]["accountId"] == ACCOUNT
    # Neither account sees the other's copy.
    their_ids = {
        e["eventID"]
        for e in events(
            server.client("cloudtrail", region=region, **OTHER), "EventName", "GetSecretValue"
        )
    }
    assert mine["eventID"] not in their_ids


# --- identities, regions, responses (items 5 and 6) ----------------------------------------


def user_with_key(
    server: ServerProcess, policy: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    iam = server.client("iam")
    name = f"audited-{uuid.uuid4().hex[:8]}"
    user = iam.create_user(UserName=name)["User"]
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return user, key


ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def test_get_session_token_credentials_are_the_users_identity_with_a_session(
    server: ServerProcess,
) -> None:
    user, key = user_with_key(server, ALLOW_ALL)
    region = random_region("gst")
    sts = server.client(
        "sts",
        region=region,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    issued = sts.get_session_token(DurationSeconds=3600)
    credentials = issued["Credentials"]
    session = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    sm = server.client(region=region, **session)
    name = f"gst/{uuid.uuid4().hex[:8]}"
    created = sm.create_secret(Name=name, SecretString="v")
    event = by_request(server.client("cloudtrail", region=region), "CreateSecret", rid(created))
    identity = event["userIdentity"]
    issued_at = (credentials["Expiration"]).timestamp() - 3600
    assert identity == {
        "type": "IAMUser",
        "principalId": user["UserId"],
        "arn": user["Arn"],
        "accountId": ACCOUNT,
        "accessKeyId": credentials["AccessKeyId"],
        "userName": user["UserName"],
        "sessionContext": {
            "attributes": {
                "mfaAuthenticated": "false",
                "creationDate": identity["sessionContext"]["attributes"]["creationDate"],
            }
        },
    }
    created_at = datetime.strptime(
        identity["sessionContext"]["attributes"]["creationDate"], "%Y-%m-%dT%H:%M:%SZ"
    ).replace(tzinfo=UTC)
    assert int(created_at.timestamp()) == int(issued_at)
    # GetSessionToken's own record: a global STS event (us-east-1), read-only, naming the
    # access key it issued (never its secret or token).
    global_ct = server.client("cloudtrail", region="us-east-1")
    recorded = by_request(global_ct, "GetSessionToken", rid(issued))
    assert recorded["awsRegion"] == "us-east-1" and recorded["readOnly"] is True
    assert recorded["responseElements"]["credentials"]["accessKeyId"] == credentials["AccessKeyId"]
    text = json.dumps(recorded)
    assert credentials["SecretAccessKey"] not in text and credentials["SessionToken"] not in text
    assert not [
        e
        for e in events(server.client("cloudtrail", region=region), "EventName", "GetSessionToken")
        if e.get("requestID") == rid(issued)
    ]


def test_assume_role_is_read_only_and_iam_is_recorded_in_us_east_1(server: ServerProcess) -> None:
    region = random_region("glob")
    iam = server.client("iam", region=region)
    role_name = f"reader-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
        ],
    }
    created = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
    assumed = server.client("sts", region=region).assume_role(
        RoleArn=created["Role"]["Arn"], RoleSessionName="audit"
    )
    ct = server.client("cloudtrail", region="us-east-1")
    create_record = by_request(ct, "CreateRole", rid(created))
    assert create_record["awsRegion"] == "us-east-1"
    assume_record = by_request(ct, "AssumeRole", rid(assumed))
    assert assume_record["readOnly"] is True and assume_record["awsRegion"] == "us-east-1"
    assert (
        assume_record["responseElements"]["credentials"]["accessKeyId"]
        == assumed["Credentials"]["AccessKeyId"]
    )
    assert {
        "accountId": ACCOUNT,
        "type": "AWS::IAM::Role",
        "ARN": created["Role"]["Arn"],
    } in assume_record["resources"]
    # A session's own calls carry when it was created.
    session = server.client(
        "sts",
        region=region,
        aws_access_key_id=assumed["Credentials"]["AccessKeyId"],
        aws_secret_access_key=assumed["Credentials"]["SecretAccessKey"],
        aws_session_token=assumed["Credentials"]["SessionToken"],
    )
    who = session.get_caller_identity()
    identity = by_request(ct, "GetCallerIdentity", rid(who))["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["sessionContext"]["attributes"]["creationDate"].endswith("Z")


def test_key_operations_and_refusals_name_their_resources(server: ServerProcess) -> None:
    region = random_region("res")
    kms = server.client("kms", region=region)
    ct = server.client("cloudtrail", region=region)
    key = new_key(kms)
    rotated = kms.enable_key_rotation(KeyId=key["KeyId"])
    policy = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    put = kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)
    alias = f"alias/res-{uuid.uuid4().hex[:8]}"
    aliased = kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for name, response in (
        ("EnableKeyRotation", rotated),
        ("PutKeyPolicy", put),
        ("CreateAlias", aliased),
    ):
        record = by_request(ct, name, rid(response))
        assert key["Arn"] in [r["ARN"] for r in record["resources"] or []], (name, record)
    # Encrypt by alias: keyId recorded as the key's ARN, with the algorithm.
    encrypted = kms.encrypt(KeyId=key["Alias"], Plaintext=b"x")
    record = by_request(ct, "Encrypt", rid(encrypted))
    assert record["requestParameters"]["keyId"] == key["Arn"]
    assert record["requestParameters"]["encryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
    record = by_request(ct, "Decrypt", rid(decrypted))
    assert record["requestParameters"]["keyId"] == key["Arn"]
    assert record["requestParameters"]["encryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    # A refused read: a lookup by the secret finds who was refused.
    sm = server.client(region=region)
    secret = sm.create_secret(Name=f"res/{uuid.uuid4().hex[:8]}", SecretString="v")
    user, user_key = user_with_key(server)
    stranger = server.client(
        region=region,
        aws_access_key_id=user_key["AccessKeyId"],
        aws_secret_access_key=user_key["SecretAccessKey"],
    )
    refused = aws_error(
        stranger.get_secret_value, SecretId=secret["ARN"], code="AccessDeniedException"
    )
    assert refused
    refusals = [
        e
        for e in events(ct, "ResourceName", secret["ARN"])
        if e.get("errorCode") == "AccessDeniedException"
    ]
    assert [e["userIdentity"]["arn"] for e in refusals] == [user["Arn"]]
    assert sm.describe_secret(SecretId=secret["ARN"])["Name"] == secret["Name"]


def test_mfa_codes_are_never_recorded(server: ServerProcess) -> None:
    user, key = user_with_key(server, ALLOW_ALL)
    code = "918273"
    sts = server.client(
        "sts",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    serial = f"arn:aws:iam::{ACCOUNT}:mfa/none-{uuid.uuid4().hex[:6]}"
    error = aws_error(
        sts.get_session_token, SerialNumber=serial, TokenCode=code, code="AccessDenied", status=403
    )
    assert error
    [record] = [
        e
        for e in events(server.client("cloudtrail"), "Username", user["UserName"])
        if e["eventName"] == "GetSessionToken"
    ]
    assert record["requestParameters"] == {"serialNumber": serial}
    assert code not in json.dumps(record)


# --- Organizations (item 6) ------------------------------------------------------------------


def test_create_account_records_its_parameters_masked_and_its_result(
    new_server: StartServer, tmp_path: Path
) -> None:
    server = new_server("--dev")
    orgs = server.client("organizations", region="eu-west-1")
    orgs.create_organization(FeatureSet="ALL")
    email = f"member-{uuid.uuid4().hex[:6]}@example.com"
    created = orgs.create_account(Email=email, AccountName="payments", RoleName="Admin")
    status = created["CreateAccountStatus"]
    ct = server.client("cloudtrail", region="us-east-1")
    record = by_request(ct, "CreateAccount", rid(created))
    assert record["awsRegion"] == "us-east-1"
    assert record["requestParameters"] == {
        "email": "****",
        "accountName": "****",
        "roleName": "Admin",
    }
    [result] = events(ct, "EventName", "CreateAccountResult")
    assert result["eventType"] == "AwsServiceEvent"
    assert result["serviceEventDetails"]["createAccountStatus"]["id"] == status["Id"]
    assert result["serviceEventDetails"]["createAccountStatus"]["state"] == "SUCCEEDED"
    outcome = orgs.describe_create_account_status(CreateAccountRequestId=status["Id"])
    account = outcome["CreateAccountStatus"]["AccountId"]
    assert result["serviceEventDetails"]["createAccountStatus"]["accountId"] == account
    assert email not in json.dumps(record) + json.dumps(result)


# --- LookupEvents' exceptions (item 7) and ListPublicKeys (item 2) -------------------------


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {"LookupAttributes": [{"AttributeKey": "Bogus", "AttributeValue": "x"}]},
            "InvalidLookupAttributesException",
        ),
        ({"MaxResults": 51}, "InvalidMaxResultsException"),
        ({"MaxResults": 0}, "InvalidMaxResultsException"),
        ({"EventCategory": "everything"}, "InvalidEventCategoryException"),
    ],
)
def test_bad_lookups_answer_the_models_exceptions(
    server: ServerProcess, params: dict[str, Any], code: str
) -> None:
    region = random_region("bad")
    raw = server.client("cloudtrail", region=region, validate=False)
    before = raw.lookup_events()["Events"]
    aws_error(raw.lookup_events, **params, code=code)
    after = [e for e in raw.lookup_events()["Events"] if e["EventName"] != "LookupEvents"]
    assert after == [e for e in before if e["EventName"] != "LookupEvents"]


def test_list_public_keys_serves_the_signing_key_with_its_validity(
    new_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = new_server("--dev", "--data-dir", str(data_dir))
    ct = server.client("cloudtrail")
    answer = ct.list_public_keys()
    [key] = answer["PublicKeyList"]
    loaded = load_der_public_key(key["Value"])
    on_disk = read_public_key(data_dir / "audit" / "signing-key.pub")
    assert key["Fingerprint"] == fingerprint(loaded) == fingerprint(on_disk)  # type: ignore[arg-type]
    assert key["ValidityStartTime"] <= key["ValidityEndTime"]
    digest = next((data_dir / "audit" / "digests").glob("*/00000001.json"))
    assert json.loads(digest.read_bytes())["publicKeyFingerprint"] == key["Fingerprint"]
    later = ct.list_public_keys(StartTime=key["ValidityEndTime"].replace(year=2100))
    assert later["PublicKeyList"] == []
    aws_error(
        ct.list_public_keys,
        StartTime=key["ValidityEndTime"],
        EndTime=key["ValidityStartTime"].replace(year=2000),
        code="InvalidTimeRangeException",
    )
    assert by_request(ct, "ListPublicKeys", rid(answer))["readOnly"] is True
