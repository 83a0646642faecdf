"""BatchGetSecretValue end to end (spec 3.8).

Each test works in a region of its own on the shared server, so the Filters path sees
exactly the secrets the test created.
"""

from __future__ import annotations

import pytest

from tests.aws import NOT_FOUND, Client, aws_error, body, random_region, state
from tests.server import ServerProcess

MARKED_FOR_DELETION = (
    "You can't perform this operation on the secret because it was marked for deletion."
)
VALUE_FIELDS = {"ARN", "Name", "VersionId", "VersionStages", "CreatedDate"}


@pytest.fixture
def sm(server: ServerProcess) -> Client:
    return server.client(region=random_region("bg"))


def test_by_names_and_arns_returns_every_field(sm: Client) -> None:
    text = sm.create_secret(Name="app/text", SecretString='{"user":"admin"}')
    blob = sm.create_secret(Name="app/blob", SecretBinary=b"\x00\x01binary\xff")
    sm.create_secret(Name="app/two-versions", SecretString="old")
    newest = sm.put_secret_value(SecretId="app/two-versions", SecretString="new")
    partial_arn = text["ARN"].rsplit("-", 1)[0]

    result = sm.batch_get_secret_value(
        SecretIdList=["app/text", blob["ARN"], "app/two-versions", partial_arn]
    )
    assert result["Errors"] == []
    assert "NextToken" not in result
    values = result["SecretValues"]
    assert [v["Name"] for v in values] == ["app/text", "app/blob", "app/two-versions", "app/text"]
    for value in values:
        single = body(sm.get_secret_value(SecretId=value["ARN"]))
        assert value == single
        kind = "SecretBinary" if value["Name"] == "app/blob" else "SecretString"
        assert set(value) == VALUE_FIELDS | {kind}
    assert values[0]["ARN"] == text["ARN"]
    assert values[0]["SecretString"] == '{"user":"admin"}'
    assert values[0]["VersionId"] == text["VersionId"]
    assert values[0]["VersionStages"] == ["AWSCURRENT"]
    assert values[1]["SecretBinary"] == b"\x00\x01binary\xff"
    assert values[2]["SecretString"] == "new"
    assert values[2]["VersionId"] == newest["VersionId"]


def test_failures_are_reported_per_secret(server: ServerProcess, sm: Client) -> None:
    good = sm.create_secret(Name="good", SecretString="fine")
    sm.create_secret(Name="doomed", SecretString="bye")
    sm.delete_secret(SecretId="doomed", RecoveryWindowInDays=7)
    sm.create_secret(Name="empty")
    elsewhere = server.client(region=random_region("bg")).create_secret(
        Name="good", SecretString="other"
    )
    before = {n: state(sm, n) for n in ("good", "doomed", "empty")}
    missing_arn = good["ARN"].replace(":secret:good-", ":secret:absent-")

    result = sm.batch_get_secret_value(
        SecretIdList=["missing", "good", "doomed", "empty", missing_arn, elsewhere["ARN"]]
    )
    assert [v["Name"] for v in result["SecretValues"]] == ["good"]
    assert result["SecretValues"][0]["SecretString"] == "fine"
    assert result["SecretValues"][0]["ARN"] == good["ARN"]
    assert result["Errors"] == [
        {"SecretId": "missing", "ErrorCode": "ResourceNotFoundException", "Message": NOT_FOUND},
        {
            "SecretId": "doomed",
            "ErrorCode": "InvalidRequestException",
            "Message": MARKED_FOR_DELETION,
        },
        {
            "SecretId": "empty",
            "ErrorCode": "ResourceNotFoundException",
            "Message": "Secrets Manager can't find the specified secret value for staging "
            "label: AWSCURRENT",
        },
        {"SecretId": missing_arn, "ErrorCode": "ResourceNotFoundException", "Message": NOT_FOUND},
        # Another region's ARN names no secret of this region.
        {
            "SecretId": elsewhere["ARN"],
            "ErrorCode": "ResourceNotFoundException",
            "Message": NOT_FOUND,
        },
    ]
    # The failures changed nothing; the deleted secret is still scheduled for deletion.
    after = {n: state(sm, n) for n in ("good", "doomed", "empty")}
    assert after == before
    assert "DeletedDate" in after["doomed"]["describe"]
    # The one value read counts as an access, as a GetSecretValue would.
    assert "LastAccessedDate" in sm.describe_secret(SecretId="good")
    assert "LastAccessedDate" not in sm.describe_secret(SecretId="empty")


def test_all_failures_still_answer_200(sm: Client) -> None:
    result = sm.batch_get_secret_value(SecretIdList=["nope1", "nope2"])
    assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert result["SecretValues"] == []
    assert [e["SecretId"] for e in result["Errors"]] == ["nope1", "nope2"]
    assert {e["ErrorCode"] for e in result["Errors"]} == {"ResourceNotFoundException"}


def test_exactly_one_of_id_list_and_filters(raw: Client) -> None:
    raw.create_secret(Name="one", SecretString="1")
    for kwargs in (
        {"SecretIdList": ["one"], "Filters": [{"Key": "name", "Values": ["one"]}]},
        {},
        {"SecretIdList": ["one"], "MaxResults": 5},
        {"MaxResults": 5},
    ):
        error = aws_error(lambda kwargs=kwargs: raw.batch_get_secret_value(**kwargs))
        assert error["Code"] == "InvalidParameterException", kwargs
    assert "LastAccessedDate" not in raw.describe_secret(SecretId="one")


def test_model_limits_are_validation_errors(raw: Client) -> None:
    raw.create_secret(Name="limit", SecretString="1")
    error = aws_error(lambda: raw.batch_get_secret_value(SecretIdList=["limit"] * 21))
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("1 validation error detected: ")
    assert "at 'secretIdList' failed to satisfy constraint: " in error["Message"]
    assert error["Message"].endswith("Member must have length less than or equal to 20")
    error = aws_error(lambda: raw.batch_get_secret_value(SecretIdList=[]))
    assert error["Code"] == "ValidationException"
    filters = [{"Key": "name", "Values": ["limit"]}]
    for bad in (0, 21):
        error = aws_error(
            lambda bad=bad: raw.batch_get_secret_value(Filters=filters, MaxResults=bad)
        )
        assert error["Code"] == "ValidationException"
    error = aws_error(lambda: raw.batch_get_secret_value(Filters=filters * 11))
    assert error["Code"] == "ValidationException"
    error = aws_error(
        lambda: raw.batch_get_secret_value(Filters=[{"Key": "colour", "Values": ["x"]}])
    )
    assert error["Code"] == "ValidationException"
    # Twenty ids are fine.
    result = raw.batch_get_secret_value(SecretIdList=["limit"] * 20)
    assert len(result["SecretValues"]) == 20
    assert result["Errors"] == []


def test_filters_with_max_results_page_through_next_token(sm: Client) -> None:
    created = []
    for i in range(7):
        created.append(
            sm.create_secret(
                Name=f"team/s{i}", SecretString=f"value-{i}", Tags=[{"Key": "team", "Value": "a"}]
            )["ARN"]
        )
    sm.create_secret(Name="other/s", SecretString="x", Tags=[{"Key": "team", "Value": "b"}])
    sm.create_secret(Name="team/gone", SecretString="x", Tags=[{"Key": "team", "Value": "a"}])
    sm.delete_secret(SecretId="team/gone", RecoveryWindowInDays=7)
    filters = [{"Key": "tag-value", "Values": ["a"]}]

    pages = []
    token: str | None = None
    while True:
        page = sm.batch_get_secret_value(
            Filters=filters, MaxResults=3, **({"NextToken": token} if token else {})
        )
        pages.append(page)
        assert page["Errors"] == []
        token = page.get("NextToken")
        if token is None:
            break
    values = [v for p in pages for v in p["SecretValues"]]
    assert [len(p["SecretValues"]) for p in pages] == [3, 3, 1]
    assert [v["ARN"] for v in values] == created  # each once, creation order, no deleted one
    assert [v["SecretString"] for v in values] == [f"value-{i}" for i in range(7)]
    # Without MaxResults a filter returns up to 20 at once.
    everything = sm.batch_get_secret_value(Filters=filters)
    assert [v["ARN"] for v in everything["SecretValues"]] == created
    assert "NextToken" not in everything
    assert (
        sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["none"]}])["SecretValues"]
        == []
    )


def test_filters_page_size_defaults_to_twenty(sm: Client) -> None:
    for i in range(23):
        sm.create_secret(Name=f"bulk/{i:02d}", SecretString=str(i))
    first = sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["bulk/"]}])
    assert [v["SecretString"] for v in first["SecretValues"]] == [str(i) for i in range(20)]
    rest = sm.batch_get_secret_value(
        Filters=[{"Key": "name", "Values": ["bulk/"]}], NextToken=first["NextToken"]
    )
    assert [v["SecretString"] for v in rest["SecretValues"]] == ["20", "21", "22"]
    assert "NextToken" not in rest


def test_next_token_is_bound_to_its_filters(sm: Client) -> None:
    for i in range(3):
        sm.create_secret(Name=f"tok/{i}", SecretString=str(i))
    filters = [{"Key": "name", "Values": ["tok/"]}]
    token = sm.batch_get_secret_value(Filters=filters, MaxResults=1)["NextToken"]
    for kwargs in (
        {"Filters": [{"Key": "name", "Values": ["tok"]}], "NextToken": token},
        {"Filters": filters, "NextToken": token[:-2] + ("AA" if token[-2:] != "AA" else "BB")},
        {"Filters": filters, "NextToken": "garbage"},
    ):
        error = aws_error(lambda kwargs=kwargs: sm.batch_get_secret_value(**kwargs))
        assert error["Code"] == "InvalidNextTokenException"
    # A ListSecrets token is no BatchGetSecretValue token, and the other way round.
    listing = sm.list_secrets(Filters=filters, MaxResults=1)["NextToken"]
    error = aws_error(lambda: sm.batch_get_secret_value(Filters=filters, NextToken=listing))
    assert error["Code"] == "InvalidNextTokenException"
    error = aws_error(lambda: sm.list_secrets(Filters=filters, NextToken=token))
    assert error["Code"] == "InvalidNextTokenException"
    page = sm.batch_get_secret_value(Filters=filters, MaxResults=2, NextToken=token)
    assert [v["SecretString"] for v in page["SecretValues"]] == ["1", "2"]
