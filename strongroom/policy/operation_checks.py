"""The checks of an operation, generated from the Service Authorization Reference.

For every operation a service serves, the reference names the action, the resource
types it is authorized on and the condition keys it may carry
(:mod:`strongroom.policy.reference`). A domain supplies only what the reference cannot
know: for each resource type, a *resolver* that finds the stored resource(s) a request
is about (their ARN, account, resource policy and the condition keys they define, such
as tags), and a *request-key* function that turns the request's members into condition
keys. :func:`reference_checks` joins them into the service's
:data:`~strongroom.protocol.service.CheckBuilder`: one check per resolved resource, each
with the resource's keys and the request's.

What AWS documents as a special case (an action the reference does not list under the
operation's name, a second action an operation also needs) is hand code given as
``replace`` or ``dependent``, each with its source in a comment where it is defined.

The plan of each operation (its action and which resolvers to run) is computed once,
when the builder is made: nothing of the reference is read per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from strongroom.policy import reference
from strongroom.policy.checks import Check

ContextValues = Mapping[str, tuple[str, ...]]
Params = Mapping[str, Any]

_NO_KEYS: ContextValues = MappingProxyType({})
_LISTED_LIMIT = 4096  # sets of key names remembered per operation (tags are open-ended)


class Resource(NamedTuple):
    """A resource an operation is authorized on, as stored (or, for Create*, as it will
    be): its ARN, owner account, resource policy and the condition keys it defines."""

    arn: str
    account: str | None = None
    policy: str | None = None  # a secret's resource policy, a key policy, a trust policy
    key_policy: bool = False  # the policy must allow by itself (KMS keys, role trust)
    keys: ContextValues = _NO_KEYS
    bounded: bool = False  # a grant naming the caller is limited by its boundary (role trust)


# (caller, operation, params) -> the resources of one resource type the request names;
# none when the request names no resource of that type (an optional type).
Resolver = Callable[[Any, str, Params], Sequence[Resource]]
# (caller, operation, params) -> the condition keys the request's members define.
RequestKeys = Callable[[Any, str, Params], ContextValues]
# (caller, operation, params) -> the checks of an operation done by hand.
CheckBuilder = Callable[[Any, str, Params], list[Check]]
# (caller, params, the operation's checks) -> further checks it needs (dependent actions).
Dependent = Callable[[Any, Params, Sequence[Check]], list[Check]]


def no_request_keys(_caller: Any, _operation: str, _params: Params) -> ContextValues:
    return {}


@dataclass(frozen=True)
class Authorization:
    """What a domain tells the generic builder about its service."""

    service: str  # the reference's service prefix: "iam", "kms"...
    resolvers: Mapping[str, Resolver] = field(default_factory=dict)  # by resource type name
    request_keys: RequestKeys = no_request_keys
    replace: Mapping[str, CheckBuilder] = field(default_factory=dict)
    dependent: Mapping[str, Dependent] = field(default_factory=dict)
    # The request-key function of one operation, asked once per operation when the builder
    # is made (what depends only on the operation settled then); None: ``request_keys``.
    request_keys_for: Callable[[str], RequestKeys] | None = None


@dataclass(frozen=True)
class OperationPlan:
    """How one operation's checks are made: its action and the resolvers of the resource
    types the reference names for it, in the reference's order."""

    action: reference.Action
    resolvers: tuple[tuple[str, Resolver], ...]
    # Which of a resource's key names the reference lists for the action, by the names
    # the resource defines (None: all of them): learnt on first use, as tag keys are
    # open-ended, then one dictionary lookup per request.
    listed: dict[tuple[str, ...], tuple[str, ...] | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def resource_keys(self, keys: ContextValues) -> ContextValues:
        """The keys of a resource that the reference lists for this action: a resource
        defines some keys only for some actions (a user's permissions boundary is
        ``iam:PermissionsBoundary`` for PutUserPolicy, not for GetUser)."""
        names = tuple(keys)
        try:
            kept = self.listed[names]
        except KeyError:
            wanted = tuple(name for name in names if self.action.lists_key(name))
            kept = None if wanted == names else wanted
            if len(self.listed) >= _LISTED_LIMIT:
                self.listed.clear()
            self.listed[names] = kept
        if kept is None:
            return keys
        return {name: keys[name] for name in kept}


def plan_operations(
    authorization: Authorization, operations: Sequence[str]
) -> dict[str, OperationPlan]:
    """The plan of each operation not done by hand. Raises ValueError (at startup) for an
    operation the reference does not know, or whose resource type has no resolver: an
    operation is never served with a check the reference does not back."""
    plans: dict[str, OperationPlan] = {}
    for operation in operations:
        if operation in authorization.replace:
            continue
        try:
            action = reference.action(authorization.service, operation)
        except KeyError as missing:
            raise ValueError(str(missing)) from None
        resolvers = []
        for resource in action.resources:
            resolver = authorization.resolvers.get(resource.type.name)
            if resolver is None:
                raise ValueError(
                    f"{action.iam_action}: no resolver for resource type {resource.type.name}"
                )
            resolvers.append((resource.type.name, resolver))
        plans[operation] = OperationPlan(action, tuple(resolvers))
    return plans


def reference_checks(authorization: Authorization, operations: Sequence[str]) -> CheckBuilder:
    """The check builder of a service serving ``operations``: one builder per operation,
    specialised when made (:func:`_operation_checks`), then one dictionary lookup per
    request."""
    plans = plan_operations(authorization, operations)
    keys_for = authorization.request_keys_for
    builders: dict[str, CheckBuilder] = dict(authorization.replace)
    for operation, plan in plans.items():
        builders[operation] = _operation_checks(
            plan,
            keys_for(operation) if keys_for is not None else authorization.request_keys,
            authorization.dependent.get(operation),
        )

    def checks(caller: Any, operation: str, params: Params) -> list[Check]:
        return builders[operation](caller, operation, params)

    return checks


def _operation_checks(
    plan: OperationPlan, request_keys: RequestKeys, more: Dependent | None
) -> CheckBuilder:
    """The checks of one operation (:func:`plan_checks` with its request keys, then its
    dependent actions), with its plan, request-key function and dependent actions found
    once here rather than looked up on every request."""

    def checks(caller: Any, operation: str, params: Params) -> list[Check]:
        found = plan_checks(
            plan, caller, operation, params, request_keys(caller, operation, params)
        )
        if more is not None:
            found.extend(more(caller, params, found))
        return found

    return checks


def plan_checks(
    plan: OperationPlan, caller: Any, operation: str, params: Params, request: ContextValues
) -> list[Check]:
    """One check per resource the plan's resolvers find; the action on ``*`` when none
    is named (an action without resource types, or a resource that cannot be found)."""
    action = plan.action.iam_action
    found: list[Check] = []
    for _type, resolve in plan.resolvers:
        for resource in resolve(caller, operation, params):
            keys = resource.keys
            if not keys:
                context = request
            elif not request:  # most reads: the resource's keys alone, not copied again
                context = plan.resource_keys(keys)
            else:
                context = {**plan.resource_keys(keys), **request}
            # Positional, in Check's field order (a keyword call costs more, once a read):
            # action, resource, resource_account, resource_policy, key_policy, context, bounded.
            found.append(
                Check(
                    action,
                    resource.arn,
                    resource.account,
                    resource.policy,
                    resource.key_policy,
                    context,
                    resource.bounded,
                )
            )
    return found or [Check(action, context=request)]
