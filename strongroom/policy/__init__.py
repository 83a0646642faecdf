"""The IAM policy language: parse, validate, evaluate, explain."""

from strongroom.policy.document import (
    MALFORMED_POLICY,
    PolicyDocument,
    PolicyKind,
    Principal,
    Statement,
    parse_policy,
)
from strongroom.policy.secret_policy import (
    BROAD_ACCESS_CHECK,
    LOCKOUT_CHECK,
    SYNTAX_CHECK,
    ValidationFinding,
    is_public,
    validate_resource_policy,
)

__all__ = [
    "BROAD_ACCESS_CHECK",
    "LOCKOUT_CHECK",
    "MALFORMED_POLICY",
    "SYNTAX_CHECK",
    "PolicyDocument",
    "PolicyKind",
    "Principal",
    "Statement",
    "ValidationFinding",
    "is_public",
    "parse_policy",
    "validate_resource_policy",
]
