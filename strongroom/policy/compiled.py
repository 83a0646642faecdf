"""Policies compiled for evaluation: each statement's matchers and conditions built
once, the statements that cover an action memoized, and what condition keys a policy
may read. Compiled forms are cached by document identity. Pure logic, no I/O."""

from __future__ import annotations

from threading import Lock

from strongroom.policy.conditions import Condition, compile_conditions
from strongroom.policy.document import CURRENT_VERSION, PolicyDocument, Statement
from strongroom.policy.matching import ActionMatcher, ArnMatcher
from strongroom.policy.principal_levels import DIRECT, NO_MATCH, CallerView, PrincipalElement
from strongroom.policy.variables import ContextKeys


class CompiledStatement:
    __slots__ = (
        "actions",
        "allow",
        "conditions",
        "index",
        "not_action",
        "not_principal",
        "not_resource",
        "principals",
        "resources",
    )

    def __init__(self, index: int, statement: Statement, *, variables: bool) -> None:
        self.index = index
        self.allow = statement.effect == "Allow"
        self.not_action = statement.action is None
        self.actions = ActionMatcher(statement.action or statement.not_action or ())
        self.not_resource = statement.resource is None
        self.resources = ArnMatcher(
            statement.resource or statement.not_resource or (),
            variables=variables,
            resource_part_only=True,
        )
        self.not_principal = statement.not_principal is not None
        element = statement.principal or statement.not_principal
        self.principals = PrincipalElement(element) if element is not None else None
        self.conditions: tuple[Condition, ...] = compile_conditions(
            statement.condition, variables=variables
        )

    def covers(self, action: str) -> bool:
        """Whether Action (or NotAction) lets this statement apply to ``action``."""
        return self.actions(action) != self.not_action

    def applies(self, resource: str, keys: ContextKeys) -> bool:
        """Resource, policy variables and conditions, for a statement that covers the
        request's action (the principal is matched separately)."""
        # A policy variable without a value makes only the value holding it null (see
        # strongroom.policy.variables), never the whole statement.
        if self.resources(resource, keys) == self.not_resource:
            return False
        for condition in self.conditions:  # noqa: SIM110 - no generator on the hot path
            if not condition(keys):
                return False
        return True

    def principal_level(self, caller: CallerView, keys: ContextKeys) -> int:
        """How this resource-policy statement's Principal/NotPrincipal matches the caller."""
        principals = self.principals
        if principals is None:
            return NO_MATCH
        if not self.not_principal:
            return principals.level(caller, keys)
        named = [True] if principals.everyone else principals.levels(caller, keys)
        # NotPrincipal: a Deny spares the caller only if every level is listed (AWS).
        # Decision: an Allow leaves it out if any level is listed. Everyone else is
        # matched as if by "*". AWS's quirk that a Deny with NotPrincipal always denies
        # principals that have a permissions boundary is not reproduced.
        excluded = any(named) if self.allow else all(named)
        return NO_MATCH if excluded else DIRECT


class CompiledPolicy:
    __slots__ = ("_by_action", "_mentioned", "_text", "reads_clock", "statements")

    def __init__(self, document: PolicyDocument) -> None:
        variables = document.version == CURRENT_VERSION
        self.statements = tuple(
            CompiledStatement(index, statement, variables=variables)
            for index, statement in enumerate(document.statements)
        )
        self._by_action: dict[str, tuple[CompiledStatement, ...]] = {}
        self._text = _text_of(document)
        self._mentioned: dict[str, bool] = {}
        self.reads_clock = any(self.mentions(key) for key in _CLOCK_KEYS_LOWER)

    def mentions(self, key: str) -> bool:
        """Whether the policy may read condition key ``key`` (lower-case): see
        :func:`_text_of`. Memoized per key: a policy is asked about few distinct keys."""
        found = self._mentioned.get(key)
        if found is None:
            found = key in self._text
            if len(self._mentioned) >= _ACTION_MEMO_LIMIT:
                self._mentioned.clear()
            self._mentioned[key] = found
        return found

    def for_action(self, action: str) -> tuple[CompiledStatement, ...]:
        """The statements whose Action or NotAction covers ``action`` (memoized: a
        policy sees few distinct actions, and big managed policies list many)."""
        found = self._by_action.get(action)
        if found is None:
            found = tuple(s for s in self.statements if s.covers(action))
            if len(self._by_action) >= _ACTION_MEMO_LIMIT:
                self._by_action.clear()
            self._by_action[action] = found
        return found


_ACTION_MEMO_LIMIT = 512


CLOCK_KEYS: tuple[str, ...] = ("aws:CurrentTime", "aws:EpochTime")
"""The condition keys whose values are the clock's reading."""

TIME_KEYS: tuple[str, ...] = (*CLOCK_KEYS, "aws:MultiFactorAuthAge")
"""The condition keys whose values change as time passes: the clock's, and the seconds
since the session's MFA code was verified. A policy that names none of them decides a
request the same way at any time (see :func:`reads_clock`)."""

_CLOCK_KEYS_LOWER = tuple(key.lower() for key in TIME_KEYS)


def _text_of(document: PolicyDocument) -> str:
    """Every string of ``document``, lower-cased: a policy may read a condition key only if
    the key is a substring of this.

    Deliberately coarse, so that it cannot miss a way a policy reads a key: a policy
    reads a key only by naming it, as a Condition key (under any operator or set prefix:
    ``Null``, ``...IfExists``, ``ForAnyValue:``) or as a policy variable ``${key}`` (in
    Resource, NotResource or a condition value), and condition keys and variable names
    are matched by their lower-cased text. Every string of the document is searched
    (Action, Principal and Sid too), so a mention anywhere counts: at worst a policy is
    said to read a key it does not.
    """
    texts: list[str] = [document.version or "", document.id or ""]
    for statement in document.statements:
        texts.append(statement.sid or "")
        for element in (
            statement.action,
            statement.not_action,
            statement.resource,
            statement.not_resource,
        ):
            texts.extend(element or ())
        for principal in (statement.principal, statement.not_principal):
            if principal is not None:
                for kind, values in principal.entries.items():
                    texts.append(kind)
                    texts.extend(values)
        for operator_name, block in statement.condition.items():
            texts.append(operator_name)
            for key, values in block.items():
                texts.append(key)
                texts.extend(values)
    return "\n".join(texts).lower()


def mentions(document: PolicyDocument, key: str) -> bool:
    """Whether ``document`` may read condition key ``key`` (any case), as a Condition key
    or a policy variable, under any operator. A key it does not mention cannot change how
    it decides a request. Coarse by design (:func:`_text_of`): at worst a key is said to
    be read when it is not."""
    return compiled(document).mentions(key.lower())


def reads_clock(document: PolicyDocument) -> bool:
    """Whether ``document`` may read a key of :data:`TIME_KEYS` (``aws:CurrentTime``,
    ``aws:EpochTime``, ``aws:MultiFactorAuthAge``) anywhere: if not, its decisions do not
    depend on the time.
    Computed once per compiled policy."""
    return compiled(document).reads_clock


_CACHE_LIMIT = 4096
_compiled_cache: dict[int, tuple[PolicyDocument, CompiledPolicy]] = {}
_compiled_lock = Lock()


def compiled(document: PolicyDocument) -> CompiledPolicy:
    # Keyed by identity, not equality: hashing a document costs more than evaluating it.
    # The entry keeps the document alive, so its id cannot be reused while cached.
    entry = _compiled_cache.get(id(document))
    if entry is not None and entry[0] is document:
        return entry[1]
    made = CompiledPolicy(document)
    with _compiled_lock:
        if len(_compiled_cache) >= _CACHE_LIMIT:
            del _compiled_cache[next(iter(_compiled_cache))]
        _compiled_cache[id(document)] = (document, made)
    return made


def clear_compiled() -> None:
    """Forget every compiled policy."""
    with _compiled_lock:
        _compiled_cache.clear()
