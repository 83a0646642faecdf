"""Wildcard matching of actions and ARNs, compiled once per policy.

Case rules ("IAM JSON policy elements": Action, Resource; "Condition operators"):

- Actions: ``*`` and ``?`` wildcards, case-insensitive (``SecretsManager:get*`` matches
  ``secretsmanager:GetSecretValue``).
- Resources and ARN condition values: ``*`` and ``?`` wildcards, case-sensitive, matched
  segment by segment (see :func:`strongroom.policy.variables.arn_template`). AWS
  documents ARNs as case-sensitive; some services compare parts of their own resource
  names without regard to case, but Secrets Manager and KMS do not, so no exception is
  made here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from strongroom.policy.variables import ContextKeys, Template, arn_template, wildcard_regex

_MEMO_LIMIT = 1024


@lru_cache(maxsize=4096)
def compile_regex(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """A compiled full-match pattern, cached: rendered templates repeat across requests."""
    return re.compile(pattern, (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def _alternation(regexes: Iterable[str]) -> str:
    return "|".join(f"(?:{regex})" for regex in regexes)


class ActionMatcher:
    """Whether an action matches any of a statement's Action (or NotAction) patterns."""

    __slots__ = ("_everything", "_exact", "_memo", "_regex")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[str] = set()
        wild: list[str] = []
        self._everything = False
        for pattern in patterns:
            if pattern == "*":
                self._everything = True
            elif "*" in pattern or "?" in pattern:
                wild.append(wildcard_regex(pattern))
            else:
                exact.add(pattern.lower())
        self._exact = frozenset(exact)
        self._regex = compile_regex(_alternation(wild), True) if wild else None
        self._memo: dict[str, bool] = {}

    def __call__(self, action: str) -> bool:
        if self._everything:
            return True
        known = self._memo.get(action)
        if known is not None:
            return known
        result = action.lower() in self._exact or (
            self._regex is not None and self._regex.fullmatch(action) is not None
        )
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[action] = result
        return result


def action_matches(pattern: str, action: str) -> bool:
    """One IAM action pattern against one action."""
    return ActionMatcher((pattern,))(action)


class PatternMatcher:
    """Whether a value fully matches any of a list of regex templates: the ones without
    policy variables compiled once into one alternation, the others rendered per request
    (StringLike values, ARN patterns)."""

    __slots__ = ("_dynamic", "_static")

    def __init__(self, templates: Iterable[Template]) -> None:
        templates = list(templates)
        static = [t.static for t in templates if t.static is not None]
        self._static = compile_regex(_alternation(static)) if static else None
        self._dynamic = [t for t in templates if t.static is None]

    def __call__(self, value: str, keys: ContextKeys, /) -> bool:
        if self._static is not None and self._static.fullmatch(value) is not None:
            return True
        for template in self._dynamic:
            regex = template.render(keys, re.escape)  # None: a null value, matching nothing
            if regex is not None and compile_regex(regex).fullmatch(value) is not None:
                return True
        return False


class ArnMatcher(PatternMatcher):
    """Whether a value matches any of a list of ARN patterns (Resource, NotResource,
    ArnLike/ArnEquals values), with policy variables filled in per request."""

    __slots__ = ("_everything",)

    def __init__(
        self, patterns: Iterable[str], *, variables: bool, resource_part_only: bool
    ) -> None:
        patterns = list(patterns)
        self._everything = "*" in patterns
        super().__init__(
            arn_template(pattern, variables=variables, resource_part_only=resource_part_only)
            for pattern in patterns
            if pattern != "*"
        )

    def __call__(self, value: str, keys: ContextKeys, /) -> bool:
        return self._everything or super().__call__(value, keys)


def arn_matches(pattern: str, arn: str) -> bool:
    """One ARN pattern (no policy variables) against one ARN."""
    return ArnMatcher((pattern,), variables=False, resource_part_only=True)(arn, {})
