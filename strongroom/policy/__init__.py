"""The IAM policy language: parse, validate, evaluate, explain."""

from strongroom.policy.document import (
    BROAD_ACCESS_CHECK,
    LOCKOUT_CHECK,
    MALFORMED_POLICY,
    SYNTAX_CHECK,
    PolicyDocument,
    PolicyKind,
    Principal,
    Statement,
    ValidationFinding,
    is_public,
    parse_policy,
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
