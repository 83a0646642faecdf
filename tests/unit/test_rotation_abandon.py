"""A manual change during a rotation abandons it (CloudTrail's ``RotationAbandoned``), and
PutSecretValue's ``RotationToken`` is good only for the secret's rotation in progress:
domain level, time moved by a ManualClock, the rotation template played by the in-test
``TemplateFunctions`` of test_rotation_runner (the end-to-end versions, with a real
function, are in tests/e2e/test_rotation_abandon.py)."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from strongroom.audit.derived import collecting
from strongroom.clock import ManualClock
from strongroom.models import service_model
from strongroom.protocol.errors import ServiceError
from strongroom.secrets.rotation import RETRY_DELAYS, new_rotation_token
from strongroom.server.deployment import Deployment
from tests.unit.test_rotation_runner import (
    FUNCTION,
    SM,
    TemplateFunctions,
    clock,
    describe,
    functions,
    new_secret,
    rotate,
    service_events,
    sweep,
    value,
    worker,
)

__all__ = ["clock", "functions", "worker"]  # fixtures, used by name


def after(
    functions: TemplateFunctions, step: str, action: Callable[[dict[str, Any]], None]
) -> None:
    """Have ``action`` done (as the test, not the function) once the function ran ``step``."""
    original = functions._step

    def run(event: dict[str, Any]) -> None:
        original(event)
        if event["Step"] == step:
            action(event)

    functions._step = run  # type: ignore[method-assign]


# The service events a request causes (audit/derived.py), as the pipeline collects them to
# write with the request's record; the end-to-end tests read them from the audit trail.
CAUSED: list[Any] = []


def put(deployment: Deployment, arn: str, secret: str, **params: Any) -> dict[str, Any]:
    request = {
        "SecretId": arn,
        "ClientRequestToken": str(uuid.uuid4()),
        "SecretString": secret,
        **params,
    }
    with collecting() as caused:
        result: dict[str, Any] = deployment.secrets.put_secret_value(SM, request)
    CAUSED.extend(caused)
    return result


def update(deployment: Deployment, arn: str, secret: str, token: str) -> None:
    request = {"SecretId": arn, "SecretString": secret, "ClientRequestToken": token}
    with collecting() as caused:
        deployment.secrets.update_secret(SM, request)
    CAUSED.extend(caused)


def abandoned() -> list[dict[str, Any]]:
    return [e for e in CAUSED if isinstance(e, dict) and e.get("eventName") == "RotationAbandoned"]


@pytest.fixture(autouse=True)
def _caused() -> Iterator[None]:
    CAUSED.clear()
    yield
    CAUSED.clear()


def state_of(deployment: Deployment, arn: str) -> dict[str, Any]:
    """What a refused request must leave as it was."""
    described = describe(deployment, arn)
    versions = deployment.secrets.list_secret_version_ids(
        SM, {"SecretId": arn, "IncludeDeprecated": True}
    )["Versions"]
    return {
        "stages": described["VersionIdsToStages"],
        "rotation": {k: described.get(k) for k in ("RotationEnabled", "NextRotationDate")},
        "versions": sorted(v["VersionId"] for v in versions),
        "value": value(deployment, arn),
    }


# --- a manual change abandons the rotation -------------------------------------------------------


@pytest.mark.parametrize("how", ["PutSecretValue", "UpdateSecret"])
def test_a_manual_change_mid_rotation_abandons_it(
    worker: Deployment, functions: TemplateFunctions, clock: ManualClock, how: str
) -> None:
    arn = new_secret(worker)
    (old,) = describe(worker, arn)["VersionIdsToStages"]
    token = rotate(
        worker, arn, RotationLambdaARN=FUNCTION, RotationRules={"AutomaticallyAfterDays": 3}
    )["VersionId"]
    manual = str(uuid.uuid4())
    seen: dict[str, Any] = {}

    def change(_event: dict[str, Any]) -> None:
        seen["before"] = describe(worker, arn)["VersionIdsToStages"]
        clock.advance(timedelta(days=2))  # the schedule then counts from this day
        if how == "PutSecretValue":
            put(worker, arn, "by hand", ClientRequestToken=manual)
        else:
            update(worker, arn, "by hand", manual)

    after(functions, "setSecret", change)
    assert sweep(worker) == 1
    assert seen["before"] == {old: ["AWSCURRENT"], token: ["AWSPENDING"]}
    # The runner stopped: testSecret and finishSecret were never invoked...
    assert [c["Step"] for c in functions.calls] == ["createSecret", "setSecret"]
    # ...AWSPENDING is off the abandoned version, the manual value is current.
    described = describe(worker, arn)
    assert described["VersionIdsToStages"] == {old: ["AWSPREVIOUS"], manual: ["AWSCURRENT"]}
    assert value(worker, arn) == "by hand"
    # Rotation stays on; the schedule counts from the manual change.
    assert described["RotationEnabled"] is True
    assert described.get("LastRotatedDate") is None
    changed = clock.now()
    assert described["NextRotationDate"] == (
        changed.replace(hour=0) + timedelta(days=4) - timedelta(seconds=1)
    )
    # The runner recorded nothing after RotationStarted: no success, no failure.
    assert [e["eventName"] for e in service_events(worker)] == ["RotationStarted"]
    (event,) = abandoned()  # written with the manual request's own record
    assert event["eventSource"] == "secretsmanager.amazonaws.com"
    assert event["eventType"] == "AwsServiceEvent"
    assert event["serviceEventDetails"] == {"versionId": token, "supersededBy": manual}
    assert event["additionalEventData"] == {"SecretId": arn}
    assert event["userIdentity"] == {
        "accountId": SM.account_id,
        "invokedBy": "secretsmanager.amazonaws.com",
    }
    assert [r["ARN"] for r in event["resources"]] == [arn]
    # Nothing is due before the next window; RotateSecret is not blocked.
    clock.advance(RETRY_DELAYS[1])
    assert sweep(worker) == 0
    again = rotate(worker, arn)["VersionId"]
    assert sweep(worker) == 1
    assert describe(worker, arn)["VersionIdsToStages"] == {
        manual: ["AWSPREVIOUS"],
        again: ["AWSCURRENT"],
    }


def test_a_manual_change_abandons_a_rotation_waiting_for_its_retry(
    worker: Deployment, functions: TemplateFunctions, clock: ManualClock
) -> None:
    arn = new_secret(worker)
    functions.fail_in = "setSecret"
    token = rotate(worker, arn, RotationLambdaARN=FUNCTION)["VersionId"]
    assert sweep(worker) == 1
    assert "AWSPENDING" in describe(worker, arn)["VersionIdsToStages"][token]
    manual = put(worker, arn, "by hand")
    assert manual["VersionStages"] == ["AWSCURRENT"]
    assert token not in describe(worker, arn)["VersionIdsToStages"]
    # Without a schedule nothing is left to do: the retry never comes.
    functions.fail_in = None
    calls = len(functions.calls)
    clock.advance(RETRY_DELAYS[0] + RETRY_DELAYS[1])
    assert sweep(worker) == 0
    assert len(functions.calls) == calls
    names = [e["eventName"] for e in service_events(worker)]
    assert names == ["RotationStarted", "RotationFailed"]
    assert [e["serviceEventDetails"]["versionId"] for e in abandoned()] == [token]
    assert describe(worker, arn)["RotationEnabled"] is True


def test_the_abandoned_version_cannot_be_brought_back(
    worker: Deployment, functions: TemplateFunctions
) -> None:
    """The function's late createSecret (PutSecretValue of the abandoned version, labelled
    AWSPENDING) would make the rotation in progress again, and the next attempt finish it
    over the manual value: it is refused as a used ClientRequestToken."""
    arn = new_secret(worker)
    functions.fail_in = "createSecret"
    token = rotate(worker, arn, RotationLambdaARN=FUNCTION)["VersionId"]
    assert sweep(worker) == 1
    manual = put(worker, arn, "by hand")["VersionId"]
    before = state_of(worker, arn)
    with pytest.raises(ServiceError) as refused:
        put(worker, arn, "late", ClientRequestToken=token, VersionStages=["AWSPENDING"])
    assert refused.value.code == "ResourceExistsException"
    assert state_of(worker, arn) == before
    assert before["stages"][manual] == ["AWSCURRENT"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"VersionStages": ["MYLABEL"]}, id="new-version-not-current"),
        pytest.param({"VersionStages": ["AWSPENDING", "AWSCURRENT"]}, id="takes-awspending"),
        pytest.param(None, id="label-moved"),
    ],
)
def test_changes_that_do_not_abandon(
    worker: Deployment, functions: TemplateFunctions, change: dict[str, Any] | None
) -> None:
    """Only a new value taking AWSCURRENT abandons; a new version that is not current, or
    moving labels (UpdateSecretVersionStage creates no version) do not. (A new value that
    takes AWSPENDING too ends the rotation's hold of it all the same: abandoned.)"""
    arn = new_secret(worker)
    (old,) = describe(worker, arn)["VersionIdsToStages"]
    functions.fail_in = "setSecret"
    token = rotate(worker, arn, RotationLambdaARN=FUNCTION)["VersionId"]
    assert sweep(worker) == 1
    if change is None:
        other = put(worker, arn, "other", VersionStages=["MYLABEL"])["VersionId"]
        worker.secrets.update_secret_version_stage(
            SM,
            {
                "SecretId": arn,
                "VersionStage": "AWSCURRENT",
                "MoveToVersionId": other,
                "RemoveFromVersionId": old,
            },
        )
    else:
        put(worker, arn, "other", **change)
    stages = describe(worker, arn)["VersionIdsToStages"]
    if change and "AWSCURRENT" in change["VersionStages"]:
        assert token not in stages
        assert len(abandoned()) == 1
    else:
        assert stages[token] == ["AWSPENDING"]
        assert abandoned() == []


def test_the_configuration_test_is_not_abandoned(
    worker: Deployment, functions: TemplateFunctions
) -> None:
    arn = new_secret(worker)
    rotate(
        worker,
        arn,
        RotationLambdaARN=FUNCTION,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    put(worker, arn, "by hand")
    assert sweep(worker) == 1
    assert abandoned() == []
    assert [c["Step"] for c in functions.calls] == ["testSecret"]


# --- RotationToken ------------------------------------------------------------------------------


def test_the_rotation_token_fits_the_model_and_is_handed_to_each_step(
    worker: Deployment, functions: TemplateFunctions
) -> None:
    shape = service_model("secretsmanager").shape_for("RotationTokenType")
    arn = new_secret(worker)
    rotate(worker, arn, RotationLambdaARN=FUNCTION)
    assert sweep(worker) == 1
    tokens = {c["RotationToken"] for c in functions.calls}
    (token,) = tokens  # one claim: one token for the four steps
    assert shape.metadata["min"] <= len(token) <= shape.metadata["max"]
    assert re.fullmatch(shape.metadata["pattern"], token)


def test_put_secret_value_with_the_rotations_token_is_the_rotations_own(
    worker: Deployment, functions: TemplateFunctions
) -> None:
    """The right token succeeds and abandons nothing, even taking AWSCURRENT to a new
    version; a token of another secret's rotation, a made-up one, or one whose claim ended
    are refused with AccessDeniedException and change nothing."""
    arn, other = new_secret(worker), new_secret(worker)
    found: dict[str, Any] = {}

    def during(event: dict[str, Any]) -> None:
        good = event["RotationToken"]
        for secret, token in (
            (other, good),  # another secret
            (arn, str(uuid.uuid4())),  # made up
            (arn, good.upper()),  # not the same string
        ):
            before = state_of(worker, secret)
            with pytest.raises(ServiceError) as refused:
                put(worker, secret, "forged", RotationToken=token)
            found.setdefault("codes", []).append(refused.value.code)
            assert state_of(worker, secret) == before
            assert refused.value.message.count(token) == 0  # never echoed
        found["own"] = put(worker, arn, "the rotation's", RotationToken=good)
        found["token"] = good

    after(functions, "setSecret", during)
    # The other secret's rotation is claimed (by a worker that has not run a step yet).
    rotate(worker, other, RotationLambdaARN=FUNCTION)
    assert len(worker.rotations.audited(worker.secrets.claim_rotations)) == 1
    rotated = rotate(worker, arn, RotationLambdaARN=FUNCTION)["VersionId"]
    assert sweep(worker) == 1
    assert found["codes"] == ["AccessDeniedException"] * 3
    # The rotation's own new value took AWSCURRENT without abandoning it; its
    # finishSecret then moved AWSCURRENT to the rotated version as usual.
    own = found["own"]["VersionId"]
    assert found["own"]["VersionStages"] == ["AWSCURRENT"]
    assert abandoned() == []
    assert describe(worker, arn)["VersionIdsToStages"] == {
        own: ["AWSPREVIOUS"],
        rotated: ["AWSCURRENT"],
    }
    # Once the rotation ended, its token is good for nothing.
    before = state_of(worker, arn)
    with pytest.raises(ServiceError) as refused:
        put(worker, arn, "late", RotationToken=found["token"])
    assert refused.value.code == "AccessDeniedException"
    assert state_of(worker, arn) == before


def test_a_rotation_token_without_a_rotation_is_refused(worker: Deployment) -> None:
    arn = new_secret(worker)
    before = state_of(worker, arn)
    with pytest.raises(ServiceError) as refused:
        put(worker, arn, "x", RotationToken=new_rotation_token())
    assert refused.value.code == "AccessDeniedException"
    assert state_of(worker, arn) == before


def dump(deployment: Deployment) -> str:
    """Everything the store holds, as a reader of the database file sees it (a dump)."""
    db = sqlite3.connect(f"file:{deployment.data_dir / 'strongroom.db'}?mode=ro", uri=True)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


def running_claim_ids(deployment: Deployment) -> list[str]:
    db = sqlite3.connect(f"file:{deployment.data_dir / 'strongroom.db'}?mode=ro", uri=True)
    try:
        found = db.execute("SELECT claim_id FROM secret_rotations WHERE state = 'running'")
        return [row[0] for row in found]
    finally:
        db.close()


def test_the_store_holds_no_rotation_token(
    worker: Deployment, functions: TemplateFunctions
) -> None:
    """While a rotation runs, neither its row nor anything else in the database holds its
    RotationToken, in any form; what a reader of the store could make of the row (the claim
    id, read as a token the way the store's earlier form derived tokens) is refused and
    changes nothing; the token itself still works."""
    arn = new_secret(worker)
    found: dict[str, Any] = {}

    def during(event: dict[str, Any]) -> None:
        token = event["RotationToken"]
        stored = dump(worker).lower()
        found["forms"] = [token.lower(), token.replace("-", "").lower()]
        found["stored"] = [form for form in found["forms"] if form in stored]
        (claim_id,) = running_claim_ids(worker)
        before = state_of(worker, arn)
        for forged in (str(uuid.UUID(hex=claim_id)), claim_id, claim_id.upper()):
            with pytest.raises(ServiceError) as refused:
                put(worker, arn, "forged", RotationToken=forged)
            found.setdefault("codes", []).append(refused.value.code)
        found["unchanged"] = state_of(worker, arn) == before
        found["own"] = put(worker, arn, "labelled", RotationToken=token, VersionStages=["MINE"])

    after(functions, "setSecret", during)
    rotated = rotate(worker, arn, RotationLambdaARN=FUNCTION)["VersionId"]
    assert sweep(worker) == 1
    assert found["stored"] == []
    assert found["codes"] == ["AccessDeniedException"] * 3
    assert found["unchanged"] is True
    assert found["own"]["VersionStages"] == ["MINE"]
    assert abandoned() == []
    stages = describe(worker, arn)["VersionIdsToStages"]
    assert stages[rotated] == ["AWSCURRENT"]
    assert stages[found["own"]["VersionId"]] == ["MINE"]


# --- a late finishSecret ------------------------------------------------------------------------


def test_a_late_finish_secret_of_an_abandoned_rotation_is_served_as_aws_serves_it(
    worker: Deployment, functions: TemplateFunctions
) -> None:
    """Pinned (docs/architecture.md, "Rotation"): once a manual change abandoned a rotation,
    an UpdateSecretVersionStage moving AWSCURRENT onto the abandoned version is served as
    AWS serves it. It carries no token, and nothing in it tells the abandoned function's
    late finishSecret from a person's deliberate move, so it is not refused. What guards the
    manual value is AWS's own check: RemoveFromVersionId must name AWSCURRENT's version, so
    a move based on labels read before the change is refused (InvalidParameterException)
    and changes nothing."""
    arn = new_secret(worker)
    (old,) = describe(worker, arn)["VersionIdsToStages"]
    token = rotate(worker, arn, RotationLambdaARN=FUNCTION)["VersionId"]
    seen: dict[str, Any] = {}

    def change(_event: dict[str, Any]) -> None:
        # The function read the labels (AWSCURRENT on ``old``), then a person changes the value.
        seen["manual"] = put(worker, arn, "by hand")["VersionId"]
        before = state_of(worker, arn)
        with pytest.raises(ServiceError) as stale:
            worker.secrets.update_secret_version_stage(
                SM,
                {
                    "SecretId": arn,
                    "VersionStage": "AWSCURRENT",
                    "MoveToVersionId": token,
                    "RemoveFromVersionId": old,
                },
            )
        seen["stale"] = stale.value.code
        seen["unchanged"] = state_of(worker, arn) == before
        # Read again after the change, the move is accepted.
        worker.secrets.update_secret_version_stage(
            SM,
            {
                "SecretId": arn,
                "VersionStage": "AWSCURRENT",
                "MoveToVersionId": token,
                "RemoveFromVersionId": seen["manual"],
            },
        )

    after(functions, "testSecret", change)
    assert sweep(worker) == 1
    assert seen["stale"] == "InvalidParameterException"
    assert seen["unchanged"] is True
    # The runner stopped at its next step (its claim was dropped): no finishSecret, no
    # RotationSucceeded; AWSCURRENT is where the late move put it.
    assert [c["Step"] for c in functions.calls] == ["createSecret", "setSecret", "testSecret"]
    assert describe(worker, arn)["VersionIdsToStages"] == {
        seen["manual"]: ["AWSPREVIOUS"],
        token: ["AWSCURRENT"],
    }
    assert value(worker, arn) == f"rotated-{token}"
    assert [e["eventName"] for e in service_events(worker)] == ["RotationStarted"]
    assert [e["serviceEventDetails"]["versionId"] for e in abandoned()] == [token]
