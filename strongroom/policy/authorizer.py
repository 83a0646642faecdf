"""The authorization step of the pipeline: IAM policy evaluation for every check.

Identity policies, permissions boundaries and tags come from IAM; session policies from
the caller's temporary credentials; resource policies (secret policies, KMS key policies)
from the check. What is read from IAM is cached per principal and revalidated against
IAM's generation counter, so a policy change applies to the very next request on every
worker while an unchanged IAM costs one small read.

Decisions are memoized too: a request that repeats one already decided (same IAM
generation, principal, check and request facts, see :meth:`PolicyAuthorizer.authorize`)
is answered without building its request context or evaluating any policy; so is one
that differs only in condition keys that none of its policies mentions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC
from operator import attrgetter
from typing import ClassVar, Protocol

from strongroom.clock import Clock
from strongroom.policy.compiled import CLOCK_KEYS, mentions, reads_clock
from strongroom.policy.document import PolicyDocument
from strongroom.policy.evaluate import (
    Decision,
    PolicySet,
    RequestContext,
    access_denied_message,
    evaluate,
    load_policy,
)
from strongroom.policy.global_keys import global_keys, multi_factor_auth_age
from strongroom.protocol.errors import ServiceError
from strongroom.types import Check, Identities, Principal, PrincipalPolicies

_GONE = Decision(False, "implicit_deny", "identity")
"""The decision for a principal whose IAM user or role no longer exists."""

_ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'

DECISION_LIMIT = 65_536
"""How many decisions a :class:`PolicyAuthorizer` remembers (the oldest go first): about one
per secret a principal reads, so a worker serving tens of thousands of different secrets
still answers from memory."""
IDENTITY_LIMIT = 4096
"""How many principals' compiled policies a :class:`PolicyAuthorizer` keeps between two
changes to IAM (the oldest go first)."""
MENTIONED_LIMIT = 4096
"""How many policy sets a :class:`PolicyAuthorizer` remembers the mentioned keys of."""


class CallFacts:
    """What the authorizer knows of the request itself, for global condition keys. One per
    request: it also remembers IAM's generation, so the several checks of one request
    (the secret, then its KMS key) cost one read of it, and the request's global keys and
    time (read once, and only if a policy asks for it).

    A plain class with slots, not a dataclass: one is made per request, and a frozen
    dataclass sets each field through ``object.__setattr__``. Two are equal when their
    :attr:`COMPARED` fields are (the request's facts, not its memos)."""

    __slots__ = ("clock", "generation", "keys", "region", "secure_transport", "source_ip")
    COMPARED: ClassVar[tuple[str, ...]] = ("source_ip", "region", "secure_transport")
    """The facts of the request: part of every decision's memo key."""
    MEMOS: ClassVar[tuple[str, ...]] = ("generation", "keys", "clock")
    """What is read once per request and kept for its other checks."""

    def __init__(self, source_ip: str, region: str, secure_transport: bool = False) -> None:
        self.source_ip = source_ip
        self.region = region
        self.secure_transport = secure_transport
        self.generation: int | None = None  # IAM's, read by the request's first check
        self.keys: dict[str, dict[str, tuple[str, ...]]] = {}
        self.clock: dict[str, tuple[str, ...]] = {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallFacts):
            return NotImplemented
        return _facts_fields(self) == _facts_fields(other)

    def __hash__(self) -> int:
        return hash(_facts_fields(self))

    def __repr__(self) -> str:
        return (
            f"CallFacts(source_ip={self.source_ip!r}, region={self.region!r}, "
            f"secure_transport={self.secure_transport!r})"
        )


class Authorizer(Protocol):
    def authorize(self, principal: Principal, check: Check, facts: CallFacts) -> None:
        """Raise AccessDeniedException unless ``principal`` may do ``check``."""


@dataclass(frozen=True)
class _Identity:
    documents: tuple[PolicyDocument, ...]
    names: tuple[str, ...]
    boundary: PolicyDocument | None
    tags: Mapping[str, str]
    user_id: str
    user_name: str | None
    reads_clock: bool = False  # whether a document or the boundary reads aws:CurrentTime...
    organization_id: str | None = None  # of the principal's account (aws:PrincipalOrgID)


# The parts of a decision's key (see PolicyAuthorizer.authorize). Every field of Check but
# its context (a dict: made a tuple of its items), and every field of CallFacts that its
# equality compares (not its per-request memos).
_check_fields = attrgetter(*(f.name for f in fields(Check) if f.name != "context"))
_facts_fields = attrgetter(*CallFacts.COMPARED)

_Stamp = tuple[tuple[str, ...], ...]
"""The values of the clock keys a decision was made with."""
_Memo = tuple[_Stamp | None, str | None]
"""A remembered decision: the clock stamp it holds for (None: whatever the time, as no
policy involved reads the clock), and the AccessDenied message (None: allowed)."""


class PolicyAuthorizer:
    def __init__(
        self, identities: Identities, clock: Clock, *, decision_limit: int = DECISION_LIMIT
    ) -> None:
        self._identities = identities
        self._clock = clock
        # Compiled identities by (identity ARN, the unique id the principal is bound to):
        # two principals of one ARN but of different entities (a role session of a
        # deleted role and one of the role created again) never share one.
        self._cache: dict[tuple[str, str | None], _Identity | None] = {}
        self._decisions: OrderedDict[object, _Memo] = OrderedDict()
        # (IAM generation, principal, resource policy, key-policy mode, condition keys) ->
        # the condition keys that a policy of that set mentions.
        self._mentioned: dict[tuple[object, ...], tuple[str, ...]] = {}
        self._decision_limit = decision_limit
        self._generation: int | None = None
        self._lock = threading.Lock()

    def authorize(self, principal: Principal, check: Check, facts: CallFacts) -> None:
        """Decide ``check``, from the memo when the same question was decided before.

        A decision is a function of: IAM's state for the principal (its identity-based
        policies, boundary, tags and ids, and its account's organization, which IAM's
        generation stands for), the whole :class:`Principal` (ARN, account, kind, identity
        ARN, session policies and tags, source identity...), the whole :class:`Check`
        (action, resource, its account, the resource or key policy text, key-policy mode,
        condition keys), the request facts the global condition keys come from (source
        IP, region, secure transport) and the time. The memo's key holds all of them but
        two: the time, compared only for decisions in which some policy reads a key that
        moves with it (``aws:CurrentTime``, ``aws:EpochTime``, ``aws:MultiFactorAuthAge``),
        as the others hold at any time; and the
        check's condition keys that no policy involved mentions
        (:func:`~strongroom.policy.compiled.mentions`), which cannot change the answer.
        A KMS check carries the secret's ARN and version id as encryption context, which
        key policies rarely read: then one decision serves every secret under the key, and
        the memo holds about one decision per secret read, not two.
        Inside a transaction that wrote IAM (``reads_uncommitted``) nothing is memoized
        or looked up, and the memo is dropped whenever IAM's generation moves.
        """
        if self._identities.reads_uncommitted():
            # Inside a transaction that changed IAM and may still roll back: what is read
            # or decided here must not be remembered past it.
            identity = self._read_identity(principal)
            policies = _policy_set(principal, check, identity)
            self._deny(self._decide(principal, check, facts, identity, policies)[1])
            return
        # IAM's generation, read once per request (its checks share it).
        generation = facts.generation
        if generation is None:
            generation = facts.generation = self._identities.generation()
        key: tuple[object, ...] | None = (
            generation,
            principal,
            _check_fields(check),
            self._relevant_context(principal, check, generation),
            _facts_fields(facts),
        )
        if generation != self._generation:
            with self._lock:
                if generation != self._generation:
                    self._renew(generation)
        memo: _Memo | None = None
        try:
            # No lock for the lookup: one dict lookup is atomic, and the key holds the
            # generation, so it never finds what was decided under another one (an entry
            # is remembered only while its generation is current, see _remember).
            memo = self._decisions.get(key)
        except TypeError:  # a condition key's value is not hashable: decided afresh
            key = None
        # A remembered decision answers now if it reads no clock, or the clock keys have the
        # values it was made with.
        if memo is not None and (memo[0] is None or memo[0] == self._stamp(facts)):
            if memo[1] is not None:
                raise ServiceError("AccessDeniedException", memo[1])
            return
        identity = self._identity(principal, generation)
        policies = _policy_set(principal, check, identity)
        decided = self._decide(principal, check, facts, identity, policies)
        if key is not None:
            self._remember(generation, key, decided)
        self._deny(decided[1])

    def _relevant_context(
        self, principal: Principal, check: Check, generation: int
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The items of ``check.context`` that some policy deciding the check mentions.
        Which of a set of keys the policies mention is remembered per policy set (the
        principal's policies, the check's resource or key policy), so this reads no policy
        once a set's keys are known."""
        context = check.context
        if not context:
            return ()
        scope = (generation, principal, check.resource_policy, check.key_policy, tuple(context))
        mentioned = self._mentioned.get(scope)
        if mentioned is None:
            documents = _documents(
                _policy_set(principal, check, self._identity(principal, generation))
            )
            mentioned = tuple(name for name in context if any(mentions(d, name) for d in documents))
            with self._lock:
                if generation == self._generation:
                    if len(self._mentioned) >= MENTIONED_LIMIT:
                        self._mentioned.clear()  # many policy sets: each is quick to redo
                    self._mentioned[scope] = mentioned
        # The mentioned items, paired without a Python-level loop (a check per request).
        return (
            tuple(zip(mentioned, map(context.__getitem__, mentioned), strict=True))
            if mentioned
            else ()
        )

    def _remember(self, generation: int, key: tuple[object, ...], decided: _Memo) -> None:
        if self._decision_limit <= 0:
            return
        with self._lock:
            # Not for a generation that has been superseded meanwhile.
            if generation == self._generation:
                decisions = self._decisions
                if key not in decisions and len(decisions) >= self._decision_limit:
                    decisions.popitem(last=False)
                decisions[key] = decided

    @staticmethod
    def _deny(message: str | None) -> None:
        if message is not None:
            raise ServiceError("AccessDeniedException", message)

    def _decide(
        self,
        principal: Principal,
        check: Check,
        facts: CallFacts,
        identity: _Identity | None,
        policies: PolicySet,
    ) -> _Memo:
        """Evaluate ``policies`` (:func:`_policy_set`): the clock stamp the decision
        depends on (None if it does not) and the AccessDenied message if denied."""
        resource, session_policies = policies.resource, policies.session_policies
        keys = self._request_keys(principal, identity, facts)
        stamp: _Stamp | None = None
        if (
            (identity is not None and identity.reads_clock)
            or (resource is not None and reads_clock(resource))
            or any(reads_clock(document) for document in session_policies)
        ):
            # Only then: a clock key that no policy names cannot change the decision.
            # aws:MultiFactorAuthAge is read from the same clock reading: the stamp (the
            # clock keys) and the memo's key (the principal, with its MFA time) fix it.
            now = self._clock_keys(facts)
            stamp = tuple(now.values())
            age = multi_factor_auth_age(principal, int(now["aws:EpochTime"][0]))
            context = {**keys, **now, **age, **check.context}
        else:
            context = {**keys, **check.context}
        request = RequestContext(
            principal_arn=principal.arn,
            principal_account=principal.account_id,
            action=check.action,
            resource=check.resource,
            resource_account=check.resource_account,
            context=context,
        )
        if identity is None and principal.kind != "root":
            # The user or role behind these credentials is gone: it may do nothing, not
            # even what a resource policy grants everyone. Fails closed. Authentication
            # already refuses a session whose user or role is gone (iam/credentials.py
            # ``_bound``); this holds for any principal that reaches here all the same.
            return stamp, access_denied_message(request, _GONE)
        decision = evaluate(request, policies, key_policy=check.key_policy, bounded=check.bounded)
        if decision.allowed:
            return stamp, None
        return stamp, access_denied_message(request, decision)

    def _renew(self, generation: int) -> None:
        """IAM has changed (under ``self._lock``): forget what was read or decided."""
        self._cache.clear()
        self._decisions.clear()
        self._mentioned.clear()
        self._generation = generation

    def _identity(self, principal: Principal, generation: int) -> _Identity | None:
        key = (principal.identity_arn, _entity_id(principal))
        with self._lock:
            if generation != self._generation:
                self._renew(generation)
            if key in self._cache:
                return self._cache[key]
        identity = self._read_identity(principal)
        with self._lock:
            if generation == self._generation:
                if len(self._cache) >= IDENTITY_LIMIT:
                    # Many principals calling between two IAM changes: the oldest goes.
                    del self._cache[next(iter(self._cache))]
                self._cache[key] = identity
        return identity

    def _read_identity(self, principal: Principal) -> _Identity | None:
        """The principal's policies, compiled, and its account's organization."""
        organization = self._identities.organization_id(principal.account_id)
        if principal.kind == "root" or principal.identity_arn.endswith(":root"):
            # The account root, or a federated user it made (GetFederationToken).
            root = load_policy(_ALLOW_ALL, "identity")
            return _Identity(
                (root,),
                ("root",),
                None,
                {},
                principal.account_id,
                None,
                reads_clock(root),
                organization,
            )
        found = self._identities.principal_policies(principal.identity_arn)
        bound = _entity_id(principal)
        if found is not None and bound is not None and bound != found.user_id:
            # A session of a role (or a user) that was deleted: the one of that name now
            # is another (AWS binds a session to its role's or user's unique id).
            found = None
        return _compile(found, organization) if found is not None else None

    def _request_keys(
        self, principal: Principal, identity: _Identity | None, facts: CallFacts
    ) -> dict[str, tuple[str, ...]]:
        """The global condition keys but the clock's, once per request (its checks share
        them)."""
        known = facts.keys.get(principal.arn)
        if known is None:
            known = facts.keys[principal.arn] = self._global_keys(principal, identity, facts)
        return known

    def _clock_keys(self, facts: CallFacts) -> dict[str, tuple[str, ...]]:
        """``aws:CurrentTime`` and ``aws:EpochTime`` (:data:`CLOCK_KEYS`): the clock is read
        once per request, and only when a policy reads one of them."""
        known = facts.clock
        if not known:
            now = self._clock.now().astimezone(UTC)
            current = (now.strftime("%Y-%m-%dT%H:%M:%SZ"),)
            epoch = (str(int(now.timestamp())),)
            known.update(zip(CLOCK_KEYS, (current, epoch), strict=True))
        return known

    def _stamp(self, facts: CallFacts) -> _Stamp:
        return tuple(self._clock_keys(facts).values())

    def _global_keys(
        self, principal: Principal, identity: _Identity | None, facts: CallFacts
    ) -> dict[str, tuple[str, ...]]:
        user_id = None
        if principal.kind == "federated-user":
            user_id = principal.unique_id  # <account>:<name>
        elif identity is not None:
            user_id = (
                f"{identity.user_id}:{principal.arn.rsplit('/', 1)[-1]}"
                if principal.kind == "assumed-role"
                else identity.user_id
            )
        return global_keys(
            principal,
            user_id=user_id,
            user_name=identity.user_name if identity is not None else None,
            tags=identity.tags if identity is not None else {},
            organization_id=identity.organization_id if identity is not None else None,
            source_ip=facts.source_ip,
            region=facts.region,
            secure_transport=facts.secure_transport,
        )


def _entity_id(principal: Principal) -> str | None:
    """The unique id of the IAM user or role ``principal`` acts as, when it is bound to one
    (a user's AIDA..., a role session's AROA...); None for root and federated users."""
    if principal.unique_id is None or principal.kind not in ("user", "assumed-role"):
        return None
    return principal.unique_id.split(":", 1)[0]


def _policy_set(principal: Principal, check: Check, identity: _Identity | None) -> PolicySet:
    """The policies that decide ``check`` for ``principal``: its identity policies and
    boundary (``identity``), its session policies, the check's resource or key policy."""
    return PolicySet(
        identity=identity.documents if identity else (),
        identity_names=identity.names if identity else (),
        resource=load_policy(check.resource_policy, "key" if check.key_policy else "resource")
        if check.resource_policy
        else None,
        permissions_boundary=identity.boundary if identity else None,
        session_policies=tuple(
            load_policy(text, "identity") for text in principal.session_policies
        ),
    )


def _documents(policies: PolicySet) -> list[PolicyDocument]:
    """Every document of ``policies``."""
    documents = [*policies.identity, *policies.session_policies]
    extra = (policies.permissions_boundary, policies.resource)
    return documents + [document for document in extra if document is not None]


def _compile(found: PrincipalPolicies, organization_id: str | None = None) -> _Identity:
    documents = tuple(load_policy(text, "identity") for _, text in found.identity)
    boundary = (
        load_policy(found.permissions_boundary, "identity") if found.permissions_boundary else None
    )
    return _Identity(
        documents=documents,
        names=tuple(label for label, _ in found.identity),
        boundary=boundary,
        tags=found.tags,
        user_id=found.user_id,
        user_name=found.user_name,
        reads_clock=any(reads_clock(document) for document in documents)
        or (boundary is not None and reads_clock(boundary)),
        organization_id=organization_id,
    )
