"""What one authorization question is: an action on a resource, with the resource's own
policy (if any) and the request's condition keys. Services build these; the authorizer
answers them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

ContextValues = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Check:
    action: str  # "secretsmanager:GetSecretValue"
    resource: str = "*"  # the resource's ARN, or "*" for actions without one
    resource_account: str | None = None
    resource_policy: str | None = None  # a secret's resource policy, a KMS key policy
    key_policy: bool = False  # KMS semantics: nothing is allowed unless the key policy says so
    context: ContextValues = field(default_factory=dict)


# An operation asks its caller's ``authorize`` about actions it discovers while running
# (each secret of a batch, dependent actions, a KMS key used on the caller's behalf).
Authorize = Callable[[Check], None]


def allow_everything(_check: Check) -> None:
    """For domain calls made by the server itself (background jobs, tests)."""
