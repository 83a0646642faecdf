# long module: the stages of the one request path, read top to bottom as the pipeline runs them
"""The stages of the one request path every operation of every service takes:

protocol (parse by model) -> authenticate (SigV4) -> authorize -> operation -> audit
-> serialize.

Each stage takes the request's exchange (what is known about it so far; the audit record
is built from it), which is immutable, and hands the next stage a new one with what it
learned; a stage that refuses a request hands back the exchange as far as it got, with
the error. Handlers only see a caller and parsed members; nothing here knows a single
operation. How requests are served (on the event loop, in write
batches, each in its unit of work) is :mod:`strongroom.server.pipeline`."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from botocore.model import OperationModel

from strongroom.audit.corrections import COMMIT_FAILED, CORRECTION
from strongroom.audit.derived import Derived, OnBehalf, collecting
from strongroom.audit.events import (
    RequestFacts,
    build_event,
    build_on_behalf_event,
    cross_account_copies,
    principal_identity,
    unverified_identity,
)
from strongroom.audit.sink import AuditSink, Event
from strongroom.audit.templates import OnBehalfRecords, RequestRecords
from strongroom.clock import Clock, signing_time
from strongroom.iam.credentials import CredentialStore, Principal
from strongroom.ids import unique_id
from strongroom.policy.authorizer import Authorizer, CallFacts
from strongroom.policy.checks import Check
from strongroom.protocol import sigv4
from strongroom.protocol.errors import (
    ServiceError,
    expired_token,
    internal_error,
    invalid_signature,
    unrecognized_client,
)
from strongroom.protocol.limits import BodyLimits
from strongroom.protocol.service import Handler, ServiceSpec
from strongroom.protocol.wire import (
    STATUS_HEADER,
    JsonWire,
    QueryWire,
    RestJsonWire,
    Wire,
    looks_like_query,
    query_action,
    wire_code,
    wire_for,
)
from strongroom.server.operator_actions import (
    EVENT_SOURCE,
    SIGNING_NAME,
    OperatorAction,
    deployment_arn,
)
from strongroom.store.engine import Store
from strongroom.types import Caller

log = logging.getLogger("strongroom.request")


class Response(NamedTuple):
    """What a request is answered (one a request: a NamedTuple, cheaper to make than a
    frozen dataclass)."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Exchange(NamedTuple):
    """What is known about a request so far; the audit event is built from it. Immutable:
    a stage returns a new one (a NamedTuple: made in a fraction of a frozen dataclass's
    time, which matters a few times a request)."""

    facts: RequestFacts
    event_id: str  # the audit event's: a correction reuses it
    service: ServiceSpec | None = None
    wire: Wire | None = None
    operation_name: str = "Unknown"
    operation: OperationModel | None = None
    principal: Principal | None = None
    claimed_key: str | None = None  # the access key a request was signed with, verified or not
    params: Mapping[str, Any] | None = None
    output: Mapping[str, Any] | None = None
    event_source: str | None = None  # an operator request's; else the service's
    # The resources the request was authorized on (a refused one's too), for its record.
    checked: tuple[str, ...] = ()
    # What the operation did besides (audit/derived.py): recorded in the same batch.
    derived: tuple[Derived, ...] = ()

    def with_output(
        self, output: Mapping[str, Any] | None, derived: tuple[Derived, ...] = ()
    ) -> _Exchange:
        # What _replace(output=..., derived=...) does, in a fraction of its time (once a
        # request): output and derived are the last fields but event_source and checked.
        return _whole(
            _Exchange, (*self[:_OUTPUT], output, self.event_source, self.checked, derived)
        )


# Makes an _Exchange from all of its fields at once, without the generated __new__'s frame:
# the way through a request makes two, in this order of the fields. (So for the other
# NamedTuples a request makes: a frame costs more than the tuple, about 1.8k instructions.)
_whole = tuple.__new__
_OUTPUT = _Exchange._fields.index("output")
# An exchange's fields after the first two (facts, event_id), as a new one has them.
_FRESH = _Exchange(cast(RequestFacts, None), "")[2:]
assert _Exchange._fields == (
    "facts",
    "event_id",
    "service",
    "wire",
    "operation_name",
    "operation",
    "principal",
    "claimed_key",
    "params",
    "output",
    "event_source",
    "checked",
    "derived",
), "_authorized_call and with_output make an _Exchange field by field: keep them in step"
assert Caller._fields == (
    "account_id",
    "region",
    "principal_arn",
    "authorize",
    "principal",
    "source_ip",
), "_authorized makes a Caller field by field: keep them in step"
assert RequestFacts._fields == ("request_id", "time", "source_ip", "user_agent", "region"), (
    "_exchange and _with_region make RequestFacts field by field: keep them in step"
)
assert Response._fields == ("status", "headers", "body"), "_success makes a Response whole"


class _Refused(Exception):
    """A stage refused the request: the exchange as far as it got, and the error."""

    def __init__(self, exchange: _Exchange, error: ServiceError) -> None:
        super().__init__(error.code)
        self.exchange = exchange
        self.error = error


@dataclass(frozen=True)
class SignedIn:
    """A request whose principal was authenticated before it reached the pipeline (a web
    console session): the stages skip SigV4 and nothing else. ``service`` names the service
    (the console's requests carry no credential scope to route a Query request by) and
    ``region`` stands where the credential scope's would."""

    principal: Principal
    service: str
    region: str


class _Call(NamedTuple):
    """An authenticated, parsed and authorized request, ready for its operation."""

    handler: Handler
    caller: Caller

    @property
    def awaits(self) -> bool:
        """Whether the operation is a coroutine, served outside any transaction."""
        return inspect.iscoroutinefunction(self.handler)


assert _Call._fields == ("handler", "caller"), "_authorized makes a _Call whole"


_Outcome = tuple[dict[str, str], bytes] | ServiceError  # the serialized answer, or the error
_Work = Callable[[], tuple[_Exchange, _Outcome]]


def _known(
    exchange: _Exchange,
    service: ServiceSpec,
    wire: Wire,
    operation_name: str,
    facts: RequestFacts | None = None,
    claimed_key: str | None = None,
    principal: Principal | None = None,
    operation: OperationModel | None = None,
) -> _Exchange:
    """The exchange as far as a refused request got (the way through makes it whole)."""
    return exchange._replace(
        service=service,
        wire=wire,
        operation_name=operation_name,
        facts=facts or exchange.facts,
        claimed_key=claimed_key,
        principal=principal,
        operation=operation,
    )


def _with_derived(exchange: _Exchange, derived: list[Derived]) -> _Exchange:
    """A failed operation's exchange, with what it did on the caller's behalf before it
    failed (recorded all the same: those calls happened)."""
    return exchange._replace(derived=tuple(derived)) if derived else exchange


async def _awaited(pending: Any) -> Any:
    return await pending


def _error_of(outcome: object) -> ServiceError | None:
    return outcome if isinstance(outcome, ServiceError) else None


def _with_region(facts: RequestFacts, region: str) -> RequestFacts:
    return _whole(RequestFacts, (*facts[:4], region))  # every field but the last, and region


class Stages:
    def __init__(
        self,
        services: Sequence[ServiceSpec],
        store: Store,
        credentials: CredentialStore,
        authorizer: Authorizer,
        audit: AuditSink,
        clock: Clock,
    ) -> None:
        self._by_prefix = {spec.target_prefix: spec for spec in services if spec.protocol == "json"}
        self._by_signing_name = {
            spec.signing_name: spec for spec in services if spec.protocol == "query"
        }
        self._wires = {spec.name: wire_for(spec.model) for spec in services}
        self._rest = [
            (spec, wire)
            for spec in services
            if isinstance(wire := self._wires[spec.name], RestJsonWire)
        ]
        self.services = tuple(services)
        self.body_limits = BodyLimits(spec.name for spec in services)
        self._store = store
        self._credentials = credentials
        self._authorizer = authorizer
        self._audit = audit
        self._clock = clock
        self._signing_keys = sigv4.SigningKeyCache()
        self._on_behalf = OnBehalfRecords()
        self._requests = RequestRecords()

    def refuse_unread(self, request: sigv4.HttpRequest, error: ServiceError) -> Response:
        """Answer a request refused before its body was read (too large): in its
        protocol's error shape, closing the connection so the rest is never read. Not
        audited: like malformed HTTP, it never reached authentication, and recording
        each would let anyone fill the audit log without a credential."""
        exchange, headers = self._exchange(request, "")
        if "x-amz-target" not in headers and looks_like_query(request, headers):
            exchange = exchange._replace(wire=QueryWire(None))
        response = self._error_response(exchange, error)
        return Response(response.status, {**response.headers, "Connection": "close"}, response.body)

    def _execute(
        self, request: sigv4.HttpRequest, source_ip: str, signed_in: SignedIn | None = None
    ) -> tuple[_Exchange, _Outcome]:
        """Run the request from the start up to its audit record."""
        exchange, headers = self._exchange(request, source_ip)
        return self._run(exchange, request, headers, signed_in)

    def _run(
        self,
        exchange: _Exchange,
        request: sigv4.HttpRequest,
        headers: dict[str, str],
        signed_in: SignedIn | None = None,
    ) -> tuple[_Exchange, _Outcome]:
        """The answer, or the error to give. One read snapshot serves all of the request's
        reads (credentials, IAM, the secret, its key)."""
        try:
            with self._store.read():
                exchange, prepared = self._prepare(exchange, request, headers, signed_in)
                if isinstance(prepared, ServiceError):
                    return exchange, prepared
                return self._perform(exchange, prepared)
        except Exception:
            log.exception("request %s failed", exchange.facts.request_id)
            return exchange, internal_error()

    def _exchange(
        self, request: sigv4.HttpRequest, source_ip: str
    ) -> tuple[_Exchange, dict[str, str]]:
        headers = {name.lower(): value for name, value in request.headers}
        facts = _whole(
            RequestFacts,
            (unique_id(), self._clock.now(), source_ip, headers.get("user-agent", ""), ""),
        )
        return _whole(_Exchange, (facts, unique_id(), *_FRESH)), headers

    def _prepare(
        self,
        exchange: _Exchange,
        request: sigv4.HttpRequest,
        headers: dict[str, str],
        signed_in: SignedIn | None = None,
    ) -> tuple[_Exchange, _Call | ServiceError]:
        """Authenticate, parse and authorize: the exchange as far as it got, and the call
        to make or the error to give."""
        try:
            with self._store.read():
                if signed_in is not None:
                    return self._signed_in_call(exchange, request, headers, signed_in)
                return self._authorized_call(exchange, request, headers)
        except _Refused as refused:
            return refused.exchange, refused.error
        except Exception:
            log.exception("request %s failed", exchange.facts.request_id)
            return exchange, internal_error()

    def _perform(self, exchange: _Exchange, call: _Call) -> tuple[_Exchange, _Outcome]:
        """Run the operation of a prepared call: the exchange with its output, and its
        serialized answer or its error."""
        derived: list[Derived] = []
        try:
            with self._store.read(), collecting() as derived:
                output = call.handler(call.caller, exchange.params or {})
                # Served blocking (Pipeline.handle). Most outputs are dicts: no ABC check.
                if type(output) is not dict and inspect.isawaitable(output):
                    output = asyncio.run(_awaited(output))
        except ServiceError as raised:
            return _with_derived(exchange, derived), raised
        except Exception:
            log.exception("request %s failed", exchange.facts.request_id)
            return _with_derived(exchange, derived), internal_error()
        return self._serialized(exchange.with_output(output, tuple(derived)))

    async def _perform_async(self, exchange: _Exchange, call: _Call) -> tuple[_Exchange, _Outcome]:
        """Await an operation that is a coroutine (:attr:`_Call.awaits`), outside any
        transaction: the exchange with its output, and its serialized answer or error."""
        derived: list[Derived] = []
        try:
            with collecting() as derived:
                output = call.handler(call.caller, exchange.params or {})
                if inspect.isawaitable(output):
                    output = await output
        except ServiceError as raised:
            return _with_derived(exchange, derived), raised
        except Exception:
            log.exception("request %s failed", exchange.facts.request_id)
            return _with_derived(exchange, derived), internal_error()
        return self._serialized(exchange.with_output(output, tuple(derived)))

    @staticmethod
    def _serialized(exchange: _Exchange) -> tuple[_Exchange, _Outcome]:
        """The exchange with the operation's output, and that output on its wire."""
        wire, operation = exchange.wire, exchange.operation
        assert wire is not None and operation is not None
        try:
            answer = wire.serialize(operation, exchange.output, exchange.facts.request_id)
            return exchange, answer
        except ServiceError as raised:
            return exchange, raised
        except Exception:
            log.exception("request %s failed", exchange.facts.request_id)
            return exchange, internal_error()

    def serves_path(self, path: str) -> bool:
        """Whether ``path`` belongs to a REST service served here (``/2015-03-31/...``)."""
        return any(wire.routes.serves_path(path) for _spec, wire in self._rest)

    def _success(self, exchange: _Exchange, answer: tuple[dict[str, str], bytes]) -> Response:
        response_headers, body = answer
        status = 200
        if STATUS_HEADER in response_headers:
            response_headers = dict(response_headers)
            status = int(response_headers.pop(STATUS_HEADER))
        return _whole(Response, (status, {**self._headers(exchange), **response_headers}, body))

    def _error_response(self, exchange: _Exchange, error: ServiceError) -> Response:
        wire = exchange.wire or JsonWire()
        status, headers, body = wire.error(error, exchange.facts.request_id)
        return Response(status, {**self._headers(exchange), **headers}, body)

    def _audit_commit_failure(self, exchange: _Exchange, failure: ServiceError) -> None:
        """The success already audited did not commit: correct its record and the copies
        other accounts got (same eventIDs, the final outcome; audit/corrections.py), which
        every reader applies."""
        try:
            event = self._event(exchange._replace(output=None), failure)
            event[CORRECTION] = {"reason": COMMIT_FAILED}
            # The copies' ids follow from the event's: the same copies are corrected.
            self._audit.write_many([event, *cross_account_copies(event)])
        except Exception:
            log.exception("audit of commit failure lost for request %s", exchange.facts.request_id)

    def _authorized_call(
        self, exchange: _Exchange, request: sigv4.HttpRequest, headers: dict[str, str]
    ) -> tuple[_Exchange, _Call]:
        """Route, authenticate, parse and authorize; raises :class:`_Refused` with the
        exchange as far as it got. On the way through, the new exchange is made once,
        whole: only a refusal makes the partial ones."""
        service, wire, operation_name = self._route(exchange, request, headers)
        routed = (exchange, service, wire, operation_name)  # what a refusal names
        try:
            credential = sigv4.parse_credential(request)
        except ServiceError as error:
            raise _Refused(_known(*routed), error) from None
        # Known before anything is verified, so a refused request's audit record says
        # which key and region it claimed.
        facts = _with_region(exchange.facts, credential.region)
        try:
            principal, region = self.authenticate(request, service.signing_name, credential)
        except ServiceError as error:
            raise _Refused(_known(*routed, facts, credential.access_key_id), error) from None
        return self._authorized(routed, request, facts, credential.access_key_id, principal, region)

    def _signed_in_call(
        self,
        exchange: _Exchange,
        request: sigv4.HttpRequest,
        headers: dict[str, str],
        signed_in: SignedIn,
    ) -> tuple[_Exchange, _Call]:
        """As :meth:`_authorized_call` for a request authenticated already (a console
        session): routed to the service it names; the one stage skipped is SigV4."""
        try:
            routed = (exchange, *self._route_signed_in(request, headers, signed_in))
        except ServiceError as error:
            raise _Refused(exchange, error) from None
        principal = signed_in.principal
        facts = _with_region(exchange.facts, signed_in.region)
        return self._authorized(
            routed, request, facts, principal.access_key_id, principal, signed_in.region
        )

    def _authorized(
        self,
        routed: tuple[_Exchange, ServiceSpec, Wire, str],
        request: sigv4.HttpRequest,
        facts: RequestFacts,
        claimed_key: str,
        principal: Principal,
        region: str,
    ) -> tuple[_Exchange, _Call]:
        """Parse and authorize an authenticated request."""
        exchange, service, wire, operation_name = routed
        handler = service.handlers.get(operation_name)
        if handler is None:
            # AWS answers an unknown operation with no message; an operation the model has
            # but this server does not serve yet says so, so the caller is not left guessing.
            modeled = operation_name in service.model.operation_names
            message = f"Strongroom does not support {operation_name} yet." if modeled else ""
            unknown = (
                ServiceError("UnknownOperationException", message)
                if service.protocol == "json"
                else ServiceError(
                    "InvalidAction", message or f"Could not find operation {operation_name}"
                )
            )
            known = _known(*routed, facts, claimed_key, principal)
            raise _Refused(known, unknown)
        operation = service.model.operation_model(operation_name)
        try:
            params = wire.parse(operation, request)
        except ServiceError as error:
            if service.invalid_input is not None:
                error = service.invalid_input(operation_name, error)
            known = _known(*routed, facts, claimed_key, principal, operation)
            raise _Refused(known, error) from None
        call_facts = CallFacts(facts.source_ip, region)
        checked: list[str] = []

        def authorize(check: Check) -> None:
            self._authorizer.authorize(principal, check, call_facts)

        def authorize_named(check: Check) -> None:
            # The request's own checks name the resources its record lists, refused or not.
            if check.resource != "*" and "*" not in check.resource:
                checked.append(check.resource)
            self._authorizer.authorize(principal, check, call_facts)

        def whole() -> _Exchange:
            # Made once, after the checks: the resources they named go with it.
            return _whole(
                _Exchange,
                (
                    facts,
                    exchange.event_id,
                    service,
                    wire,
                    operation_name,
                    operation,
                    principal,
                    claimed_key,
                    params,
                    None,
                    exchange.event_source,
                    tuple(checked),
                    (),
                ),
            )

        # Every field, in order (asserted below): made as _whole makes an _Exchange.
        caller = _whole(
            Caller,
            (principal.account_id, region, principal.arn, authorize, principal, facts.source_ip),
        )
        try:
            service.authorize(caller, operation_name, params, authorize_named)
        except ServiceError as error:
            raise _Refused(whole(), error) from None
        return whole(), _whole(_Call, (handler, caller))

    def _route(
        self, exchange: _Exchange, request: sigv4.HttpRequest, headers: dict[str, str]
    ) -> tuple[ServiceSpec, Wire, str]:
        """Which service and operation a request is for, before anything is trusted (and
        the wire its answer takes); a refusal carries what was learned."""
        target = headers.get("x-amz-target")
        if not target and request.path not in ("/", ""):
            for spec, rest_wire in self._rest:
                found = rest_wire.routes.match(request.method, request.path, request.query)
                if found is not None:
                    return spec, rest_wire, found
            error = ServiceError(
                "UnknownOperationException",
                f"Strongroom serves no {request.method} {request.path}.",
                status=404,
            )
            raise _Refused(exchange, error)
        if target:
            prefix, _, operation_name = target.rpartition(".")
            service = self._by_prefix.get(prefix)
            if service is None:
                error = ServiceError("UnknownOperationException", self._not_served(request, prefix))
                raise _Refused(exchange, error)
            return service, self._wires[service.name], operation_name
        if not looks_like_query(request, headers):
            raise _Refused(exchange, ServiceError("UnknownOperationException", ""))
        exchange = exchange._replace(wire=QueryWire(None))  # errors before the service: XML
        action = query_action(request)
        if not action:
            raise _Refused(exchange, ServiceError("MissingAction", "Missing Action"))
        exchange = exchange._replace(operation_name=action)
        try:
            # Every client sends every service to the same endpoint; the credential scope
            # says which service the request was signed for.
            scope_service = sigv4.parse_credential(request).service
            service = self._by_signing_name.get(scope_service)
            if service is None:
                raise ServiceError("InvalidAction", self._not_served(request, action))
        except ServiceError as error:
            raise _Refused(exchange, error) from None
        return service, self._wires[service.name], action

    def _route_signed_in(
        self, request: sigv4.HttpRequest, headers: dict[str, str], signed_in: SignedIn
    ) -> tuple[ServiceSpec, Wire, str]:
        """Which operation of the service a signed-in request names."""
        service = next((spec for spec in self.services if spec.name == signed_in.service), None)
        if service is None:
            served = ", ".join(sorted(spec.name for spec in self.services))
            message = (
                f"Strongroom does not serve the {signed_in.service} service; it serves {served}."
            )
            raise ServiceError("UnknownOperationException", message)
        wire = self._wires[service.name]
        if service.protocol == "json":
            prefix, _, operation_name = headers.get("x-amz-target", "").rpartition(".")
            if prefix != service.target_prefix:
                raise ServiceError("UnknownOperationException", "")
            return service, wire, operation_name
        found = (
            wire.routes.match(request.method, request.path, request.query)
            if isinstance(wire, RestJsonWire)
            else query_action(request)
        )
        if not found:
            raise ServiceError("UnknownOperationException", "", status=404)
        return service, wire, found

    def _not_served(self, request: sigv4.HttpRequest, named: str) -> str:
        """Why a request for a service this server does not have fails: the service its
        signature is scoped to (else what routed it), and the ones served."""
        try:
            service = sigv4.parse_credential(request).service
        except ServiceError:
            service = named
        served = ", ".join(sorted(spec.name for spec in self.services))
        return f"Strongroom does not serve the {service} service ({named}); it serves {served}."

    def authorize_operator(
        self, request: sigv4.HttpRequest, source_ip: str, action: OperatorAction
    ) -> Principal | Response:
        """An operator request (``/_strongroom/seal``, ``/_strongroom/unseal``) through
        the same stages as every AWS request: authenticate (SigV4, signed for the
        ``strongroom`` service), authorize (the deployment's management account only, and
        its policies must allow the action on the deployment's ARN), audit (allowed or
        refused, one event). The principal to act for, or the error response to give.
        When the audit record cannot be written the action is refused, unless
        ``action.unaudited_ok`` (sealing: it protects, so a full disk must not stop it)."""
        exchange, _headers = self._exchange(request, source_ip)
        exchange = exchange._replace(operation_name=action.name, event_source=EVENT_SOURCE)
        error: ServiceError | None = None
        try:
            with self._store.read():
                credential = sigv4.parse_credential(request)
                exchange = exchange._replace(
                    claimed_key=credential.access_key_id,
                    facts=_with_region(exchange.facts, credential.region),
                )
                principal, region = self.authenticate(request, SIGNING_NAME, credential)
                exchange = exchange._replace(principal=principal)
                management = self._credentials.management_account()
                if principal.account_id != management:
                    # Accounts are tenants: no policy of another account reaches the
                    # deployment, whatever it says.
                    raise ServiceError(
                        "AccessDeniedException",
                        f"User: {principal.arn} is not authorized to perform: "
                        f"strongroom:{action.name}: only the deployment's management account "
                        f"({management}) may.",
                    )
                check = Check(f"strongroom:{action.name}", deployment_arn(management), management)
                self._authorizer.authorize(principal, check, CallFacts(source_ip, region))
        except ServiceError as refused:
            error = refused
        except Exception:
            log.exception("operator request %s failed", exchange.facts.request_id)
            error = internal_error()
        try:
            self._audit.write(self._event(exchange, error))
        except Exception:
            log.exception("audit write failed for operator request %s", exchange.facts.request_id)
            if error is None and not action.unaudited_ok:
                error = internal_error()
        if error is not None:
            return self._error_response(exchange, error)
        assert exchange.principal is not None
        return exchange.principal

    def record_operator_event(
        self, request: sigv4.HttpRequest, source_ip: str, action: OperatorAction
    ) -> None:
        """Audit an operator action that was not signed but done with shares (a Shamir or
        passphrase unseal, once the key it recovered opened the audit log)."""
        exchange, _headers = self._exchange(request, source_ip)
        exchange = exchange._replace(operation_name=action.name, event_source=EVENT_SOURCE)
        try:
            self._audit.write(self._event(exchange, None))
        except Exception:
            log.exception("audit write failed for operator request %s", exchange.facts.request_id)

    def authenticate(
        self,
        request: sigv4.HttpRequest,
        signing_name: str,
        credential: sigv4.SigV4Credential | None = None,
    ) -> tuple[Principal, str]:
        """The principal that SigV4-signed ``request`` for ``signing_name`` and the region of
        its credential scope; raises the AWS authentication error otherwise."""
        credential = credential or sigv4.parse_credential(request)
        if credential.service != signing_name:
            raise invalid_signature(
                f"Credential should be scoped to correct service: '{signing_name}'. "
            )
        # None too for a session whose user or role is gone (deleted, even if created
        # again): it authenticates nothing, GetCallerIdentity included, and is refused
        # here for every service alike (a decision: iam/credentials.py ``_bound``).
        key = self._credentials.lookup(credential.access_key_id)
        if (
            key is None
            or key.status != "Active"
            # A session key needs its own session token; a long-term key takes none.
            or not key.accepts_token(credential.security_token)
            # GetSessionToken's credentials call IAM only if obtained with MFA.
            or (
                key.temporary
                and key.principal.kind != "assumed-role"
                and key.principal.mfa_authenticated_ms is None
                and signing_name == "iam"
            )
        ):
            raise unrecognized_client()
        now = self._clock.now()
        sigv4.verify(
            request,
            credential,
            key.secret_access_key,
            signing_time(self._clock),
            cache=self._signing_keys,
        )
        if key.expired(now):
            raise expired_token()
        return key.principal, credential.region

    def _headers(self, exchange: _Exchange) -> dict[str, str]:
        return {"x-amzn-RequestId": exchange.facts.request_id}

    def _events(self, exchange: _Exchange, error: ServiceError | None) -> list[Event]:
        """Every record a request leaves, written together (one durable batch): its own
        event, the copies other accounts get of a call on their resources, and what the
        operation did on the caller's behalf (audit/derived.py), with their copies. The
        request's own record and those of its calls on the caller's behalf come as their
        canonical bytes where a template renders them (audit/templates.py)."""
        principal, operation = exchange.principal, exchange.operation
        rendered = (
            self._requests.render(
                exchange.facts,
                principal,
                exchange.event_source or exchange.service.event_source,
                operation,
                exchange.operation_name,
                exchange.params,
                exchange.output,
                self._resources(exchange),
                exchange.service.resource_type,
                exchange.event_id,
            )
            if error is None
            and principal is not None
            and operation is not None
            and exchange.service is not None
            else None
        )
        events: list[Event]
        if rendered is not None:  # its record, already serialized (no copies)
            record, time = rendered
            events = [record]
            if not exchange.derived:
                return events
            # What the records of the calls made on the caller's behalf take from it.
            event: Mapping[str, Any] = {
                "eventTime": time,
                "userIdentity": principal_identity(principal),
            }
        else:
            built = self._event(exchange, error)
            copies = cross_account_copies(built)
            events = [built, *copies] if copies else [built]
            event = built
        for item in exchange.derived:
            if isinstance(item, OnBehalf):
                call = (
                    self._on_behalf.render(exchange.facts, event, item, principal)
                    if principal
                    else None
                )
                if call is not None:  # its record, already serialized (no copies)
                    events.append(call)
                    continue
                caused = build_on_behalf_event(exchange.facts, event, item)
            else:
                caused = item
            events.append(caused)
            copies = cross_account_copies(caused)
            if copies:
                events.extend(copies)
        return events

    def _event(self, exchange: _Exchange, error: ServiceError | None) -> dict[str, Any]:
        principal = exchange.principal
        identity = (
            principal_identity(principal)  # made once per principal; build_event copies it
            if principal
            else unverified_identity(exchange.claimed_key, self._key_account(exchange.claimed_key))
            if exchange.claimed_key
            else None
        )
        event = build_event(
            facts=exchange.facts,
            event_source=exchange.event_source
            or (exchange.service.event_source if exchange.service else "unknown"),
            operation=exchange.operation,
            operation_name=exchange.operation_name,
            identity=identity,
            params=exchange.params,
            output=exchange.output,
            # The code the client got: IAM and STS say AccessDenied, as CloudTrail records.
            error_code=wire_code(exchange.wire, error.code) if error else None,
            error_message=error.message if error else None,
            resources=self._resources(exchange),
            resource_type=exchange.service.resource_type if exchange.service else "",
            event_id=exchange.event_id,
        )
        return event

    def _key_account(self, access_key_id: str) -> str | None:
        """The account of the key a refused request claimed: that account's event history
        shows the attempt (a forged or mistyped signature with one of its keys)."""
        try:
            key = self._credentials.lookup(access_key_id)
            if key is not None:
                return key.principal.account_id
            # A session of a user or role that is gone authenticates as nobody, but the
            # attempt is still its account's to see.
            return self._credentials.account_of(access_key_id)
        except Exception:
            return None

    @staticmethod
    def _resources(exchange: _Exchange) -> list[str]:
        """What the service names as the request's resources, and the resources it was
        authorized on (so a lookup by resource finds who was refused)."""
        if exchange.service is None or exchange.params is None:
            return []
        try:
            named = exchange.service.resources_of(exchange.params, exchange.output)
        except Exception:  # an audit record without resources beats no audit record
            log.exception("could not name the resources of request %s", exchange.facts.request_id)
            named = []
        if not exchange.checked:
            return named
        return list(dict.fromkeys([*named, *exchange.checked]))
