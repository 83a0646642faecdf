"""ListSecrets end to end: filters, sort orders and pagination (spec 3.7).

ListSecrets sees every secret of an account and region, so these tests run on a server of
their own and each test works in a region no other test uses: every count is exact.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aws import Client, aws_error, random_region
from tests.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of this module's own (it replaces the shared one here)."""
    log: Path = tmp_path_factory.mktemp("list-server") / "server.log"
    process = ServerProcess(["--dev"], log).start()
    yield process
    process.stop()


@pytest.fixture
def sm(server: ServerProcess) -> Client:
    """A client in a region of its own: it sees only the secrets this test creates."""
    return server.client(region=random_region("ls"))


def names(sm: Client, **kwargs: Any) -> list[str]:
    """Every name ListSecrets returns for ``kwargs``, following NextToken."""
    out: list[str] = []
    token: str | None = kwargs.pop("NextToken", None)
    while True:
        page = sm.list_secrets(**kwargs, **({"NextToken": token} if token else {}))
        out += [entry["Name"] for entry in page["SecretList"]]
        token = page.get("NextToken")
        if not token:
            return out


def by(key: str, *values: str) -> dict[str, Any]:
    return {"Key": key, "Values": list(values)}


def create(sm: Client, name: str, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = sm.create_secret(Name=name, SecretString="v", **kwargs)
    return result


# --- filters ----------------------------------------------------------------------------


def test_no_filter_lists_every_live_secret_with_list_fields(sm: Client) -> None:
    create(sm, "plain")
    create(sm, "described", Description="has a description", Tags=[{"Key": "k", "Value": "v"}])
    empty = sm.create_secret(Name="no-value")
    entries = {e["Name"]: e for e in sm.list_secrets()["SecretList"]}
    assert set(entries) == {"plain", "described", "no-value"}

    plain = entries["plain"]
    assert plain["ARN"].startswith(f"arn:aws:secretsmanager:{sm.meta.region_name}:000000000000:")
    assert set(plain) == {"ARN", "Name", "LastChangedDate", "SecretVersionsToStages", "CreatedDate"}
    assert list(plain["SecretVersionsToStages"].values()) == [["AWSCURRENT"]]
    assert entries["described"]["Description"] == "has a description"
    assert entries["described"]["Tags"] == [{"Key": "k", "Value": "v"}]
    assert entries["no-value"]["ARN"] == empty["ARN"]
    assert "NextToken" not in sm.list_secrets()


def test_name_prefix_is_case_sensitive_and_not_word_split(sm: Client) -> None:
    for name in ("app/one", "App/two", "apple", "/app/three", "/other", "other/app"):
        create(sm, name)
    assert sorted(names(sm, Filters=[by("name", "app")])) == ["app/one", "apple"]
    assert names(sm, Filters=[by("name", "App")]) == ["App/two"]
    assert names(sm, Filters=[by("name", "app/")]) == ["app/one"]
    # A word inside the name is not a prefix of the name.
    assert names(sm, Filters=[by("name", "one")]) == []
    assert names(sm, Filters=[by("name", "app one")]) == []
    # VERIFIED AWS behaviour (localstack#4820): name=/ vs name=!/.
    assert sorted(names(sm, Filters=[by("name", "/")])) == ["/app/three", "/other"]
    assert sorted(names(sm, Filters=[by("name", "!/")])) == [
        "App/two",
        "app/one",
        "apple",
        "other/app",
    ]


def test_description_matches_word_prefixes_case_insensitively(sm: Client) -> None:
    create(sm, "prod-db", Description="Production database")
    create(sm, "dev-db", Description="development DB server")
    create(sm, "undescribed")
    assert names(sm, Filters=[by("description", "prod")]) == ["prod-db"]
    assert names(sm, Filters=[by("description", "PRODUCTION")]) == ["prod-db"]
    assert names(sm, Filters=[by("description", "db")]) == ["dev-db"]
    assert names(sm, Filters=[by("description", "base")]) == []  # not a word prefix
    # Every word of a multi-word value must start a word of the description.
    assert names(sm, Filters=[by("description", "serv dev")]) == ["dev-db"]
    assert names(sm, Filters=[by("description", "prod server")]) == []
    # Negation includes secrets without any description.
    assert sorted(names(sm, Filters=[by("description", "!prod")])) == ["dev-db", "undescribed"]


def test_tag_key_and_tag_value_are_case_sensitive_prefixes(sm: Client) -> None:
    create(sm, "lower", Tags=[{"Key": "env", "Value": "prod"}])
    create(sm, "upper", Tags=[{"Key": "Environment", "Value": "Prod"}])
    create(sm, "team", Tags=[{"Key": "team", "Value": "payments"}, {"Key": "x", "Value": ""}])
    create(sm, "untagged")
    assert names(sm, Filters=[by("tag-key", "env")]) == ["lower"]
    assert names(sm, Filters=[by("tag-key", "Env")]) == ["upper"]
    assert names(sm, Filters=[by("tag-key", "environment")]) == []
    assert names(sm, Filters=[by("tag-value", "prod")]) == ["lower"]
    assert names(sm, Filters=[by("tag-value", "Pro")]) == ["upper"]
    assert names(sm, Filters=[by("tag-value", "pay")]) == ["team"]
    assert names(sm, Filters=[by("tag-value", "ments")]) == []
    # A negated tag filter keeps secrets with no matching tag at all, untagged included.
    assert sorted(names(sm, Filters=[by("tag-key", "!env")])) == ["team", "untagged", "upper"]
    assert sorted(names(sm, Filters=[by("tag-value", "!prod")])) == ["team", "untagged", "upper"]


def test_all_splits_words_at_case_and_separators(sm: Client) -> None:
    create(sm, "ThisTestSecret")
    create(sm, "prod+AppBeta+x")
    create(sm, "prod-AppBeta/x")  # two separator kinds: one word
    create(sm, "plain", Description="Holds the Billing credentials")
    create(sm, "tagged", Tags=[{"Key": "CostCenter", "Value": "team_alpha"}])
    assert names(sm, Filters=[by("all", "test")]) == ["ThisTestSecret"]
    assert names(sm, Filters=[by("all", "SECRET")]) == ["ThisTestSecret"]
    assert names(sm, Filters=[by("all", "est")]) == []
    assert names(sm, Filters=[by("all", "beta")]) == ["prod+AppBeta+x"]
    assert names(sm, Filters=[by("all", "app")]) == ["prod+AppBeta+x"]
    assert sorted(names(sm, Filters=[by("all", "prod")])) == ["prod+AppBeta+x", "prod-AppBeta/x"]
    assert names(sm, Filters=[by("all", "billing")]) == ["plain"]
    assert names(sm, Filters=[by("all", "center")]) == ["tagged"]
    assert names(sm, Filters=[by("all", "alpha")]) == ["tagged"]
    # Several words: all of them inside one attribute.
    assert names(sm, Filters=[by("all", "this secret")]) == ["ThisTestSecret"]
    assert names(sm, Filters=[by("all", "billing cred")]) == ["plain"]
    assert names(sm, Filters=[by("all", "cost alpha")]) == []  # tag key + tag value
    # A separator alone is no word: it matches nothing, so its negation matches everything.
    assert names(sm, Filters=[by("all", "+")]) == []
    assert len(names(sm, Filters=[by("all", "!+")])) == 5
    assert sorted(names(sm, Filters=[by("all", "!prod")])) == ["ThisTestSecret", "plain", "tagged"]


def test_all_splits_words_where_letters_meet_digits_and_at_colons(sm: Client) -> None:
    # Issue 23 item 2 (user guide, "Find secrets"): "credsDatabase892" is creds, Database
    # and 892; ":" separates words.
    create(sm, "credsDatabase892")
    create(sm, "owned", Description="team:payments:primary")
    create(sm, "other", Tags=[{"Key": "scope", "Value": "env:prod42"}])
    assert names(sm, Filters=[by("all", "892")]) == ["credsDatabase892"]
    assert names(sm, Filters=[by("all", "database 892")]) == ["credsDatabase892"]
    assert names(sm, Filters=[by("all", "payments")]) == ["owned"]
    assert names(sm, Filters=[by("all", "primary team")]) == ["owned"]
    assert names(sm, Filters=[by("all", "prod 42")]) == ["other"]
    assert names(sm, Filters=[by("description", "payments")]) == ["owned"]
    assert names(sm, Filters=[by("all", "atabase")]) == []  # words match by prefix
    assert names(sm, Filters=[by("all", "92")]) == []


def test_values_or_and_filters_and(sm: Client) -> None:
    create(sm, "a/one", Tags=[{"Key": "env", "Value": "prod"}])
    create(sm, "a/two", Tags=[{"Key": "env", "Value": "dev"}])
    create(sm, "b/one", Tags=[{"Key": "env", "Value": "prod"}])
    create(sm, "c/one")
    assert sorted(names(sm, Filters=[by("name", "a/", "b/")])) == ["a/one", "a/two", "b/one"]
    assert sorted(names(sm, Filters=[by("name", "a/"), by("tag-value", "prod")])) == ["a/one"]
    assert names(sm, Filters=[by("name", "a/", "b/"), by("tag-value", "dev")]) == ["a/two"]
    # Two filters with the same key AND as well (moto AWS-run test_with_duplicate_filter_keys).
    assert names(sm, Filters=[by("name", "a/"), by("name", "a/t")]) == ["a/two"]
    assert names(sm, Filters=[by("name", "a/"), by("name", "b/")]) == []
    # "a AND NOT b" is two filters.
    assert names(sm, Filters=[by("name", "a/"), by("name", "!a/t")]) == ["a/one"]
    assert sorted(names(sm, Filters=[by("name", "!a/"), by("name", "!b/")])) == ["c/one"]


def test_include_planned_deletion(sm: Client) -> None:
    create(sm, "kept")
    gone = create(sm, "doomed")
    deletion = sm.delete_secret(SecretId="doomed", RecoveryWindowInDays=7)
    assert names(sm) == ["kept"]
    assert names(sm, Filters=[by("name", "doomed")]) == []
    entries = {e["Name"]: e for e in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]}
    assert set(entries) == {"kept", "doomed"}
    assert entries["doomed"]["ARN"] == gone["ARN"]
    assert "DeletedDate" in entries["doomed"]
    assert entries["doomed"]["DeletedDate"] < deletion["DeletionDate"]
    assert "DeletedDate" not in entries["kept"]
    assert names(sm, IncludePlannedDeletion=False) == ["kept"]
    assert names(sm, IncludePlannedDeletion=True, Filters=[by("name", "doomed")]) == ["doomed"]
    sm.restore_secret(SecretId="doomed")
    assert sorted(names(sm)) == ["doomed", "kept"]


def test_primary_region_and_owning_service(server: ServerProcess, sm: Client) -> None:
    here = sm.meta.region_name
    there = random_region("ls")
    create(sm, "local")
    create(sm, "replicated", AddReplicaRegions=[{"Region": there}])
    # Issue 23 item 3: a client cannot claim that a service manages its secret (the aws:
    # prefix is reserved), so no secret here has an OwningService.
    aws_error(
        sm.create_secret,
        Name="managed",
        SecretString="v",
        Tags=[{"Key": "aws:secretsmanager:owningService", "Value": "rds"}],
        code="InvalidParameterException",
    )
    entries = {e["Name"]: e for e in sm.list_secrets()["SecretList"]}
    assert sorted(entries) == ["local", "replicated"]
    assert entries["replicated"]["PrimaryRegion"] == here
    assert "PrimaryRegion" not in entries["local"]
    assert not any("OwningService" in entry for entry in entries.values())

    assert names(sm, Filters=[by("primary-region", here)]) == ["replicated"]
    assert names(sm, Filters=[by("primary-region", here[:4])]) == ["replicated"]
    assert names(sm, Filters=[by("primary-region", there)]) == []
    assert sorted(names(sm, Filters=[by("primary-region", f"!{here}")])) == ["local"]
    assert names(sm, Filters=[by("owning-service", "rds")]) == []
    assert sorted(names(sm, Filters=[by("owning-service", "!rds")])) == ["local", "replicated"]

    # In the replica's region the replica is listed with the primary's region.
    replica_side = server.client(region=there)
    assert names(replica_side) == ["replicated"]
    assert names(replica_side, Filters=[by("primary-region", here)]) == ["replicated"]
    assert replica_side.list_secrets()["SecretList"][0]["PrimaryRegion"] == here


def test_invalid_filters_are_validation_errors(raw: Client) -> None:
    raw.create_secret(Name="present", SecretString="v")
    error = aws_error(lambda: raw.list_secrets(Filters=[by("colour", "red")]))
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        "1 validation error detected: Value 'colour' at 'filters.1.member.key' failed to "
        "satisfy constraint: Member must satisfy enum value set: "
        "[description, name, tag-key, tag-value, primary-region, owning-service, all]"
    )
    error = aws_error(lambda: raw.list_secrets(Filters=[by("name", "bad*value")]))
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(
        "1 validation error detected: Value 'bad*value' at 'filters.1.member.values.1.member' "
        "failed to satisfy constraint: Member must satisfy regular expression pattern: "
    )
    error = aws_error(lambda: raw.list_secrets(Filters=[by("name", "a")] * 11))
    assert error["Code"] == "ValidationException"
    assert "Member must have length less than or equal to 10" in error["Message"]
    error = aws_error(lambda: raw.list_secrets(Filters=[by("name", *["a"] * 11)]))
    assert error["Code"] == "ValidationException"
    assert "Member must have length less than or equal to 10" in error["Message"]
    error = aws_error(lambda: raw.list_secrets(Filters=[by("name", "x" * 513)]))
    assert error["Code"] == "ValidationException"
    assert "Member must have length less than or equal to 512" in error["Message"]
    for bad in (0, 101):
        error = aws_error(lambda bad=bad: raw.list_secrets(MaxResults=bad))
        assert error["Code"] == "ValidationException"
    error = aws_error(lambda: raw.list_secrets(SortBy="size"))
    assert error["Code"] == "ValidationException"
    error = aws_error(lambda: raw.list_secrets(SortOrder="up"))
    assert error["Code"] == "ValidationException"
    # Ten filters of ten values each are fine.
    assert names(raw, Filters=[by("name", *["pres"] * 10)] * 10) == ["present"]


# --- sorting ----------------------------------------------------------------------------


@pytest.fixture
def sortable(sm: Client) -> list[str]:
    """Six secrets whose name, creation, change and access orders all differ."""
    created = ["m-kilo", "b-bravo", "x-xray", "a-alpha", "q-quebec", "d-delta"]
    for name in created:
        create(sm, name)
    for name in ("x-xray", "m-kilo", "d-delta"):  # changed after creation, in this order
        sm.update_secret(SecretId=name, Description=f"changed {name}")
    for name in ("q-quebec", "b-bravo"):
        sm.get_secret_value(SecretId=name)
    return created


def _expected(sm: Client, created: list[str], sort_by: str) -> list[str]:
    described = {n: sm.describe_secret(SecretId=n) for n in created}
    if sort_by == "name":
        return sorted(created)
    field = {
        "created-date": "CreatedDate",
        "last-changed-date": "LastChangedDate",
        "last-accessed-date": "LastAccessedDate",
    }[sort_by]
    # Ties (same millisecond, or the same day for LastAccessedDate, or never accessed)
    # keep creation order; never-accessed secrets sort before accessed ones.
    return sorted(
        created,
        key=lambda n: (
            described[n][field].timestamp() if field in described[n] else 0.0,
            created.index(n),
        ),
    )


@pytest.mark.parametrize(
    "sort_by", ["created-date", "last-accessed-date", "last-changed-date", "name"]
)
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sort_by_and_order(sm: Client, sortable: list[str], sort_by: str, order: str) -> None:
    expected = _expected(sm, sortable, sort_by)
    if order == "desc":
        expected.reverse()
    assert names(sm, SortBy=sort_by, SortOrder=order) == expected
    # Across pages of two the order is the same.
    assert names(sm, SortBy=sort_by, SortOrder=order, MaxResults=2) == expected
    # Filters do not change the order of what they keep.
    kept = [n for n in expected if n != "d-delta"]
    assert names(sm, SortBy=sort_by, SortOrder=order, Filters=[by("name", "!d-")]) == kept


def test_sort_orders_differ(sm: Client, sortable: list[str]) -> None:
    """The fixture makes every sort key give a different order, so the test above bites."""
    orders = {
        tuple(names(sm, SortBy=s))
        for s in ("created-date", "last-accessed-date", "last-changed-date", "name")
    }
    assert len(orders) == 4


def test_default_order_is_ascending_creation(sm: Client, sortable: list[str]) -> None:
    assert names(sm) == sortable
    assert names(sm, SortOrder="asc") == sortable
    assert names(sm, SortOrder="desc") == sortable[::-1]
    assert names(sm, SortBy="created-date") == sortable


# --- pagination ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many(server: ServerProcess) -> tuple[Client, list[str]]:
    """250 secrets in a region of their own, in creation order."""
    sm = server.client(region=random_region("ls"))
    created = [f"page/{i:03d}-{uuid.uuid4().hex[:4]}" for i in range(250)]
    random.shuffle(created)
    for name in created:
        sm.create_secret(Name=name)
    return sm, created


@pytest.mark.parametrize("size", [1, 7, 50, 100])
def test_manual_pages_cover_every_secret_once(many: tuple[Client, list[str]], size: int) -> None:
    sm, created = many
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = sm.list_secrets(MaxResults=size, **({"NextToken": token} if token else {}))
        pages += 1
        assert len(page["SecretList"]) <= size
        seen += [e["Name"] for e in page["SecretList"]]
        token = page.get("NextToken")
        if token is None:
            break
        assert len(page["SecretList"]) == size  # only the last page is short
    assert seen == created  # every secret once, in creation order
    assert pages == -(-len(created) // size)  # no empty page at the end, no NextToken on it


def test_default_page_is_one_hundred(many: tuple[Client, list[str]]) -> None:
    sm, created = many
    first = sm.list_secrets()
    assert [e["Name"] for e in first["SecretList"]] == created[:100]
    assert first["NextToken"]


@pytest.mark.parametrize("page_size", [6, 64, 100])
def test_boto3_paginator(many: tuple[Client, list[str]], page_size: int) -> None:
    sm, created = many
    paginator = sm.get_paginator("list_secrets")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": page_size}))
    listed = [e["Name"] for p in pages for e in p["SecretList"]]
    assert listed == created
    assert len(set(listed)) == len(listed)
    assert "NextToken" not in pages[-1]
    # Descending by name through the paginator: the whole sorted list, across pages.
    result = paginator.paginate(
        SortBy="name", SortOrder="desc", PaginationConfig={"PageSize": page_size}
    ).build_full_result()
    assert [e["Name"] for e in result["SecretList"]] == sorted(created, reverse=True)
    # MaxItems stops early and hands back a resume token that continues exactly there.
    first = paginator.paginate(
        PaginationConfig={"PageSize": page_size, "MaxItems": 10}
    ).build_full_result()
    assert [e["Name"] for e in first["SecretList"]] == created[:10]
    rest = paginator.paginate(
        PaginationConfig={"PageSize": page_size, "StartingToken": first["NextToken"]}
    ).build_full_result()
    assert [e["Name"] for e in rest["SecretList"]] == created[10:]


def test_filtered_pages(many: tuple[Client, list[str]]) -> None:
    sm, created = many
    wanted = sorted(n for n in created if n.startswith("page/1"))
    listed = names(sm, Filters=[by("name", "page/1")], SortBy="name", MaxResults=9)
    assert listed == wanted
    assert len(wanted) == 100


def test_secrets_added_between_pages_do_not_duplicate(sm: Client) -> None:
    for i in range(5):
        create(sm, f"s{i}")
    first = sm.list_secrets(MaxResults=3)
    create(sm, "s5")
    rest = names(sm, MaxResults=3, NextToken=first["NextToken"])
    listed = [e["Name"] for e in first["SecretList"]] + rest
    assert listed == [f"s{i}" for i in range(6)]


def _token(sm: Client, **kwargs: Any) -> str:
    page = sm.list_secrets(MaxResults=1, **kwargs)
    token: str = page["NextToken"]
    return token


def _invalid_token(call: Callable[[], Any]) -> None:
    error = aws_error(call)
    assert error["Code"] == "InvalidNextTokenException"


def test_next_token_is_bound_to_filters_sort_and_region(server: ServerProcess, sm: Client) -> None:
    for i in range(3):
        create(sm, f"t{i}", Tags=[{"Key": "k", "Value": "v"}])
    token = _token(sm)
    # The same request continues...
    assert names(sm, MaxResults=1, NextToken=token) == ["t1", "t2"]
    # ...any other request refuses the token.
    _invalid_token(lambda: sm.list_secrets(NextToken=token, Filters=[by("name", "t")]))
    _invalid_token(lambda: sm.list_secrets(NextToken=token, SortBy="name"))
    _invalid_token(lambda: sm.list_secrets(NextToken=token, SortOrder="desc"))
    _invalid_token(lambda: sm.list_secrets(NextToken=token, IncludePlannedDeletion=True))
    filtered = _token(sm, Filters=[by("tag-key", "k")])
    assert names(sm, NextToken=filtered, Filters=[by("tag-key", "k")]) == ["t1", "t2"]
    _invalid_token(lambda: sm.list_secrets(NextToken=filtered, Filters=[by("tag-key", "kk")]))
    _invalid_token(lambda: sm.list_secrets(NextToken=filtered))
    # Another region's listing, and another operation, refuse it too.
    elsewhere = server.client(region=random_region("ls"))
    _invalid_token(lambda: elsewhere.list_secrets(NextToken=token))
    _invalid_token(lambda: sm.batch_get_secret_value(Filters=[by("name", "t")], NextToken=token))


def test_tampered_or_garbage_tokens_are_refused(raw: Client) -> None:
    for i in range(3):
        raw.create_secret(Name=f"g{i}")
    token = _token(raw)
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    for bad in (flipped, token[:-1], token + "A", "garbage", "x" * 4096, "!!!!", token[::-1]):
        _invalid_token(lambda bad=bad: raw.list_secrets(NextToken=bad))
    # The real token still works afterwards.
    assert names(raw, MaxResults=1, NextToken=token) == ["g1", "g2"]
    error = aws_error(lambda: raw.list_secrets(NextToken=""))
    assert error["Code"] == "ValidationException"
    error = aws_error(lambda: raw.list_secrets(NextToken="x" * 4097))
    assert error["Code"] == "ValidationException"
