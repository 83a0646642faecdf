"""A manual change during a rotation abandons it, and PutSecretValue's RotationToken is
checked, end to end: a real Lambda-format function run by a --dev server's rotation runner
(two workers, the test clock of tests/e2e/test_rotation.py), driven with boto3.

AWS (user guide, CloudTrail's ``RotationAbandoned``): a manually created version abandons
the ongoing rotation; Secrets Manager removes AWSPENDING so that future rotations succeed,
and records the event. The RotationToken the function is handed "validates the identity"
of its PutSecretValue; a token that is not the secret's rotation's is refused."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.secrets.rotation import RETRY_DELAYS
from tests.aws import snapshot
from tests.e2e.test_functions import package
from tests.e2e.test_rotation import (
    GOOD,
    ROTATION_ACTIONS,
    START,
    Rig,
    rig,
    start_rig,
)
from tests.e2e.test_rotation_docs import wait_for
from tests.server import ServerProcess

__all__ = ["rig"]  # the fixture, used by name

# The guide's function, saying which step it runs; in setSecret it marks the secret (a tag
# the test waits for) and waits until its version is no longer AWSPENDING.
PAUSING = GOOD.replace(
    "def set_secret(arn, token, stages):\n",
    """def set_secret(arn, token, stages):
    import time
    service.tag_resource(SecretId=arn, Tags=[{"Key": "rotation-step", "Value": "setSecret"}])
    for _ in range(200):
        labels = service.describe_secret(SecretId=arn)["VersionIdsToStages"].get(token, [])
        if "AWSPENDING" not in labels:
            print("setSecret: AWSPENDING was taken off " + token)
            return
        time.sleep(0.1)
    raise RuntimeError("nobody changed the secret")
""",
).replace(
    '    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]\n',
    '    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]\n'
    '    print("STEP " + step)\n',
)

# The guide's function passing its RotationToken with its PutSecretValue.
PASSING_TOKEN = GOOD.replace(
    "def lambda_handler(event, context):\n",
    "def lambda_handler(event, context):\n    global EVENT\n    EVENT = event\n",
).replace(
    '        VersionStages=["AWSPENDING"],\n    )\n',
    '        VersionStages=["AWSPENDING"],\n        RotationToken=EVENT["RotationToken"],\n    )\n',
)
_PUT_PENDING_END = 'RotationToken=EVENT["RotationToken"],\n    )\n'

# ... after trying it on the secret OTHER_SECRET names (which it must not be good for).
TOKENED = PASSING_TOKEN.replace(
    '    current["password"] = ',
    """    try:
        service.put_secret_value(
            SecretId=os.environ["OTHER_SECRET"],
            SecretString="forged",
            RotationToken=EVENT["RotationToken"],
        )
        print("OTHER accepted")
    except service.exceptions.ClientError as refused:
        print("OTHER " + refused.response["Error"]["Code"])
    current["password"] = """,
    1,
)


def log_lines(rig: Rig, function: str, prefix: str) -> list[str]:
    group = f"/aws/lambda/{function.rsplit(':', 1)[1]}"
    return [
        e["message"].strip()
        for e in rig.logs.filter_log_events(logGroupName=group)["events"]
        if e["message"].startswith(prefix)
    ]


def put_requests(rig: Rig) -> list[dict[str, Any]]:
    found = rig.ct.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "PutSecretValue"}],
        StartTime=START - timedelta(days=1),
        EndTime=START + timedelta(days=30),
    )["Events"]
    return [json.loads(e["CloudTrailEvent"]) for e in found]


def test_a_manual_change_mid_rotation_abandons_it(rig: Rig) -> None:
    function = rig.function(PAUSING, actions=[*ROTATION_ACTIONS, "secretsmanager:TagResource"])
    arn = rig.secret()
    (old,) = rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    token = rig.sm.rotate_secret(
        SecretId=arn, RotationLambdaARN=function, RotationRules={"AutomaticallyAfterDays": 3}
    )["VersionId"]
    wait_for(lambda: rig.sm.describe_secret(SecretId=arn).get("Tags"), "the function in setSecret")
    before = rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert before == {old: ["AWSCURRENT"], token: ["AWSPENDING"]}

    # A person changes the value while the function is in setSecret. (The server's time
    # stays: moved by hours, it would expire the function's session credentials.)
    manual = rig.sm.put_secret_value(SecretId=arn, SecretString='{"password": "by hand"}')
    assert manual["VersionStages"] == ["AWSCURRENT"]
    # Every worker is idle again (the runner is done with the abandoned rotation).
    rig.time.advance(timedelta(seconds=1))

    described = rig.sm.describe_secret(SecretId=arn)
    assert described["VersionIdsToStages"] == {
        old: ["AWSPREVIOUS"],
        manual["VersionId"]: ["AWSCURRENT"],
    }
    assert rig.sm.get_secret_value(SecretId=arn)["SecretString"] == '{"password": "by hand"}'
    assert described["RotationEnabled"] is True
    assert "LastRotatedDate" not in described
    # The schedule counts from the manual change: the whole day, three days later.
    assert described["NextRotationDate"] == (
        START.replace(hour=0, minute=0) + timedelta(days=4) - timedelta(seconds=1)
    )
    # The function saw its version lose AWSPENDING; the runner invoked nothing after it.
    assert log_lines(rig, function, "STEP") == ["STEP createSecret", "STEP setSecret"]
    taken_off = f"setSecret: AWSPENDING was taken off {token}"
    assert log_lines(rig, function, "setSecret:") == [taken_off]
    assert rig.events("RotationSucceeded", arn) == []
    assert rig.events("RotationFailed", arn) == []
    (abandoned,) = rig.events("RotationAbandoned", arn)
    assert abandoned["eventType"] == "AwsServiceEvent"
    assert abandoned["eventSource"] == "secretsmanager.amazonaws.com"
    assert abandoned["userIdentity"]["invokedBy"] == "secretsmanager.amazonaws.com"
    assert abandoned["additionalEventData"] == {"SecretId": arn}
    assert abandoned["serviceEventDetails"] == {
        "versionId": token,
        "supersededBy": manual["VersionId"],
    }
    # It is written with the request that caused it, at the same time.
    (request,) = [
        r
        for r in put_requests(rig)
        if (r.get("responseElements") or {}).get("versionId") == manual["VersionId"]
    ]
    assert request["userIdentity"]["type"] != "AssumedRole"  # the person, not the function
    assert request["eventTime"] == abandoned["eventTime"]
    assert len(rig.started(arn)) == 1

    # Past every retry delay nothing restarts the abandoned version...
    rig.time.advance(RETRY_DELAYS[0] + RETRY_DELAYS[1])
    assert len(rig.started(arn)) == 1
    assert token not in rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    # ...and the next rotation is not blocked by it.
    rig.lam.update_function_code(FunctionName=function, ZipFile=package(GOOD))
    again = rig.sm.rotate_secret(SecretId=arn)["VersionId"]
    wait_for(lambda: rig.events("RotationSucceeded", arn), "the next rotation")
    assert rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"] == {
        manual["VersionId"]: ["AWSPREVIOUS"],
        again: ["AWSCURRENT"],
    }


def test_the_rotation_token_is_good_only_for_its_own_rotation(rig: Rig) -> None:
    other = rig.secret()
    arn = rig.secret()
    (old,) = rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    error = rig.sm.exceptions.ClientError

    # No rotation in progress: any token is refused, and nothing changes.
    before = snapshot(rig.sm, arn)
    forged = str(uuid.UUID(int=1))
    with pytest.raises(error) as refused:
        rig.sm.put_secret_value(SecretId=arn, SecretString="forged", RotationToken=forged)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert snapshot(rig.sm, arn) == before

    # The function's own token: accepted for its secret, refused for another.
    function = rig.function(TOKENED)
    rig.lam.update_function_configuration(
        FunctionName=function, Environment={"Variables": {"OTHER_SECRET": other}}
    )
    other_before = snapshot(rig.sm, other)
    token = rig.sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)["VersionId"]
    wait_for(lambda: rig.events("RotationSucceeded", arn), "the rotation")
    assert log_lines(rig, function, "OTHER") == ["OTHER AccessDeniedException"]
    assert snapshot(rig.sm, other) == other_before
    assert rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"] == {
        old: ["AWSPREVIOUS"],
        token: ["AWSCURRENT"],
    }
    assert rig.events("RotationAbandoned", arn) == []
    assert forged not in refused.value.response["Error"]["Message"]
    # The token is sensitive: no record holds it.
    records = put_requests(rig)
    assert {r.get("errorCode") for r in records} == {None, "AccessDeniedException"}
    for record in records:
        assert "rotationToken" not in (record.get("requestParameters") or {})
        assert forged not in json.dumps(record)


# The guide's function passing its RotationToken with its PutSecretValue. It prints the
# token (for the test to look for in the store: a test's function, not a product's log)
# and waits in setSecret until the test has read the store (the tag "store-read").
REMEMBERING = PASSING_TOKEN.replace(
    _PUT_PENDING_END, _PUT_PENDING_END + '    print("TOKEN " + EVENT["RotationToken"])\n'
).replace(
    "def set_secret(arn, token, stages):\n",
    """def set_secret(arn, token, stages):
    import time
    service.tag_resource(SecretId=arn, Tags=[{"Key": "rotation-step", "Value": "setSecret"}])
    for _ in range(300):
        tags = service.describe_secret(SecretId=arn).get("Tags", [])
        if any(tag["Key"] == "store-read" for tag in tags):
            return
        time.sleep(0.1)
    raise RuntimeError("the test never read the store")
""",
)


@pytest.fixture
def stored(tmp_path: Path, new_server: Callable[..., ServerProcess]) -> Iterator[Rig]:
    """The rig of tests/e2e/test_rotation.py over a data directory the test can read."""
    yield start_rig(tmp_path, new_server, "--data-dir", str(tmp_path / "data"))


def read_store(database: Path) -> tuple[str, list[str]]:
    """The whole database as a dump, and the claim ids of the running rotations: what
    someone who can read the store (a copy of the file, a backup) learns."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        claims = db.execute("SELECT claim_id FROM secret_rotations WHERE state = 'running'")
        return "\n".join(db.iterdump()), [row[0] for row in claims]
    finally:
        db.close()


def test_the_store_holds_no_rotation_token(stored: Rig, tmp_path: Path) -> None:
    function = stored.function(
        REMEMBERING, actions=[*ROTATION_ACTIONS, "secretsmanager:TagResource"]
    )
    arn = stored.secret()
    (old,) = stored.sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    version = stored.sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)["VersionId"]
    wait_for(lambda: stored.sm.describe_secret(SecretId=arn).get("Tags"), "setSecret")
    # createSecret's PutSecretValue carried the token and was accepted.
    assert "AWSPENDING" in stored.sm.describe_secret(SecretId=arn)["VersionIdsToStages"][version]
    (line,) = log_lines(stored, function, "TOKEN ")
    token = line.split()[1]

    dumped, (claim_id,) = read_store(tmp_path / "data" / "strongroom.db")
    dumped = dumped.lower()
    assert token.lower() not in dumped
    assert token.replace("-", "").lower() not in dumped
    # What a reader could make of the row (the claim id as a token, the way the store's
    # earlier form derived the token from it) is refused and changes nothing.
    before = snapshot(stored.sm, arn)
    forged = str(uuid.UUID(hex=claim_id))
    with pytest.raises(stored.sm.exceptions.ClientError) as refused:
        stored.sm.put_secret_value(SecretId=arn, SecretString="forged", RotationToken=forged)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert snapshot(stored.sm, arn) == before

    stored.sm.tag_resource(SecretId=arn, Tags=[{"Key": "store-read", "Value": "yes"}])
    wait_for(lambda: stored.events("RotationSucceeded", arn), "the rotation")
    assert stored.sm.describe_secret(SecretId=arn)["VersionIdsToStages"] == {
        old: ["AWSPREVIOUS"],
        version: ["AWSCURRENT"],
    }
    assert stored.events("RotationAbandoned", arn) == []


# The guide's function with finishSecret as AWS's templates write it: the labels read again
# (without checking AWSPENDING) just before the move. It waits in finishSecret, after the
# handler's staging check, until the test has changed the secret (the tag "changed").
GOOD_FINISH = """def finish_secret(arn, token, stages):
    current = next(version for version, labels in stages.items() if "AWSCURRENT" in labels)
"""
assert GOOD_FINISH in GOOD
REREADING = GOOD.replace(
    GOOD_FINISH,
    """def finish_secret(arn, token, stages):
    import time
    service.tag_resource(SecretId=arn, Tags=[{"Key": "rotation-step", "Value": "finishSecret"}])
    for _ in range(300):
        tags = service.describe_secret(SecretId=arn).get("Tags", [])
        if any(tag["Key"] == "changed" for tag in tags):
            break
        time.sleep(0.1)
    else:
        raise RuntimeError("nobody changed the secret")
    stages = service.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current = next(version for version, labels in stages.items() if "AWSCURRENT" in labels)
""",
)


def test_a_late_finish_secret_moves_awscurrent_as_on_aws(rig: Rig) -> None:
    """Pinned (docs/architecture.md, "Rotation"; docs/rotation.md): a finishSecret that
    passed its staging check before a manual change and reads the labels again after it
    moves AWSCURRENT onto the abandoned version. Its UpdateSecretVersionStage carries no
    token and comes with the same role session as any other request of the function, so
    Secrets Manager serves it as AWS does. (The built-ins, and the guide's function, do not
    read the labels again: tests/unit/test_builtin_finish_race.py.)"""
    function = rig.function(REREADING, actions=[*ROTATION_ACTIONS, "secretsmanager:TagResource"])
    arn = rig.secret()
    (old,) = rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    token = rig.sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)["VersionId"]
    wait_for(lambda: rig.sm.describe_secret(SecretId=arn).get("Tags"), "finishSecret")

    manual = rig.sm.put_secret_value(SecretId=arn, SecretString='{"password": "by hand"}')
    assert rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"] == {
        old: ["AWSPREVIOUS"],
        manual["VersionId"]: ["AWSCURRENT"],
    }
    (abandoned,) = rig.events("RotationAbandoned", arn)
    assert abandoned["serviceEventDetails"]["versionId"] == token

    rig.sm.tag_resource(SecretId=arn, Tags=[{"Key": "changed", "Value": "yes"}])
    wait_for(
        lambda: (
            "AWSCURRENT"
            in rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"].get(token, [])
        ),
        "the late finishSecret",
    )
    rig.time.advance(timedelta(seconds=1))  # every worker is idle again
    assert rig.sm.describe_secret(SecretId=arn)["VersionIdsToStages"] == {
        manual["VersionId"]: ["AWSPREVIOUS"],
        token: ["AWSCURRENT"],
    }
    assert rig.events("RotationSucceeded", arn) == []
    assert rig.events("RotationFailed", arn) == []
    assert len(rig.events("RotationAbandoned", arn)) == 1
