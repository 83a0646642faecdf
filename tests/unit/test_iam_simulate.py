"""IAM's policy simulator (SimulatePrincipalPolicy, SimulateCustomPolicy) at domain level:
IAM entities in a real data directory, the simulator over the deployment's store, the
output checked member by member against what the botocore ``iam`` model describes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from strongroom.iam.api import iam_operations
from strongroom.iam.credentials import admin_arn
from strongroom.iam.mfa import MfaDevices
from strongroom.iam.service import IdentityService
from strongroom.iam.simulate import PolicySimulator, statement_positions
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.model import service_model
from strongroom.protocol.query_codec import serialize_output
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.types import Caller

ADMIN = Caller(DEV_ACCOUNT, "us-east-1", admin_arn(DEV_ACCOUNT))
OTHER_ACCOUNT = "111122223333"
SECRET_PREFIX = f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:"
DB = f"{SECRET_PREFIX}MyApp/DBCredentials-AbCdEf"
OTHER = f"{SECRET_PREFIX}Other-GhIjKl"
SECRET_FORMAT = "arn:${Partition}:secretsmanager:${Region}:${Account}:secret:${SecretId}"
GET = "secretsmanager:GetSecretValue"
DESCRIBE = "secretsmanager:DescribeSecret"


def document(*statements: dict[str, Any], indent: int | None = None) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=indent)


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


SEED = document(allow(GET, f"{SECRET_PREFIX}MyApp/DBCredentials-*"), indent=4)


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{DEV_ACCOUNT}:user/{name}"


@pytest.fixture
def iam(deployment: Deployment) -> IdentityService:
    return IdentityService(deployment.store, deployment.barrier, deployment.clock)


@pytest.fixture
def sim(deployment: Deployment, iam: IdentityService) -> PolicySimulator:
    return PolicySimulator(deployment.store, iam.tokens)


@pytest.fixture
def alice(iam: IdentityService) -> Iterator[str]:
    """user/alice with only the seed's policy, inline, named read-db."""
    iam.create_user(ADMIN, {"UserName": "alice"})
    iam.put_inline(
        "user", ADMIN, {"UserName": "alice", "PolicyName": "read-db", "PolicyDocument": SEED}
    )
    yield user_arn("alice")


@pytest.fixture
def principal(sim: PolicySimulator) -> Callable[..., dict[str, Any]]:
    def run(arn: str, actions: list[str], resources: list[str] | None = None, **extra: Any) -> Any:
        params = {"PolicySourceArn": arn, "ActionNames": actions, **extra}
        if resources is not None:
            params["ResourceArns"] = resources
        out = sim.simulate_principal_policy(ADMIN, params)
        check_serializes("SimulatePrincipalPolicy", out)
        return out

    return run


@pytest.fixture
def custom(sim: PolicySimulator) -> Callable[..., dict[str, Any]]:
    def run(
        policies: list[str], actions: list[str], resources: list[str] | None = None, **extra: Any
    ) -> Any:
        params = {"PolicyInputList": policies, "ActionNames": actions, **extra}
        if resources is not None:
            params["ResourceArns"] = resources
        out = sim.simulate_custom_policy(ADMIN, params)
        check_serializes("SimulateCustomPolicy", out)
        return out

    return run


def check_serializes(operation: str, out: dict[str, Any]) -> None:
    """The output is what the model's output shape allows (the Query serializer checks)."""
    serialize_output(service_model("iam").operation_model(operation), out, "request-id")


def decisions(out: dict[str, Any]) -> dict[str, dict[str, str]]:
    """action -> resource -> decision."""
    return {
        result["EvalActionName"]: {
            r["EvalResourceName"]: r["EvalResourceDecision"]
            for r in result.get("ResourceSpecificResults", [])
        }
        or {"*": result["EvalDecision"]}
        for result in out["EvaluationResults"]
    }


def refused(call: Callable[[], Any], code: str, message: str | None = None) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        call()
    assert info.value.code == code, info.value.message
    if message is not None:
        assert info.value.message == message
    return info.value


# The facade ------------------------------------------------------------------------------


def test_both_operations_are_served_by_the_iam_facade(
    iam: IdentityService, deployment: Deployment
) -> None:
    handlers = iam_operations(
        iam, MfaDevices(iam.store, deployment.barrier, deployment.clock, iam.tokens)
    )
    assert handlers["SimulatePrincipalPolicy"].__name__ == "simulate_principal_policy"
    assert handlers["SimulateCustomPolicy"].__name__ == "simulate_custom_policy"


# SimulatePrincipalPolicy ------------------------------------------------------------------


def test_the_seed_policy_allows_exactly_its_secret_and_names_the_statement(
    principal: Callable[..., Any], alice: str
) -> None:
    out = principal(alice, [GET, DESCRIBE], [DB, OTHER])
    assert out["IsTruncated"] is False and "Marker" not in out
    get, describe = out["EvaluationResults"]
    # One result per action; the top-level decision is the most restrictive one.
    assert get["EvalActionName"] == GET
    assert get["EvalResourceName"] == SECRET_FORMAT
    assert get["EvalDecision"] == "implicitDeny"
    assert get["MatchedStatements"] == []
    assert get["EvalDecisionDetails"] == {}  # same account, resources named: present, empty
    allowed, denied = get["ResourceSpecificResults"]
    assert allowed == {
        "EvalResourceName": DB,
        "EvalResourceDecision": "allowed",
        "MatchedStatements": [
            {
                "SourcePolicyId": "read-db",
                "SourcePolicyType": "user",
                "StartPosition": {"Line": 4, "Column": 9},
                "EndPosition": {"Line": 8, "Column": 10},
            }
        ],
        "MissingContextValues": [],
        "EvalDecisionDetails": {},
    }
    assert denied["EvalResourceName"] == OTHER
    assert denied["EvalResourceDecision"] == "implicitDeny"
    assert denied["MatchedStatements"] == []
    assert decisions(out)[DESCRIBE] == {DB: "implicitDeny", OTHER: "implicitDeny"}
    assert describe["EvalDecision"] == "implicitDeny"


def test_one_allowed_resource_is_allowed_at_the_top_with_its_statement(
    principal: Callable[..., Any], alice: str
) -> None:
    (result,) = principal(alice, [GET], [DB])["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    assert [s["SourcePolicyId"] for s in result["MatchedStatements"]] == ["read-db"]


def test_without_resources_the_action_is_simulated_on_star(
    principal: Callable[..., Any], iam: IdentityService
) -> None:
    (result,) = principal(admin_arn(DEV_ACCOUNT), ["iam:CreateUser"])["EvaluationResults"]
    assert result["EvalResourceName"] == "*"
    assert result["EvalDecision"] == "allowed"
    assert "ResourceSpecificResults" not in result and "EvalDecisionDetails" not in result
    (statement,) = result["MatchedStatements"]
    assert statement["SourcePolicyId"] == "AdministratorAccess"
    assert statement["SourcePolicyType"] == "aws-managed"


def test_an_explicit_deny_is_the_only_statement_reported(
    principal: Callable[..., Any], iam: IdentityService
) -> None:
    iam.create_user(ADMIN, {"UserName": "bob"})
    iam.attach(
        "user",
        ADMIN,
        {"UserName": "bob", "PolicyArn": "arn:aws:iam::aws:policy/SecretsManagerReadWrite"},
    )
    iam.put_inline(
        "user",
        ADMIN,
        {"UserName": "bob", "PolicyName": "no-db", "PolicyDocument": document(deny(GET, DB))},
    )
    out = principal(user_arn("bob"), [GET], [DB, OTHER])
    assert decisions(out)[GET] == {DB: "explicitDeny", OTHER: "allowed"}
    (result,) = out["EvaluationResults"]
    assert result["EvalDecision"] == "explicitDeny"
    (statement,) = result["MatchedStatements"]
    assert statement["SourcePolicyId"] == "no-db"
    assert statement["StartPosition"] == {"Line": 1, "Column": 41}
    allowed = result["ResourceSpecificResults"][1]["MatchedStatements"]
    assert [(s["SourcePolicyId"], s["SourcePolicyType"]) for s in allowed] == [
        ("SecretsManagerReadWrite", "aws-managed")
    ]


def test_a_user_has_its_groups_policies_and_a_group_can_be_simulated(
    principal: Callable[..., Any], iam: IdentityService
) -> None:
    iam.create_user(ADMIN, {"UserName": "carol"})
    iam.create_group(ADMIN, {"GroupName": "readers"})
    iam.add_user_to_group(ADMIN, {"GroupName": "readers", "UserName": "carol"})
    iam.put_inline(
        "group",
        ADMIN,
        {"GroupName": "readers", "PolicyName": "read-all", "PolicyDocument": document(allow(GET))},
    )
    managed = iam.create_policy(
        ADMIN, {"PolicyName": "describe", "PolicyDocument": document(allow(DESCRIBE))}
    )["Policy"]["Arn"]
    iam.attach("group", ADMIN, {"GroupName": "readers", "PolicyArn": managed})
    out = principal(user_arn("carol"), [GET, DESCRIBE], [OTHER])
    get, describe = out["EvaluationResults"]
    assert get["EvalDecision"] == describe["EvalDecision"] == "allowed"
    assert get["MatchedStatements"][0]["SourcePolicyId"] == "read-all"
    assert get["MatchedStatements"][0]["SourcePolicyType"] == "group"
    assert describe["MatchedStatements"][0]["SourcePolicyId"] == "describe"
    assert describe["MatchedStatements"][0]["SourcePolicyType"] == "user-managed"
    group = f"arn:aws:iam::{DEV_ACCOUNT}:group/readers"
    assert decisions(principal(group, [GET, "kms:Decrypt"], [OTHER])) == {
        GET: {OTHER: "allowed"},
        "kms:Decrypt": {OTHER: "implicitDeny"},
    }


def test_a_managed_policy_is_simulated_at_its_default_version(
    principal: Callable[..., Any], iam: IdentityService
) -> None:
    iam.create_user(ADMIN, {"UserName": "dave"})
    arn = iam.create_policy(
        ADMIN, {"PolicyName": "versions", "PolicyDocument": document(allow(DESCRIBE))}
    )["Policy"]["Arn"]
    iam.attach("user", ADMIN, {"UserName": "dave", "PolicyArn": arn})
    iam.create_policy_version(ADMIN, {"PolicyArn": arn, "PolicyDocument": document(allow(GET))})
    assert decisions(principal(user_arn("dave"), [GET], [DB]))[GET] == {DB: "implicitDeny"}
    iam.set_default_policy_version(ADMIN, {"PolicyArn": arn, "VersionId": "v2"})
    assert decisions(principal(user_arn("dave"), [GET], [DB]))[GET] == {DB: "allowed"}


def test_a_permissions_boundary_limits_and_is_reported(
    principal: Callable[..., Any], iam: IdentityService
) -> None:
    boundary = iam.create_policy(
        ADMIN, {"PolicyName": "only-describe", "PolicyDocument": document(allow(DESCRIBE))}
    )["Policy"]["Arn"]
    iam.create_user(ADMIN, {"UserName": "erin", "PermissionsBoundary": boundary})
    iam.attach(
        "user",
        ADMIN,
        {"UserName": "erin", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
    )
    out = principal(user_arn("erin"), [GET, DESCRIBE], [DB])
    get, describe = out["EvaluationResults"]
    assert get["EvalDecision"] == "implicitDeny"
    assert get["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}
    assert describe["EvalDecision"] == "allowed"
    assert describe["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    assert {s["SourcePolicyId"] for s in describe["MatchedStatements"]} == {
        "AdministratorAccess",
        "only-describe",
    }
    # A boundary given as input replaces the entity's own.
    replaced = principal(
        user_arn("erin"),
        [GET],
        [DB],
        PermissionsBoundaryPolicyInputList=[document(allow(GET))],
    )
    assert replaced["EvaluationResults"][0]["EvalDecision"] == "allowed"
    # ... and excluding it lifts it.
    lifted = principal(
        user_arn("erin"), [GET], [DB], PolicyExclusionList=[{"PolicyType": "permission-boundary"}]
    )
    assert lifted["EvaluationResults"][0]["EvalDecision"] == "allowed"
    assert "PermissionsBoundaryDecisionDetail" not in lifted["EvaluationResults"][0]


def test_policy_inputs_add_to_the_entitys_and_exclusions_take_away(
    principal: Callable[..., Any], alice: str
) -> None:
    out = principal(alice, [DESCRIBE], [DB], PolicyInputList=[document(allow(DESCRIBE))])
    (result,) = out["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"] == [
        {
            "SourcePolicyId": "PolicyInputList.1",
            "SourcePolicyType": "IAM Policy",
            "StartPosition": {"Line": 1, "Column": 41},
            "EndPosition": {"Line": 1, "Column": 120},
        }
    ]
    for exclusion in (
        {"PolicyType": "inline"},
        {
            "InlinePolicyIdentifier": {
                "PolicyName": "read-db",
                "AttachmentType": "user",
                "AttachmentName": "al*",
            }
        },
    ):
        excluded = principal(alice, [GET], [DB], PolicyExclusionList=[exclusion])
        assert excluded["EvaluationResults"][0]["EvalDecision"] == "implicitDeny", exclusion
    kept = principal(
        alice,
        [GET],
        [DB],
        PolicyExclusionList=[
            {
                "InlinePolicyIdentifier": {
                    "PolicyName": "read-db",
                    "AttachmentType": "group",
                    "AttachmentName": "alice",
                }
            },
            {"PolicyArn": "arn:aws:iam::aws:policy/*"},
        ],
    )
    assert kept["EvaluationResults"][0]["EvalDecision"] == "allowed"


def test_a_resource_policy_naming_the_user_allows_without_an_identity_policy(
    principal: Callable[..., Any], iam: IdentityService
) -> None:
    iam.create_user(ADMIN, {"UserName": "frank"})
    frank = user_arn("frank")
    policy = document(
        {"Effect": "Allow", "Principal": {"AWS": frank}, "Action": GET, "Resource": "*"}
    )
    out = principal(frank, [GET, DESCRIBE], [DB], ResourcePolicy=policy)
    assert decisions(out) == {GET: {DB: "allowed"}, DESCRIBE: {DB: "implicitDeny"}}
    (statement,) = out["EvaluationResults"][0]["MatchedStatements"]
    assert statement["SourcePolicyId"] == "ResourcePolicy"
    assert statement["SourcePolicyType"] == "resource"
    # Simulated as another caller, the resource policy does not name it.
    iam.create_user(ADMIN, {"UserName": "grace"})
    other = principal(frank, [GET], [DB], ResourcePolicy=policy, CallerArn=user_arn("grace"))
    assert other["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"


def test_a_cross_account_simulation_needs_both_sides_and_details_each(
    principal: Callable[..., Any], alice: str
) -> None:
    theirs = f"arn:aws:secretsmanager:us-east-1:{OTHER_ACCOUNT}:secret:MyApp/DBCredentials-AbCdEf"
    grant = document(
        {"Effect": "Allow", "Principal": {"AWS": alice}, "Action": GET, "Resource": "*"}
    )
    # alice's policy names her own account's secrets only.
    out = principal(alice, [GET], [theirs], ResourcePolicy=grant)
    (result,) = out["EvaluationResults"]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["EvalDecisionDetails"] == {
        "IAM Policy": "implicitDeny",
        "Resource Policy": "allowed",
    }
    both = principal(
        alice,
        [GET],
        [theirs],
        ResourcePolicy=grant,
        PolicyInputList=[document(allow(GET, theirs))],
    )
    (result,) = both["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    assert result["EvalDecisionDetails"] == {"IAM Policy": "allowed", "Resource Policy": "allowed"}
    # Without a resource policy the other account's side does not allow.
    alone = principal(alice, [GET], [theirs], PolicyInputList=[document(allow(GET, theirs))])
    assert alone["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"
    assert alone["EvaluationResults"][0]["EvalDecisionDetails"]["Resource Policy"] == "implicitDeny"
    # ResourceOwner says whose a resource is when its ARN does not.
    owned = principal(
        alice, [GET], ["*"], ResourceOwner=OTHER_ACCOUNT, PolicyInputList=[document(allow(GET))]
    )
    assert owned["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"


def test_context_entries_feed_conditions_and_missing_keys_are_listed(
    principal: Callable[..., Any], iam: IdentityService
) -> None:
    iam.create_user(ADMIN, {"UserName": "heidi"})
    tagged = document(
        allow(GET, "*", Condition={"StringEquals": {"aws:ResourceTag/team": "blue"}}),
    )
    iam.put_inline(
        "user", ADMIN, {"UserName": "heidi", "PolicyName": "blue", "PolicyDocument": tagged}
    )
    heidi = user_arn("heidi")

    def entry(value: str) -> list[dict[str, Any]]:
        return [
            {
                "ContextKeyName": "aws:ResourceTag/team",
                "ContextKeyValues": [value],
                "ContextKeyType": "string",
            }
        ]

    missing = principal(heidi, [GET], [DB])["EvaluationResults"][0]
    assert missing["EvalDecision"] == "implicitDeny"
    assert missing["MissingContextValues"] == ["aws:ResourceTag/team"]
    assert missing["ResourceSpecificResults"][0]["MissingContextValues"] == ["aws:ResourceTag/team"]
    blue = principal(heidi, [GET], [DB], ContextEntries=entry("blue"))["EvaluationResults"][0]
    assert blue["EvalDecision"] == "allowed" and blue["MissingContextValues"] == []
    red = principal(heidi, [GET], [DB], ContextEntries=entry("red"))["EvaluationResults"][0]
    assert red["EvalDecision"] == "implicitDeny"
    # Typed values are checked; list types take several values.
    refused(
        lambda: principal(
            heidi,
            [GET],
            ContextEntries=[
                {
                    "ContextKeyName": "aws:EpochTime",
                    "ContextKeyValues": ["soon"],
                    "ContextKeyType": "numeric",
                }
            ],
        ),
        "InvalidInput",
    )
    keys = principal(
        heidi,
        [GET],
        ContextEntries=[
            {
                "ContextKeyName": "aws:TagKeys",
                "ContextKeyValues": ["a", "b"],
                "ContextKeyType": "stringList",
            }
        ],
    )
    assert keys["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"


def test_policy_variables_need_their_keys(
    principal: Callable[..., Any], iam: IdentityService
) -> None:
    iam.create_user(ADMIN, {"UserName": "ivan"})
    own = document(allow(GET, f"{SECRET_PREFIX}${{aws:username}}/*"))
    iam.put_inline("user", ADMIN, {"UserName": "ivan", "PolicyName": "own", "PolicyDocument": own})
    mine = f"{SECRET_PREFIX}ivan/db-AbCdEf"
    without = principal(user_arn("ivan"), [GET], [mine])["EvaluationResults"][0]
    assert without["EvalDecision"] == "implicitDeny"
    assert without["MissingContextValues"] == ["aws:username"]
    given = [
        {"ContextKeyName": "aws:username", "ContextKeyValues": ["ivan"], "ContextKeyType": "string"}
    ]
    assert (
        principal(user_arn("ivan"), [GET], [mine], ContextEntries=given)["EvaluationResults"][0][
            "EvalDecision"
        ]
        == "allowed"
    )


def test_results_are_paginated_by_action(principal: Callable[..., Any], alice: str) -> None:
    actions = [GET, DESCRIBE, "secretsmanager:PutSecretValue"]
    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        extra = {"Marker": marker} if marker else {}
        out = principal(alice, actions, [DB], MaxItems=2, **extra)
        pages += 1
        seen += [r["EvalActionName"] for r in out["EvaluationResults"]]
        if not out["IsTruncated"]:
            assert "Marker" not in out
            break
        marker = out["Marker"]
    assert seen == actions and pages == 2
    refused(lambda: principal(alice, actions, [DB], Marker="bogus"), "InvalidInput")


def test_bad_input_is_refused(principal: Callable[..., Any], alice: str) -> None:
    refused(
        lambda: principal(user_arn("nobody"), [GET]),
        "NoSuchEntity",
        "The user with name nobody cannot be found.",
    )
    refused(lambda: principal(f"arn:aws:iam::{OTHER_ACCOUNT}:user/alice", [GET]), "NoSuchEntity")
    refused(
        lambda: principal(f"arn:aws:sts::{DEV_ACCOUNT}:assumed-role/r/s", [GET]), "InvalidInput"
    )
    refused(lambda: principal(alice, [GET], PolicyInputList=["{not json"]), "InvalidInput")
    refused(lambda: principal(alice, ["GetSecretValue"]), "InvalidInput")
    refused(
        lambda: principal(alice, [GET], PermissionsBoundaryPolicyInputList=[SEED, SEED]),
        "InvalidInput",
    )
    refused(lambda: principal(alice, [GET], ResourceOwner="not-an-account"), "InvalidInput")
    refused(
        lambda: principal(alice, [GET], CallerArn=f"arn:aws:sts::{DEV_ACCOUNT}:assumed-role/r/s"),
        "InvalidInput",
    )
    refused(
        lambda: principal(
            alice, [GET], PolicyExclusionList=[{"PolicyArn": "arn:aws:iam::*:policy/x*y*"}]
        ),
        "InvalidInput",
    )


# SimulateCustomPolicy ---------------------------------------------------------------------


def test_custom_policies_are_simulated_alone(custom: Callable[..., Any]) -> None:
    out = custom(
        [SEED, document(deny(GET, OTHER))], [GET], [DB, OTHER, f"{SECRET_PREFIX}Third-MnOpQr"]
    )
    assert decisions(out)[GET] == {
        DB: "allowed",
        OTHER: "explicitDeny",
        f"{SECRET_PREFIX}Third-MnOpQr": "implicitDeny",
    }
    (result,) = out["EvaluationResults"]
    assert result["EvalDecision"] == "explicitDeny"
    assert [s["SourcePolicyId"] for s in result["MatchedStatements"]] == ["PolicyInputList.2"]


def test_custom_resource_policies_need_a_caller(custom: Callable[..., Any]) -> None:
    grant = document(
        {"Effect": "Allow", "Principal": {"AWS": user_arn("x")}, "Action": GET, "Resource": "*"}
    )
    refused(
        lambda: custom([document(allow(DESCRIBE))], [GET], [DB], ResourcePolicy=grant),
        "InvalidInput",
    )
    out = custom(
        [document(allow(DESCRIBE))], [GET], [DB], ResourcePolicy=grant, CallerArn=user_arn("x")
    )
    assert out["EvaluationResults"][0]["EvalDecision"] == "allowed"


def test_a_kms_resource_policy_is_read_as_a_key_policy(custom: Callable[..., Any]) -> None:
    key = f"arn:aws:kms:us-east-1:{DEV_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    caller = user_arn("x")
    nobody = document(
        {
            "Sid": "Only the root user",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    account = document(
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    identity = [document(allow("kms:Decrypt"))]
    out = custom(identity, ["kms:Decrypt"], [key], ResourcePolicy=nobody, CallerArn=caller)
    assert out["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"
    assert out["EvaluationResults"][0]["EvalResourceName"] == (
        "arn:${Partition}:kms:${Region}:${Account}:key/${KeyId}"
    )
    out = custom(identity, ["kms:Decrypt"], [key], ResourcePolicy=account, CallerArn=caller)
    assert out["EvaluationResults"][0]["EvalDecision"] == "allowed"


def test_service_control_policies_must_allow_at_every_level(custom: Callable[..., Any]) -> None:
    everything = document(allow("*"))
    no_secrets = document(allow("*"), deny("secretsmanager:*"))
    levels = [
        {"ServiceControlPolicyInputList": [everything]},
        {"ServiceControlPolicyInputList": [no_secrets]},
    ]
    out = custom([everything], [GET, "kms:Decrypt"], OrderedOrganizationPolicyInputList=levels)
    get, decrypt = out["EvaluationResults"]
    assert get["EvalDecision"] == "explicitDeny"
    assert get["OrganizationsDecisionDetail"] == {"AllowedByOrganizations": False}
    assert decrypt["EvalDecision"] == "allowed"
    assert decrypt["OrganizationsDecisionDetail"] == {"AllowedByOrganizations": True}


# Statement positions -----------------------------------------------------------------------


def test_statement_positions_point_at_each_statement() -> None:
    text = (
        '{\n  "Version": "2012-10-17",\n  "Statement": [\n'
        '    {"Sid": "a}]\\"", "Effect": "Allow"},\n    {"Effect": "Deny"}\n  ]\n}'
    )
    assert statement_positions(text) == [
        ({"Line": 4, "Column": 5}, {"Line": 4, "Column": 40}),
        ({"Line": 5, "Column": 5}, {"Line": 5, "Column": 23}),
    ]
    single = '{"Statement": {"Effect": "Allow"}, "Version": "2012-10-17"}'
    assert statement_positions(single) == [({"Line": 1, "Column": 15}, {"Line": 1, "Column": 34})]
    assert statement_positions("not json") == []
    # Positions run from the statement's "{" to just past its "}".
    policy = document(allow(GET), deny(DESCRIBE, OTHER), indent=2)
    lines = policy.split("\n")
    for (start, end), statement in zip(
        statement_positions(policy), [allow(GET), deny(DESCRIBE, OTHER)], strict=True
    ):
        text = "\n".join(lines[start["Line"] - 1 : end["Line"]])
        cut = text[
            start["Column"] - 1 : len(text) - len(lines[end["Line"] - 1]) + end["Column"] - 1
        ]
        assert json.loads(cut) == statement
