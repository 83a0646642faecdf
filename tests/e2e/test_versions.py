"""Secret values, versions and staging labels, end to end with boto3 against a real server.

AWS sources (see /work/shared/reference/aws-secretsmanager-api.md): section 3.2 (values),
3.3 (versions and staging labels, error texts), 3.14 (LastAccessedDate), section 4
(size and version limits). The ~100 version cap depends on version age, so it is tested
at domain level with a ManualClock over a real SQLite store.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from strongroom.clock import ManualClock
from strongroom.protocol.errors import ServiceError
from strongroom.server.deployment import Deployment
from strongroom.types import Caller
from tests.aws import aws_error, body, snapshot
from tests.rawhttp import token

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
ARN_RE = r"arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-[A-Za-z0-9]{{6}}"
MAX_VALUE = 65536


# Helpers -------------------------------------------------------------------------------


def versions(sm: Any, name: str, *, deprecated: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = sm.list_secret_version_ids(
        SecretId=name, IncludeDeprecated=deprecated
    )["Versions"]
    return out


def stages_by_version(sm: Any, name: str) -> dict[str, list[str]]:
    """VersionId -> labels, from ListSecretVersionIds (labelled versions only)."""
    return {v["VersionId"]: v["VersionStages"] for v in versions(sm, name)}


def three_versions(sm: Any, name: str) -> tuple[str, str, str]:
    """v1 (deprecated), v2 (AWSPREVIOUS), v3 (AWSCURRENT)."""
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    v3 = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    return v1, v2, v3


# Values --------------------------------------------------------------------------------


def test_create_with_secret_string(sm: Any, name: str) -> None:
    vid = token()
    before = dt.datetime.now(dt.UTC)
    created = sm.create_secret(Name=name, SecretString="s3cr3t", ClientRequestToken=vid)
    assert set(body(created)) == {"ARN", "Name", "VersionId"}
    assert created["VersionId"] == vid  # the token is the version id
    assert created["Name"] == name
    assert re.fullmatch(ARN_RE.format(name=re.escape(name)), created["ARN"])

    got = sm.get_secret_value(SecretId=name)
    assert set(body(got)) == {
        "ARN",
        "Name",
        "VersionId",
        "SecretString",
        "VersionStages",
        "CreatedDate",
    }
    assert got["ARN"] == created["ARN"]
    assert got["Name"] == name
    assert got["VersionId"] == vid
    assert got["SecretString"] == "s3cr3t"
    assert got["VersionStages"] == [CURRENT]
    assert isinstance(got["CreatedDate"], dt.datetime)
    assert before - dt.timedelta(seconds=5) <= got["CreatedDate"]
    assert got["CreatedDate"] <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)


def test_secret_string_round_trips_exactly(sm: Any, name: str) -> None:
    text = '{"user": "ådmin", "pw": "p\\"w\\n"}\n\t  emoji \U0001f511 and NUL-free \u00e9\u4e2d'
    sm.create_secret(Name=name, SecretString=text)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == text


def test_create_with_secret_binary_round_trips_bytes(sm: Any, name: str) -> None:
    data = bytes(range(256)) * 3 + b"\x00\xff\x00"
    created = sm.create_secret(Name=name, SecretBinary=data)
    got = sm.get_secret_value(SecretId=name)
    assert set(body(got)) == {
        "ARN",
        "Name",
        "VersionId",
        "SecretBinary",
        "VersionStages",
        "CreatedDate",
    }
    assert got["SecretBinary"] == data
    assert got["VersionId"] == created["VersionId"]
    assert got["VersionStages"] == [CURRENT]

    # A second binary version, and the first still exact by VersionId.
    other = b"\x80" * 17
    put = sm.put_secret_value(SecretId=name, SecretBinary=other)
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == other
    first = sm.get_secret_value(SecretId=name, VersionId=created["VersionId"])
    assert first["SecretBinary"] == data
    assert "SecretString" not in first
    assert put["VersionStages"] == [CURRENT]


def test_string_and_binary_versions_of_one_secret(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="text")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretBinary=b"bin")["VersionId"]
    cur = sm.get_secret_value(SecretId=name)
    assert (cur["VersionId"], cur["SecretBinary"]) == (v2, b"bin")
    assert "SecretString" not in cur
    prev = sm.get_secret_value(SecretId=name, VersionStage=PREVIOUS)
    assert (prev["VersionId"], prev["SecretString"]) == (v1, "text")
    assert "SecretBinary" not in prev


def test_create_without_value_then_first_put(sm: Any, name: str) -> None:
    created = sm.create_secret(Name=name, Description="no value yet")
    assert set(body(created)) == {"ARN", "Name"}  # no VersionId without a value

    error = aws_error(sm.get_secret_value, SecretId=name)
    assert error["Code"] == "ResourceNotFoundException"
    assert error["Message"] == (
        "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT"
    )
    assert "VersionIdsToStages" not in sm.describe_secret(SecretId=name)
    assert versions(sm, name, deprecated=True) == []

    put = sm.put_secret_value(SecretId=name, SecretString="first")
    assert put["VersionStages"] == [CURRENT]
    assert put["ARN"] == created["ARN"]
    got = sm.get_secret_value(SecretId=name)
    assert (got["VersionId"], got["SecretString"]) == (put["VersionId"], "first")
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {put["VersionId"]: [CURRENT]}


def test_first_version_always_gets_awscurrent(sm: Any, name: str) -> None:
    sm.create_secret(Name=name)
    put = sm.put_secret_value(SecretId=name, SecretString="v", VersionStages=["MINE"])
    assert put["VersionStages"] == [CURRENT, "MINE"]
    assert sm.get_secret_value(SecretId=name)["VersionId"] == put["VersionId"]


def test_create_with_both_string_and_binary_is_rejected(sm: Any, name: str) -> None:
    error = aws_error(sm.create_secret, Name=name, SecretString="s", SecretBinary=b"b")
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"] == (
        "You can't specify both a binary secret value and a string secret value in the same secret."
    )
    missing = aws_error(sm.describe_secret, SecretId=name)
    assert missing["Code"] == "ResourceNotFoundException"  # nothing was created


def test_put_and_update_with_both_values_are_rejected(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="keep")
    before = snapshot(sm, name)
    for call in (sm.put_secret_value, sm.update_secret):
        error = aws_error(call, SecretId=name, SecretString="s", SecretBinary=b"b")
        assert error["Code"] == "InvalidParameterException"
        assert error["Message"].startswith("You can't specify both a binary secret value")
    assert snapshot(sm, name) == before


def test_put_without_a_value_is_rejected(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="keep")
    before = snapshot(sm, name)
    error = aws_error(sm.put_secret_value, SecretId=name)
    assert error["Code"] == "InvalidRequestException"
    assert error["Message"] == "You must provide either SecretString or SecretBinary."
    assert snapshot(sm, name) == before


# GetSecretValue ------------------------------------------------------------------------


def test_get_secret_value_by_version_id_and_stage(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]

    by_id = sm.get_secret_value(SecretId=name, VersionId=v1)
    assert (by_id["VersionId"], by_id["SecretString"], by_id["VersionStages"]) == (
        v1,
        "one",
        [PREVIOUS],
    )
    by_stage = sm.get_secret_value(SecretId=name, VersionStage=PREVIOUS)
    assert (by_stage["VersionId"], by_stage["SecretString"]) == (v1, "one")
    both = sm.get_secret_value(SecretId=name, VersionId=v2, VersionStage=CURRENT)
    assert (both["VersionId"], both["SecretString"], both["VersionStages"]) == (
        v2,
        "two",
        [CURRENT],
    )
    default = sm.get_secret_value(SecretId=name)
    assert default["VersionId"] == v2
    arn = sm.describe_secret(SecretId=name)["ARN"]
    assert sm.get_secret_value(SecretId=arn, VersionStage=PREVIOUS)["VersionId"] == v1


def test_get_secret_value_errors(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    before = snapshot(sm, name)

    mismatch = aws_error(sm.get_secret_value, SecretId=name, VersionId=v1, VersionStage=PREVIOUS)
    assert mismatch["Code"] == "InvalidRequestException"
    assert mismatch["Message"] == (
        "You provided a VersionStage that is not associated to the provided VersionId."
    )

    unknown_id = token()
    missing = aws_error(sm.get_secret_value, SecretId=name, VersionId=unknown_id)
    assert missing["Code"] == "ResourceNotFoundException"
    assert missing["Message"] == (
        f"Secrets Manager can't find the specified secret value for VersionId: {unknown_id}"
    )

    for stage in ("NOSUCHSTAGE", PREVIOUS, PENDING):
        error = aws_error(sm.get_secret_value, SecretId=name, VersionStage=stage)
        assert error["Code"] == "ResourceNotFoundException"
        assert error["Message"] == (
            f"Secrets Manager can't find the specified secret value for staging label: {stage}"
        )

    gone = aws_error(sm.get_secret_value, SecretId=name + "-nope")
    assert gone["Code"] == "ResourceNotFoundException"
    assert gone["Message"] == "Secrets Manager can't find the specified secret."
    assert snapshot(sm, name) == before


# Staging labels ------------------------------------------------------------------------


def test_put_moves_current_to_previous_and_deprecates_the_old_previous(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    p2 = sm.put_secret_value(SecretId=name, SecretString="two")
    v2 = p2["VersionId"]
    assert p2["VersionStages"] == [CURRENT]
    assert stages_by_version(sm, name) == {v2: [CURRENT], v1: [PREVIOUS]}

    p3 = sm.put_secret_value(SecretId=name, SecretString="three")
    v3 = p3["VersionId"]
    assert p3["VersionStages"] == [CURRENT]
    # v1 lost AWSPREVIOUS: deprecated, listed only with IncludeDeprecated.
    assert stages_by_version(sm, name) == {v3: [CURRENT], v2: [PREVIOUS]}
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {
        v3: [CURRENT],
        v2: [PREVIOUS],
    }
    listed = {v["VersionId"]: v for v in versions(sm, name, deprecated=True)}
    assert set(listed) == {v1, v2, v3}
    assert "VersionStages" not in listed[v1]
    assert listed[v1]["KmsKeyIds"] == ["DefaultEncryptionKey"]
    assert listed[v2]["VersionStages"] == [PREVIOUS]

    # A deprecated version stays readable by its id.
    old = sm.get_secret_value(SecretId=name, VersionId=v1)
    assert (old["VersionId"], old["SecretString"]) == (v1, "one")
    assert old.get("VersionStages", []) == []
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "three"
    assert sm.get_secret_value(SecretId=name, VersionStage=PREVIOUS)["SecretString"] == "two"


def test_update_secret_with_value_moves_current(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    u2 = sm.update_secret(SecretId=name, SecretString="two")
    assert set(body(u2)) == {"ARN", "Name", "VersionId"}
    v2 = u2["VersionId"]
    assert stages_by_version(sm, name) == {v2: [CURRENT], v1: [PREVIOUS]}

    v3 = sm.update_secret(SecretId=name, SecretBinary=b"three")["VersionId"]
    assert stages_by_version(sm, name) == {v3: [CURRENT], v2: [PREVIOUS]}
    assert {v["VersionId"] for v in versions(sm, name, deprecated=True)} == {v1, v2, v3}
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"three"

    # Metadata only: no version, no VersionId, labels untouched.
    meta = sm.update_secret(SecretId=name, Description="just metadata")
    assert set(body(meta)) == {"ARN", "Name"}
    assert stages_by_version(sm, name) == {v3: [CURRENT], v2: [PREVIOUS]}
    assert len(versions(sm, name, deprecated=True)) == 3


def test_put_with_custom_stages_leaves_awscurrent_and_steals_labels(sm: Any, name: str) -> None:
    v0 = sm.create_secret(Name=name, SecretString="S0")["VersionId"]
    p1 = sm.put_secret_value(
        SecretId=name, SecretString="S1", VersionStages=["one", "two", "three"]
    )
    v1 = p1["VersionId"]
    assert p1["VersionStages"] == ["one", "three", "two"]  # sorted
    # AWSCURRENT did not move and no AWSPREVIOUS appeared.
    assert stages_by_version(sm, name) == {v0: [CURRENT], v1: ["one", "three", "two"]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "S0"

    p2 = sm.put_secret_value(SecretId=name, SecretString="S2", VersionStages=["one", "two", "four"])
    v2 = p2["VersionId"]
    assert p2["VersionStages"] == ["four", "one", "two"]
    assert stages_by_version(sm, name) == {v0: [CURRENT], v1: ["three"], v2: ["four", "one", "two"]}
    assert sm.get_secret_value(SecretId=name, VersionStage="one")["SecretString"] == "S2"

    # Taking a version's last label deprecates it.
    v3 = sm.put_secret_value(SecretId=name, SecretString="S3", VersionStages=["three"])["VersionId"]
    assert stages_by_version(sm, name) == {v0: [CURRENT], v2: ["four", "one", "two"], v3: ["three"]}
    deprecated = [v for v in versions(sm, name, deprecated=True) if v["VersionId"] == v1]
    assert len(deprecated) == 1 and "VersionStages" not in deprecated[0]


def test_put_with_awspending_does_not_move_current(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="cur")["VersionId"]
    p2 = sm.put_secret_value(SecretId=name, SecretString="pending", VersionStages=[PENDING])
    v2 = p2["VersionId"]
    assert p2["VersionStages"] == [PENDING]
    assert stages_by_version(sm, name) == {v1: [CURRENT], v2: [PENDING]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "cur"
    assert sm.get_secret_value(SecretId=name, VersionStage=PENDING)["SecretString"] == "pending"

    # A second pending value takes AWSPENDING; the first is deprecated.
    v3 = sm.put_secret_value(SecretId=name, SecretString="p2", VersionStages=[PENDING])["VersionId"]
    assert stages_by_version(sm, name) == {v1: [CURRENT], v3: [PENDING]}
    assert {v["VersionId"] for v in versions(sm, name, deprecated=True)} == {v1, v2, v3}


def test_put_with_explicit_awscurrent_and_custom_label(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="SS")["VersionId"]
    p = sm.put_secret_value(SecretId=name, SecretString="S1", VersionStages=[CURRENT, "PUT0"])
    assert p["VersionStages"] == [CURRENT, "PUT0"]
    assert stages_by_version(sm, name) == {v1: [PREVIOUS], p["VersionId"]: [CURRENT, "PUT0"]}


def test_update_version_stage_adds_a_custom_label(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    out = sm.update_secret_version_stage(SecretId=name, VersionStage="AAA", MoveToVersionId=v2)
    assert set(body(out)) == {"ARN", "Name"}
    out = sm.update_secret_version_stage(SecretId=name, VersionStage="ZZZ", MoveToVersionId=v2)
    # Existing labels stay; lists come back sorted.
    assert stages_by_version(sm, name) == {v2: ["AAA", CURRENT, "ZZZ"], v1: [PREVIOUS]}
    assert sm.get_secret_value(SecretId=name, VersionStage="ZZZ")["VersionId"] == v2
    # Moving a label onto the version that already has it changes nothing.
    sm.update_secret_version_stage(SecretId=name, VersionStage="AAA", MoveToVersionId=v2)
    assert stages_by_version(sm, name)[v2] == ["AAA", CURRENT, "ZZZ"]
    # Labelling a deprecated version brings it back into the labelled set.
    v3 = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    assert v1 not in stages_by_version(sm, name)
    sm.update_secret_version_stage(SecretId=name, VersionStage="OLD", MoveToVersionId=v1)
    assert stages_by_version(sm, name) == {v3: [CURRENT], v2: ["AAA", PREVIOUS, "ZZZ"], v1: ["OLD"]}


def test_update_version_stage_moves_awscurrent_and_awsprevious_follows(sm: Any, name: str) -> None:
    v1, v2, v3 = three_versions(sm, name)
    # Roll back: AWSCURRENT to v2, which holds AWSPREVIOUS; v3 becomes AWSPREVIOUS.
    sm.update_secret_version_stage(
        SecretId=name, VersionStage=CURRENT, MoveToVersionId=v2, RemoveFromVersionId=v3
    )
    assert stages_by_version(sm, name) == {v2: [CURRENT], v3: [PREVIOUS]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    # Then onto the deprecated v1: v2 is the new AWSPREVIOUS, v3 loses it.
    sm.update_secret_version_stage(
        SecretId=name, VersionStage=CURRENT, MoveToVersionId=v1, RemoveFromVersionId=v2
    )
    assert stages_by_version(sm, name) == {v1: [CURRENT], v2: [PREVIOUS]}
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {
        v1: [CURRENT],
        v2: [PREVIOUS],
    }


def test_update_version_stage_current_onto_pending_version(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="cur")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="new", VersionStages=[PENDING])[
        "VersionId"
    ]
    sm.update_secret_version_stage(
        SecretId=name, VersionStage=CURRENT, MoveToVersionId=v2, RemoveFromVersionId=v1
    )
    assert stages_by_version(sm, name) == {v2: [CURRENT, PENDING], v1: [PREVIOUS]}
    got = sm.get_secret_value(SecretId=name)
    assert (got["VersionId"], got["VersionStages"]) == (v2, [CURRENT, PENDING])


def test_update_version_stage_without_remove_from_when_label_is_elsewhere(
    sm: Any, name: str
) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two", VersionStages=["CUSTOM"])[
        "VersionId"
    ]
    before = snapshot(sm, name)
    error = aws_error(
        sm.update_secret_version_stage, SecretId=name, VersionStage=CURRENT, MoveToVersionId=v2
    )
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"] == (
        "The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is "
        f"currently attached to version {v1}, so you must explicitly reference that version "
        "in RemoveFromVersionId."
    )
    # The same rule for a custom label.
    error = aws_error(
        sm.update_secret_version_stage, SecretId=name, VersionStage="CUSTOM", MoveToVersionId=v1
    )
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"] == (
        "The parameter RemoveFromVersionId can't be empty. Staging label CUSTOM is "
        f"currently attached to version {v2}, so you must explicitly reference that version "
        "in RemoveFromVersionId."
    )
    assert snapshot(sm, name) == before


def test_update_version_stage_with_wrong_remove_from(sm: Any, name: str) -> None:
    v1, v2, v3 = three_versions(sm, name)
    before = snapshot(sm, name)
    for wrong in (v1, token()):
        error = aws_error(
            sm.update_secret_version_stage,
            SecretId=name,
            VersionStage=CURRENT,
            MoveToVersionId=v2,
            RemoveFromVersionId=wrong,
        )
        assert error["Code"] == "InvalidParameterException"
    # Removing a label from a version that does not hold it.
    error = aws_error(
        sm.update_secret_version_stage, SecretId=name, VersionStage=PREVIOUS, RemoveFromVersionId=v3
    )
    assert error["Code"] == "InvalidParameterException"
    assert snapshot(sm, name) == before


def test_update_version_stage_remove_only_custom_label(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="SS")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="S1", VersionStages=["PENDING"])[
        "VersionId"
    ]
    sm.update_secret_version_stage(
        SecretId=name, VersionStage=CURRENT, MoveToVersionId=v2, RemoveFromVersionId=v1
    )
    assert stages_by_version(sm, name) == {v2: [CURRENT, "PENDING"], v1: [PREVIOUS]}
    sm.update_secret_version_stage(SecretId=name, VersionStage="PENDING", RemoveFromVersionId=v2)
    assert stages_by_version(sm, name) == {v2: [CURRENT], v1: [PREVIOUS]}
    error = aws_error(sm.get_secret_value, SecretId=name, VersionStage="PENDING")
    assert error["Code"] == "ResourceNotFoundException"

    # Removing a version's only label deprecates it.
    sm.update_secret_version_stage(SecretId=name, VersionStage=PREVIOUS, RemoveFromVersionId=v1)
    assert stages_by_version(sm, name) == {v2: [CURRENT]}
    listed = {v["VersionId"]: v for v in versions(sm, name, deprecated=True)}
    assert set(listed) == {v1, v2} and "VersionStages" not in listed[v1]
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "SS"


def test_update_version_stage_cannot_just_remove_awscurrent(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    before = snapshot(sm, name)
    error = aws_error(
        sm.update_secret_version_stage, SecretId=name, VersionStage=CURRENT, RemoveFromVersionId=v1
    )
    assert error["Code"] == "InvalidParameterException"
    assert snapshot(sm, name) == before


def test_update_version_stage_move_to_unknown_version(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    before = snapshot(sm, name)
    unknown = token()
    for extra in ({}, {"RemoveFromVersionId": v1}):
        error = aws_error(
            sm.update_secret_version_stage,
            SecretId=name,
            VersionStage=CURRENT,
            MoveToVersionId=unknown,
            **extra,
        )
        assert error["Code"] == "InvalidParameterException"
        assert unknown in error["Message"]
    error = aws_error(
        sm.update_secret_version_stage, SecretId=name, VersionStage="X", MoveToVersionId=unknown
    )
    assert error["Code"] == "InvalidParameterException"
    assert snapshot(sm, name) == before


def test_update_version_stage_on_unknown_secret(sm: Any, name: str) -> None:
    error = aws_error(
        sm.update_secret_version_stage, SecretId=name, VersionStage="X", MoveToVersionId=token()
    )
    assert error["Code"] == "ResourceNotFoundException"
    assert error["Message"] == "Secrets Manager can't find the specified secret."


def test_at_most_twenty_staging_labels_per_secret(sm: Any, name: str) -> None:
    """Quota: 20 staging labels attached across all versions of a secret (spec 3.3 item 1,
    section 4). Going over is LimitExceededException and changes nothing."""
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]  # AWSCURRENT
    many = [f"L{i:02d}" for i in range(18)]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two", VersionStages=many)["VersionId"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="L18", MoveToVersionId=v1)
    assert sum(len(s) for s in stages_by_version(sm, name).values()) == 20
    before = snapshot(sm, name)

    error = aws_error(
        sm.update_secret_version_stage, SecretId=name, VersionStage="ONEMORE", MoveToVersionId=v2
    )
    assert error["Code"] == "LimitExceededException"
    error = aws_error(
        sm.put_secret_value, SecretId=name, SecretString="three", VersionStages=["ONEMORE"]
    )
    assert error["Code"] == "LimitExceededException"
    # AWSCURRENT moving adds AWSPREVIOUS: 21 labels, refused as well.
    error = aws_error(sm.put_secret_value, SecretId=name, SecretString="three")
    assert error["Code"] == "LimitExceededException"
    error = aws_error(sm.update_secret, SecretId=name, SecretString="three")
    assert error["Code"] == "LimitExceededException"
    assert snapshot(sm, name) == before

    # Moving existing labels around stays within the quota.
    v3 = sm.put_secret_value(SecretId=name, SecretString="three", VersionStages=many[:5])[
        "VersionId"
    ]
    assert stages_by_version(sm, name)[v3] == many[:5]
    sm.update_secret_version_stage(SecretId=name, VersionStage="L05", RemoveFromVersionId=v2)
    sm.update_secret_version_stage(SecretId=name, VersionStage="ONEMORE", MoveToVersionId=v2)
    assert "ONEMORE" in stages_by_version(sm, name)[v2]


# ListSecretVersionIds ------------------------------------------------------------------


def test_list_secret_version_ids_entries_and_order(sm: Any, name: str) -> None:
    created = sm.create_secret(Name=name, SecretString="one")
    v1 = created["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    v3 = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    out = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
    assert set(body(out)) == {"ARN", "Name", "Versions"}  # no NextToken: one page
    assert (out["ARN"], out["Name"]) == (created["ARN"], name)
    # Newest first.
    assert [v["VersionId"] for v in out["Versions"]] == [v3, v2, v1]
    dates = [v["CreatedDate"] for v in out["Versions"]]
    assert dates == sorted(dates, reverse=True)
    for entry in out["Versions"]:
        assert entry["KmsKeyIds"] == ["DefaultEncryptionKey"]
        assert isinstance(entry["CreatedDate"], dt.datetime)
        assert "LastAccessedDate" not in entry  # never read yet
    assert set(out["Versions"][0]) == {"VersionId", "VersionStages", "CreatedDate", "KmsKeyIds"}
    assert set(out["Versions"][2]) == {"VersionId", "CreatedDate", "KmsKeyIds"}
    labelled = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert [v["VersionId"] for v in labelled] == [v3, v2]


def test_list_secret_version_ids_pages(sm: Any, name: str) -> None:
    ids = [sm.create_secret(Name=name, SecretString="v0")["VersionId"]]
    for i in range(1, 23):
        ids.append(sm.put_secret_value(SecretId=name, SecretString=f"v{i}")["VersionId"])
    newest_first = list(reversed(ids))

    seen: list[str] = []
    pages = 0
    kwargs: dict[str, Any] = {"SecretId": name, "IncludeDeprecated": True, "MaxResults": 5}
    while True:
        page = sm.list_secret_version_ids(**kwargs)
        pages += 1
        assert len(page["Versions"]) <= 5
        seen += [v["VersionId"] for v in page["Versions"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert pages == 5
    assert seen == newest_first

    # Without IncludeDeprecated only the two labelled versions, in one page.
    labelled = sm.list_secret_version_ids(SecretId=name, MaxResults=5)
    assert [v["VersionId"] for v in labelled["Versions"]] == newest_first[:2]
    assert "NextToken" not in labelled


def test_list_secret_version_ids_rejects_bad_next_tokens(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="v0")
    for i in range(3):
        sm.put_secret_value(SecretId=name, SecretString=f"v{i}")
    other = name + "-other"
    sm.create_secret(Name=other, SecretString="x")
    for i in range(3):
        sm.put_secret_value(SecretId=other, SecretString=f"x{i}")
    first = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=1)
    good = first["NextToken"]
    tampered = good[:-2] + ("AA" if good[-2:] != "AA" else "BB")
    other_token = sm.list_secret_version_ids(SecretId=other, IncludeDeprecated=True, MaxResults=1)[
        "NextToken"
    ]
    cases = [
        {"SecretId": name, "IncludeDeprecated": True, "NextToken": tampered},
        {"SecretId": name, "IncludeDeprecated": True, "NextToken": "not-a-token"},
        # A genuine token moved to another secret or another IncludeDeprecated.
        {"SecretId": name, "IncludeDeprecated": True, "NextToken": other_token},
        {"SecretId": name, "IncludeDeprecated": False, "NextToken": good},
    ]
    for kwargs in cases:
        error = aws_error(sm.list_secret_version_ids, MaxResults=1, **kwargs)
        assert error["Code"] == "InvalidNextTokenException", kwargs
    # The genuine token still works.
    second = sm.list_secret_version_ids(
        SecretId=name, IncludeDeprecated=True, MaxResults=1, NextToken=good
    )
    assert second["Versions"][0]["VersionId"] != first["Versions"][0]["VersionId"]


# LastAccessedDate ----------------------------------------------------------------------


def _midnight(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def test_last_accessed_date_after_a_read(sm: Any, name: str) -> None:
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)
    sm.describe_secret(SecretId=name)  # metadata reads are not accesses
    sm.list_secret_version_ids(SecretId=name)
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)

    day_before = _midnight(dt.datetime.now(dt.UTC))
    sm.get_secret_value(SecretId=name)
    day_after = _midnight(dt.datetime.now(dt.UTC))
    accessed = sm.describe_secret(SecretId=name)["LastAccessedDate"]
    assert accessed in (day_before, day_after)  # midnight UTC: date resolution
    listed = {v["VersionId"]: v for v in versions(sm, name)}
    assert listed[v2]["LastAccessedDate"] == accessed
    assert "LastAccessedDate" not in listed[v1]

    # Reading the other version the same day records that version's access too.
    sm.get_secret_value(SecretId=name, VersionId=v1)
    listed = {v["VersionId"]: v for v in versions(sm, name)}
    assert listed[v1]["LastAccessedDate"] == accessed
    assert sm.describe_secret(SecretId=name)["LastAccessedDate"] == accessed


# Size limits ---------------------------------------------------------------------------


def test_secret_string_size_limit(sm: Any, name: str) -> None:
    # botocore checks only minimum lengths client-side, so over-long values reach the
    # server from boto3 as from any SDK.
    ok = sm.create_secret(Name=name, SecretString="a" * MAX_VALUE)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "a" * MAX_VALUE
    before = snapshot(sm, name)

    too_big = "b" * (MAX_VALUE + 1)
    expected = (
        "1 validation error detected: Value at 'secretString' failed to satisfy constraint: "
        f"Member must have length less than or equal to {MAX_VALUE}"
    )
    for call, kwargs in (
        (sm.put_secret_value, {"SecretId": name}),
        (sm.update_secret, {"SecretId": name}),
    ):
        error = aws_error(call, SecretString=too_big, ClientRequestToken=token(), **kwargs)
        assert error["Code"] == "ValidationException"
        assert error["Message"] == expected
        assert too_big not in error["Message"]
    assert snapshot(sm, name) == before
    assert ok["VersionId"] in before["values"]

    other = name + "-big"
    error = aws_error(
        sm.create_secret, Name=other, SecretString=too_big, ClientRequestToken=token()
    )
    assert (error["Code"], error["Message"]) == ("ValidationException", expected)
    assert aws_error(sm.describe_secret, SecretId=other)["Code"] == "ResourceNotFoundException"


def test_secret_binary_size_limit(sm: Any, name: str) -> None:
    data = bytes(range(256)) * (MAX_VALUE // 256)
    assert len(data) == MAX_VALUE
    sm.create_secret(Name=name, SecretBinary=data, ClientRequestToken=token())
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == data
    before = snapshot(sm, name)

    expected = (
        "1 validation error detected: Value at 'secretBinary' failed to satisfy constraint: "
        f"Member must have length less than or equal to {MAX_VALUE}"
    )
    for call in (sm.put_secret_value, sm.update_secret):
        error = aws_error(
            call, SecretId=name, SecretBinary=data + b"\x00", ClientRequestToken=token()
        )
        assert (error["Code"], error["Message"]) == ("ValidationException", expected)
    assert snapshot(sm, name) == before


# The ~100 version cap (domain level, ManualClock) --------------------------------------

CALLER = Caller("000000000000", "us-east-1", "arn:aws:iam::000000000000:root")


@pytest.fixture
def clock() -> ManualClock:
    """The ``deployment``'s clock, from 2026-03-01 12:00 UTC (LastAccessedDate counts days)."""
    return ManualClock(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC))


@pytest.fixture
def domain(deployment: Deployment, clock: ManualClock) -> tuple[Deployment, ManualClock]:
    return deployment, clock


def _all_versions(d: Deployment, secret: str) -> dict[str, list[str] | None]:
    out: dict[str, list[str] | None] = {}
    params: dict[str, Any] = {"SecretId": secret, "IncludeDeprecated": True}
    while True:
        page = d.secrets.list_secret_version_ids(CALLER, params)
        for v in page["Versions"]:
            out[v["VersionId"]] = v["VersionStages"]
        if not page.get("NextToken"):
            return out
        params = {**params, "NextToken": page["NextToken"]}


def test_version_cap_prunes_only_old_unlabelled_versions(
    domain: tuple[Deployment, ManualClock],
) -> None:
    d, clock = domain
    sm = d.secrets
    ids = [token() for _ in range(100)]
    sm.create_secret(CALLER, {"Name": "capped", "SecretString": "v0", "ClientRequestToken": ids[0]})
    clock.advance(dt.timedelta(seconds=1))
    # A custom label on the oldest version: labelled versions are never pruned.
    sm.update_secret_version_stage(
        CALLER, {"SecretId": "capped", "VersionStage": "KEEP", "MoveToVersionId": ids[0]}
    )
    for i, vid in enumerate(ids[1:], start=1):
        clock.advance(dt.timedelta(seconds=1))
        sm.put_secret_value(
            CALLER, {"SecretId": "capped", "SecretString": f"v{i}", "ClientRequestToken": vid}
        )
    before = _all_versions(d, "capped")
    assert len(before) == 100
    assert before[ids[0]] == ["KEEP"]
    assert before[ids[99]] == [CURRENT] and before[ids[98]] == [PREVIOUS]
    describe_before = sm.describe_secret(CALLER, {"SecretId": "capped"})

    # All 100 are younger than 24 hours: a 101st version is refused, nothing changes.
    clock.advance(dt.timedelta(hours=23))
    refused = token()
    with pytest.raises(ServiceError) as exc:
        sm.put_secret_value(
            CALLER, {"SecretId": "capped", "SecretString": "x", "ClientRequestToken": refused}
        )
    assert exc.value.code == "LimitExceededException"
    with pytest.raises(ServiceError) as exc:
        sm.update_secret(
            CALLER, {"SecretId": "capped", "SecretString": "x", "ClientRequestToken": refused}
        )
    assert exc.value.code == "LimitExceededException"
    assert _all_versions(d, "capped") == before
    assert sm.describe_secret(CALLER, {"SecretId": "capped"}) == describe_before
    assert sm.get_secret_value(CALLER, {"SecretId": "capped"})["SecretString"] == "v99"

    # An idempotent retry of an existing version is not a new version: still fine.
    again = sm.put_secret_value(
        CALLER, {"SecretId": "capped", "SecretString": "v99", "ClientRequestToken": ids[99]}
    )
    assert again["VersionId"] == ids[99]

    # 25 hours on, the oldest unlabelled version goes; the labelled oldest one stays.
    clock.advance(dt.timedelta(hours=2))
    new = [token() for _ in range(3)]
    for i, vid in enumerate(new):
        sm.put_secret_value(
            CALLER, {"SecretId": "capped", "SecretString": f"n{i}", "ClientRequestToken": vid}
        )
    after = _all_versions(d, "capped")
    assert len(after) == 100
    assert set(after) == (set(before) - {ids[1], ids[2], ids[3]}) | set(new)
    assert after[ids[0]] == ["KEEP"]
    assert after[new[2]] == [CURRENT] and after[new[1]] == [PREVIOUS]
    with pytest.raises(ServiceError) as exc:
        sm.get_secret_value(CALLER, {"SecretId": "capped", "VersionId": ids[1]})
    assert exc.value.code == "ResourceNotFoundException"
    assert (
        sm.get_secret_value(CALLER, {"SecretId": "capped", "VersionId": ids[0]})["SecretString"]
        == "v0"
    )


def test_version_cap_applies_again_once_every_old_version_is_gone(
    domain: tuple[Deployment, ManualClock],
) -> None:
    """Each new version makes room by dropping one old unlabelled version; once all 100
    versions are less than 24 hours old, the quota refuses the next one."""
    d, clock = domain
    sm = d.secrets
    old = [token() for _ in range(100)]
    sm.create_secret(CALLER, {"Name": "s", "SecretString": "v0", "ClientRequestToken": old[0]})
    for i, vid in enumerate(old[1:], start=1):
        clock.advance(dt.timedelta(seconds=1))
        sm.put_secret_value(
            CALLER, {"SecretId": "s", "SecretString": f"v{i}", "ClientRequestToken": vid}
        )
    clock.advance(dt.timedelta(hours=25))
    young = [token() for _ in range(100)]
    for i, vid in enumerate(young):
        clock.advance(dt.timedelta(seconds=1))
        sm.put_secret_value(
            CALLER, {"SecretId": "s", "SecretString": f"w{i}", "ClientRequestToken": vid}
        )
        # Never more than 100, and the two labelled versions always survive.
        listed = _all_versions(d, "s")
        assert len(listed) == 100
        assert listed[vid] == [CURRENT]
        assert listed[young[i - 1] if i else old[-1]] == [PREVIOUS]
    assert set(_all_versions(d, "s")) == set(young)
    with pytest.raises(ServiceError) as exc:
        sm.put_secret_value(
            CALLER, {"SecretId": "s", "SecretString": "z", "ClientRequestToken": token()}
        )
    assert exc.value.code == "LimitExceededException"
    assert set(_all_versions(d, "s")) == set(young)


def test_last_accessed_date_has_date_resolution(domain: tuple[Deployment, ManualClock]) -> None:
    d, clock = domain
    sm = d.secrets
    v1, v2 = token(), token()
    sm.create_secret(CALLER, {"Name": "read", "SecretString": "a", "ClientRequestToken": v1})
    sm.put_secret_value(CALLER, {"SecretId": "read", "SecretString": "b", "ClientRequestToken": v2})
    assert sm.describe_secret(CALLER, {"SecretId": "read"}).get("LastAccessedDate") is None

    clock.advance(dt.timedelta(hours=11, minutes=59))  # 2026-03-01 23:59 UTC
    sm.get_secret_value(CALLER, {"SecretId": "read"})
    day1 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert sm.describe_secret(CALLER, {"SecretId": "read"})["LastAccessedDate"] == day1
    listed = d.secrets.list_secret_version_ids(CALLER, {"SecretId": "read"})["Versions"]
    assert {v["VersionId"]: v["LastAccessedDate"] for v in listed} == {v2: day1, v1: None}

    clock.advance(dt.timedelta(minutes=2))  # the next UTC day
    sm.get_secret_value(CALLER, {"SecretId": "read", "VersionStage": PREVIOUS})
    day2 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert sm.describe_secret(CALLER, {"SecretId": "read"})["LastAccessedDate"] == day2
    listed = d.secrets.list_secret_version_ids(CALLER, {"SecretId": "read"})["Versions"]
    assert {v["VersionId"]: v["LastAccessedDate"] for v in listed} == {v2: day1, v1: day2}
