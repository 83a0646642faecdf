"""The types every layer shares: who calls, what one authorization question is, what the
authorizer reads about an identity, and how a served AWS service is described.

This module sits at the bottom of the layering (docs/architecture.md): it imports only the
standard library, botocore's model class and :mod:`strongroom.models`, so the protocol,
policy, audit and domain packages can all speak of a caller or a check without importing
each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, Literal, NamedTuple, Protocol

from botocore.model import ServiceModel

from strongroom.models import service_model

# --- who calls ------------------------------------------------------------------------------

PrincipalKind = Literal["user", "assumed-role", "federated-user", "root"]


def admin_arn(account_id: str) -> str:
    """The ARN of the user ``init`` creates in every account."""
    return f"arn:aws:iam::{account_id}:user/admin"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller.

    ``arn`` is who the caller is (a user, a role session
    ``arn:aws:sts::<acct>:assumed-role/<role>/<session>``, a federated user
    ``arn:aws:sts::<acct>:federated-user/<name>``, or the account root);
    ``identity_arn`` is the IAM entity whose policies apply (the user, the role of a
    session, the user that called GetFederationToken). A temporary session carries the
    session policies that further limit it.
    """

    account_id: str
    arn: str
    access_key_id: str
    kind: PrincipalKind = "user"
    identity_arn: str = ""
    session_policies: tuple[str, ...] = ()  # policy documents (text)
    session_tags: tuple[tuple[str, str], ...] = ()
    source_identity: str | None = None
    session_token: bool = False  # signed with temporary credentials
    # IAM's unique id, as CloudTrail's userIdentity.principalId: AIDA... for a user,
    # AROA...:<session name> for a role session, <account>:<name> for a federated user
    # (None when not known).
    unique_id: str | None = None
    # For temporary credentials: when they were issued (aws:TokenIssueTime) and when the
    # MFA code they were obtained with was verified (aws:MultiFactorAuthAge; None: no MFA).
    token_issued_ms: int | None = None
    mfa_authenticated_ms: int | None = None
    # The hash of every field above: a principal is a part of the decision memo's keys,
    # hashed a few times a request, and made once per access key the row cache loads.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.identity_arn:
            object.__setattr__(self, "identity_arn", self.arn)
        fields_hash = hash(tuple(getattr(self, f.name) for f in fields(self) if f.compare))
        object.__setattr__(self, "_hash", fields_hash)

    def __hash__(self) -> int:
        return self._hash

    @property
    def is_account_admin(self) -> bool:
        return self.arn == admin_arn(self.account_id) or self.arn.endswith(":root")


# --- what is asked of the authorizer --------------------------------------------------------

ContextValues = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, init=False)
class Check:
    """One authorization question: an action on a resource, with the resource's own policy
    (if any) and the request's condition keys. Services build these; the authorizer answers
    them."""

    action: str  # "secretsmanager:GetSecretValue"
    resource: str = "*"  # the resource's ARN, or "*" for actions without one
    resource_account: str | None = None
    resource_policy: str | None = None  # a secret's resource policy, a KMS key policy
    key_policy: bool = False  # KMS semantics: nothing is allowed unless the key policy says so
    context: ContextValues = field(default_factory=dict)
    # A role trust policy: even a grant naming the caller itself is limited by the caller's
    # permissions boundary and session policies (AWS requires them to allow sts:AssumeRole).
    bounded: bool = False

    def __init__(
        self,
        action: str,
        resource: str = "*",
        resource_account: str | None = None,
        resource_policy: str | None = None,
        key_policy: bool = False,
        context: ContextValues | None = None,
        bounded: bool = False,
    ) -> None:
        # The dataclass's own __init__, in one step: a frozen dataclass's sets each field
        # through object.__setattr__, and every request makes two checks (the secret, its
        # KMS key). Still frozen: assigning a field raises. ``context`` None: a new {}.
        self.__dict__.update(
            action=action,
            resource=resource,
            resource_account=resource_account,
            resource_policy=resource_policy,
            key_policy=key_policy,
            context={} if context is None else context,
            bounded=bounded,
        )


# An operation asks its caller's ``authorize`` about actions it discovers while running
# (each secret of a batch, dependent actions, a KMS key used on the caller's behalf).
Authorize = Callable[[Check], None]


def allow_everything(_check: Check) -> None:
    """For domain calls made by the server itself (background jobs, tests)."""


class Caller(NamedTuple):
    """Who an operation runs for: the one caller type every service takes.

    The pipeline builds one per request (immutable: a NamedTuple, made in a fraction of a
    frozen dataclass's time). A call the server makes itself (a background job,
    one domain using another on the account's behalf) gives only the account and region:
    it acts as the account, and ``authorize`` allows everything."""

    account_id: str
    region: str
    principal_arn: str = ""  # "" for the account itself
    # Asks the pipeline's authorizer about actions found while the operation runs.
    authorize: Authorize = allow_everything
    # The authenticated caller in full (STS answers who it is and what it may become).
    principal: Principal | None = None
    # Where the request came from (aws:SourceIp); "" for a call made inside the server.
    source_ip: str = ""

    @property
    def arn(self) -> str:
        """Who acts, as AWS names it in messages: the principal, else the account root."""
        return self.principal_arn or f"arn:aws:iam::{self.account_id}:root"


# --- what the authorizer reads about identities ---------------------------------------------


@dataclass(frozen=True)
class PrincipalPolicies:
    """What the authorizer needs to evaluate a request by a user or a role (session).

    ``identity`` holds (label, policy document) for every identity-based policy in effect:
    inline policies, the default version of each attached managed policy and, for a user,
    those of its groups. ``user_id`` is the UserId or RoleId (``aws:userid`` of a role
    session is ``RoleId:session-name``); ``user_name`` is None for a role."""

    identity: list[tuple[str, str]]
    permissions_boundary: str | None
    tags: dict[str, str]
    user_id: str
    user_name: str | None


class Identities(Protocol):
    """The authorizer's view of IAM (served by :class:`strongroom.iam.service.IdentityService`)."""

    def generation(self) -> int:
        """A counter that moves on every change to IAM, so cached policies are revalidated."""
        ...

    def reads_uncommitted(self) -> bool:
        """Whether IAM reads here may see IAM writes that could still roll back."""
        ...

    def principal_policies(self, principal_arn: str) -> PrincipalPolicies | None: ...

    def organization_id(self, account_id: str) -> str | None: ...


# --- principals in resource policies, bound by unique id -------------------------------------


class UnknownPrincipal(ValueError):
    """A policy names an IAM user or role that does not exist (AWS refuses the policy:
    each service words it in its own error)."""

    def __init__(self, arn: str) -> None:
        super().__init__(arn)
        self.arn = arn


class PrincipalIds(Protocol):
    """How a resource policy's IAM user and role principals are bound to the entities'
    unique ids (served by :class:`strongroom.iam.principal_ids.IamPrincipalIds`; the text
    rewriting is :mod:`strongroom.policy.principal_ids`)."""

    def bind(self, policy: str) -> str:
        """The policy to store: each user or role ARN named as an ``AWS`` principal
        replaced by the entity's unique id. Raises :class:`UnknownPrincipal` for one that
        does not exist."""
        ...

    def show(self, policy: str) -> str:
        """A stored policy as the client sees it: each unique id of an entity that still
        exists shown as its current ARN; a deleted entity's id stays (as on AWS)."""
        ...

    def bind_principal(self, value: str) -> str:
        """One principal as :meth:`bind` stores it (a KMS grant's grantee or retiring
        principal): a user or role ARN -> the entity's id, anything else as it is. Raises
        :class:`UnknownPrincipal` for a user or role that does not exist."""
        ...

    def current_arns(self, values: Iterable[str]) -> Mapping[str, str]:
        """The current ARN of each of ``values`` that is the id of an existing user or
        role (what :meth:`show` shows it as); other values are left out."""
        ...


class UnboundPrincipals:
    """For a service used without IAM (unit tests of one domain): policies are kept and
    shown as they are written."""

    def bind(self, policy: str) -> str:
        return policy

    def show(self, policy: str) -> str:
        return policy

    def bind_principal(self, value: str) -> str:
        return value

    def current_arns(self, values: Iterable[str]) -> Mapping[str, str]:
        return {}


# --- the root barrier, as the layers below keys see it ---------------------------------------


class Sealer(Protocol):
    """Seals values under the root key (:class:`strongroom.keys.envelope.Barrier`): what a
    lower layer that keeps a root-sealed value (the audit signing key) is handed."""

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes: ...

    def open(self, sealed: bytes, associated_data: bytes) -> bytes: ...


# --- functions, as Secrets Manager's rotation sees them ----------------------------------------


@dataclass(frozen=True)
class Invocation:
    """What one function invocation returned, as Lambda's Invoke answers it."""

    status_code: int  # 200 for RequestResponse, 202 for Event
    payload: bytes  # the function's JSON result, or Lambda's error document
    function_error: str | None = None  # "Unhandled" when it raised, timed out or ran out of memory
    log_tail: str = ""  # the end of the invocation's log, as LogType=Tail returns it
    request_id: str = ""


class Functions(Protocol):
    """The Lambda service as a service that invokes functions on a customer's behalf sees it
    (served by :mod:`strongroom.functions`; Secrets Manager's rotation is the first user).
    A service principal may invoke a function only where the function's resource policy
    (``AddPermission``) allows it, as on AWS."""

    def may_invoke(
        self, function_arn: str, *, service_principal: str, source_account: str, source_arn: str
    ) -> bool:
        """Whether the function exists and its policy lets ``service_principal`` invoke it
        for ``source_arn`` (``AWS:SourceAccount``/``AWS:SourceArn`` conditions)."""
        ...

    async def invoke(
        self,
        function_arn: str,
        payload: bytes,
        *,
        service_principal: str,
        source_account: str,
        source_arn: str,
    ) -> Invocation:
        """Run the function synchronously (RequestResponse) and return its result; a
        function that fails answers with ``function_error`` set, never by raising."""
        ...


# --- how a served service is described -------------------------------------------------------

# An operation that waits on something outside the store (Lambda's Invoke runs a process)
# is a coroutine function: the pipeline awaits it outside any transaction, and it writes
# what it must in its own.
Handler = Callable[
    [Any, Mapping[str, Any]], Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None
]
# (caller, operation, params) -> what the authorizer must allow before the operation runs.
CheckBuilder = Callable[[Any, str, Mapping[str, Any]], list[Check]]
# (caller, the check refused, the refusal) -> the error to raise instead, when a service
# words its refusals itself (STS names no reason); anything but an AccessDenied is
# handed back as it is.
Refusal = Callable[[Any, Check, Exception], Exception]
# (operation, the model's validation error) -> the error to give instead, when a service
# answers invalid input with errors of its own (CloudTrail's InvalidMaxResultsException).
InputRefusal = Callable[[str, Any], Any]
# (params, output or None) -> the ARNs an event is about, for the audit record.
ResourceFinder = Callable[[Mapping[str, Any], Mapping[str, Any] | None], list[str]]


def _no_resources(_params: Mapping[str, Any], _output: Mapping[str, Any] | None) -> list[str]:
    return []


@dataclass(frozen=True)
class ServiceSpec:
    """What the pipeline needs to know about one AWS service we serve."""

    name: str  # botocore's service name and the IAM action prefix, e.g. "secretsmanager"
    handlers: Mapping[str, Handler]  # operation name -> handler(caller, params)
    resource_type: str = ""  # CloudTrail's type for resources, e.g. AWS::SecretsManager::Secret
    resources_of: ResourceFinder = _no_resources
    checks: CheckBuilder | None = None  # None: the action on "*"
    refused: Refusal | None = None  # None: the authorizer's refusal as it is
    invalid_input: InputRefusal | None = None  # None: the model's validation error as it is

    def checks_for(self, caller: Any, operation: str, params: Mapping[str, Any]) -> list[Check]:
        if self.checks is None:
            return [Check(f"{self.name}:{operation}")]
        return self.checks(caller, operation, params)

    def authorize(
        self, caller: Any, operation: str, params: Mapping[str, Any], authorize: Authorize
    ) -> None:
        """Ask ``authorize`` about every check of the operation; the first refusal is
        raised, in the service's words when it has its own."""
        for check in self.checks_for(caller, operation, params):
            if self.refused is None:
                authorize(check)
                continue
            try:
                authorize(check)
            except Exception as denied:
                raise self.refused(caller, check, denied) from None

    # Read on every request (the model, the signing name, the event source): each worked
    # out once per spec, then an attribute read.
    @cached_property
    def model(self) -> ServiceModel:
        return service_model(self.name)

    @cached_property
    def target_prefix(self) -> str:
        return str(self.model.metadata.get("targetPrefix", ""))

    @cached_property
    def signing_name(self) -> str:
        return str(self.model.metadata.get("signingName") or self.model.endpoint_prefix)

    @cached_property
    def protocol(self) -> str:
        return str(self.model.metadata["protocol"])

    @cached_property
    def event_source(self) -> str:
        return f"{self.model.endpoint_prefix}.amazonaws.com"
