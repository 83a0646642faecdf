"""AWS STS: who is calling (GetCallerIdentity), temporary credentials for an IAM user
(GetSessionToken), for a role (AssumeRole) and for a federated user (GetFederationToken),
and the account of an access key (GetAccessKeyInfo). The facade is the botocore ``sts``
model (AWS Query protocol).

AssumeRole is authorized by the pipeline like every other operation: the role is its
resource and the role's trust policy its resource policy
(:mod:`strongroom.iam.sts_authorization`). The caller's permissions boundary and
session policies limit what its identity policies grant, as for any request.
GetCallerIdentity and GetSessionToken need no permission (AWS: "No permissions are
required to perform this operation").

GetSessionToken and AssumeRole take an MFA code (SerialNumber, TokenCode) from the calling
user's own enabled device (strongroom/iam/mfa.py), refused otherwise ("Configuring
MFA-protected API access"). The session records when the code was verified: its requests
carry ``aws:MultiFactorAuthPresent`` "true" and ``aws:MultiFactorAuthAge``. A role
assumed from an MFA session keeps that session's MFA.

Decisions about behaviour AWS does not spell out are marked "Decision:" below.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from strongroom.clock import Clock, now_ms
from strongroom.iam.credentials import (
    CredentialStore,
    IssuedSession,
    Principal,
    SessionGrant,
    SessionRecord,
)
from strongroom.iam.mfa import MfaDevices
from strongroom.iam.service import IdentityService, RoleInfo
from strongroom.policy.document import parse_policy
from strongroom.protocol.errors import (
    ServiceError,
    internal_error,
    unrecognized_client,
    validation_error,
)
from strongroom.protocol.query_codec import modeled_error
from strongroom.protocol.service import Handler, ServiceSpec, snake_case
from strongroom.store.engine import Store
from strongroom.types import Caller, PrincipalPolicies

Params = Mapping[str, Any]
Output = dict[str, Any]

OPERATIONS = (
    "AssumeRole",
    "GetAccessKeyInfo",
    "GetCallerIdentity",
    "GetFederationToken",
    "GetSessionToken",
)

# Durations, in seconds (the AssumeRole and GetSessionToken API references).
DEFAULT_ROLE_SESSION = 3600
ROLE_CHAINING_LIMIT = 3600
DEFAULT_USER_SESSION = 43200
ROOT_SESSION_LIMIT = 3600
FEDERATION_LIMIT = 129600  # GetFederationToken: 36 hours (the model's bound too)
MAX_SESSION_POLICY_ARNS = 10
# "The plaintext that you use for both inline and managed session policies can't exceed
# 2,048 characters." Decision: the packed size is that plaintext (the inline policy
# without whitespace, plus the managed policies' ARNs) plus the session tags' keys and
# values, as a percentage of 2,048 characters; AWS's compression is not public.
PACKED_BUDGET = 2048
MALFORMED = "MalformedPolicyDocument"

_ROLE_ARN = re.compile(r"arn:aws:iam::([0-9]{12}):role/(?:[^/]+/)*([\w+=,.@-]{1,64})")
_WHITESPACE = re.compile(r"\s")


# Errors, with STS's codes ---------------------------------------------------------------


def _access_denied(message: str) -> ServiceError:
    return modeled_error("sts", "AccessDenied", message)


def _not_authorized(principal: Principal, action: str, role_arn: str) -> ServiceError:
    # STS's AssumeRole refusal names no reason, so it does not tell whether the role
    # exists or which policy said no.
    return _access_denied(
        f"User: {principal.arn} is not authorized to perform: {action} on resource: {role_arn}"
    )


def _validation_error(message: str) -> ServiceError:
    return validation_error(message, "query")


def _invalid_parameter(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValue", message)


def _out_of_range(value: int, member: str, bound: str) -> ServiceError:
    return _validation_error(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must have value {bound}"
    )


# Small helpers --------------------------------------------------------------------------


def principal_of(caller: Any) -> Principal:
    """The authenticated principal the pipeline hands to STS on its caller."""
    principal = getattr(caller, "principal", None)
    if not isinstance(principal, Principal):
        raise internal_error()  # a wiring mistake, never the client's
    return principal


def _issuing_user(principal: Principal) -> str | None:
    """The unique id (AIDA...) of the IAM user asking for a session with its long-term
    key, which the session belongs to; None for root."""
    return principal.unique_id if principal.kind == "user" else None


def _credentials_out(issued: IssuedSession) -> Output:
    return {
        "AccessKeyId": issued.access_key_id,
        "SecretAccessKey": issued.secret_access_key,
        "SessionToken": issued.session_token,
        "Expiration": issued.expiration,
    }


def _compact_size(text: str) -> int:
    return len(_WHITESPACE.sub("", text))


def role_named(identities: IdentityService, role_arn: str) -> RoleInfo | None:
    """The role ``role_arn`` names exactly (its path included), or None."""
    match = _ROLE_ARN.fullmatch(role_arn)
    if match is None:
        return None
    role = identities.role(match.group(1), match.group(2))
    return role if role is not None and role.arn == role_arn else None


# The service ----------------------------------------------------------------------------


class SecurityTokenService:
    def __init__(
        self,
        store: Store,
        credentials: CredentialStore,
        identities: IdentityService,
        clock: Clock,
        mfa: MfaDevices,
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._identities = identities
        self._clock = clock
        self._mfa = mfa

    @property
    def identities(self) -> IdentityService:
        return self._identities

    @property
    def credentials(self) -> CredentialStore:
        return self._credentials

    # GetCallerIdentity --------------------------------------------------------------------

    def get_caller_identity(self, caller: Caller, params: Params) -> Output:
        principal = principal_of(caller)
        return {
            "UserId": self._user_id(principal, self._identity(principal)),
            "Account": principal.account_id,
            "Arn": principal.arn,
        }

    def _identity(self, principal: Principal) -> PrincipalPolicies | None:
        """The IAM user or role behind ``principal`` (None for root, or if it is gone)."""
        if principal.kind == "root":
            return None
        return self._identities.principal_policies(principal.identity_arn)

    def _user_id(self, principal: Principal, identity: PrincipalPolicies | None) -> str:
        """``aws:userid``: the account id for root, ``AROA...:session`` for a role
        session, the user's ``AIDA...`` id otherwise."""
        if principal.kind == "root":
            return principal.account_id
        if principal.kind == "federated-user" and principal.unique_id:
            return principal.unique_id  # <account>:<name>
        if principal.kind == "assumed-role":
            session = self._credentials.session(principal.access_key_id)
            if session is None or session.role_id is None:
                raise unrecognized_client()  # purged while the request was on its way
            return f"{session.role_id}:{session.session_name}"
        if identity is None:
            # The user is gone (only its sessions can outlive it): nobody's credentials.
            raise unrecognized_client()
        return identity.user_id

    # GetSessionToken ----------------------------------------------------------------------

    def get_session_token(self, caller: Caller, params: Params) -> Output:
        principal = principal_of(caller)
        if principal.session_token:
            raise _access_denied("Cannot call GetSessionToken with session credentials")
        mfa_ms = self._verify_mfa(principal, params)
        if principal.kind == "root":
            duration = int(params.get("DurationSeconds") or ROOT_SESSION_LIMIT)
            if duration > ROOT_SESSION_LIMIT:
                raise _out_of_range(
                    duration, "durationSeconds", f"less than or equal to {ROOT_SESSION_LIMIT}"
                )
        else:
            duration = int(params.get("DurationSeconds") or DEFAULT_USER_SESSION)
        grant = SessionGrant(
            account_id=principal.account_id,
            kind=principal.kind,
            principal_arn=principal.arn,
            identity_arn=principal.identity_arn,
            duration_seconds=duration,
            user_id=_issuing_user(principal),
            minimum_token_size=int(params.get("MinimumSessionTokenSize") or 0),
            mfa_authenticated_ms=mfa_ms,
        )
        with self._store.write() as conn:
            issued = self._credentials.create_session(conn, grant)
        return {"Credentials": _credentials_out(issued)}

    def _verify_mfa(self, principal: Principal, params: Params) -> int | None:
        """When the MFA code given as SerialNumber and TokenCode was verified (now), or
        None if none was given. The device must be the calling IAM user's own, enabled;
        a wrong code, or one accepted before, is refused."""
        serial, code = params.get("SerialNumber"), params.get("TokenCode")
        if not serial and not code:
            return None
        verdict = "unknown"
        if serial and code and principal.kind == "user":
            verdict = self._mfa.verify(principal.account_id, principal.identity_arn, serial, code)
        if verdict == "invalid":
            raise _access_denied(
                "MultiFactorAuthentication failed with invalid MFA one time pass code."
            )
        if verdict != "valid":
            # A device that is not the caller's, a role session (roles have no devices),
            # or half of the pair: AWS refuses rather than ignore it.
            raise _access_denied("MultiFactorAuthentication failed, unable to validate MFA code.")
        return now_ms(self._clock)

    # GetAccessKeyInfo ---------------------------------------------------------------------

    def get_access_key_info(self, caller: Caller, params: Params) -> Output:
        principal = principal_of(caller)
        if principal.session_token and principal.kind != "assumed-role":
            # GetSessionToken's credentials may call only AssumeRole and GetCallerIdentity
            # of STS. Decision: the refusal reads like GetSessionToken's.
            raise _access_denied("Cannot call GetAccessKeyInfo with session credentials")
        account = self._credentials.account_of(params["AccessKeyId"])
        if account is None:
            # Decision: AWS derives the account from the key id itself; ours carry none,
            # and AWS documents that a deleted key "might return an error that the key
            # doesn't exist".
            raise _invalid_parameter(f"The access key ID {params['AccessKeyId']} does not exist.")
        return {"Account": account}

    # AssumeRole ---------------------------------------------------------------------------

    def assume_role(self, caller: Caller, params: Params) -> Output:
        principal = principal_of(caller)
        role_arn: str = params["RoleArn"]
        if principal.kind == "federated-user":
            # GetFederationToken: its credentials "cannot call any STS operations except
            # GetCallerIdentity".
            raise _not_authorized(principal, "sts:AssumeRole", role_arn)
        session_name: str = params["RoleSessionName"]
        calling_session = self._calling_session(principal)

        inline: str | None = params.get("Policy")
        if inline is not None:
            parse_policy(inline, kind="identity", error_code=MALFORMED)
        policy_arns = self._policy_arns(params.get("PolicyArns"))
        requested = requested_tags(params.get("Tags"))
        transitive = transitive_keys(params.get("TransitiveTagKeys"), requested)
        inherited = inherited_tags(calling_session)
        _check_no_override(requested, inherited)
        identity = source_identity(params.get("SourceIdentity"), principal)

        # The pipeline has authorized sts:AssumeRole on this role (sts_authorization.py);
        # it may have gone since.
        role = role_named(self._identities, role_arn)
        if role is None:
            raise _not_authorized(principal, "sts:AssumeRole", role_arn)
        # The trust policy was evaluated with this request's MFA claimed (see
        # sts_authorization.request_keys): the claim is checked here, before any session.
        verified_ms = self._verify_mfa(principal, params)

        duration = int(params.get("DurationSeconds") or DEFAULT_ROLE_SESSION)
        if principal.kind == "assumed-role" and duration > ROLE_CHAINING_LIMIT:
            raise _validation_error(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles "
                "assumed by role chaining."
            )
        if duration > role.max_session_duration:
            raise _validation_error(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )

        account = role.arn.split(":")[4]
        documents = self._managed_documents(account, policy_arns)
        tags = (*inherited, *requested)
        packed = _packed_size(inline, policy_arns, tags)

        session_arn = f"arn:aws:sts::{account}:assumed-role/{role.role_name}/{session_name}"
        grant = SessionGrant(
            account_id=account,
            kind="assumed-role",
            principal_arn=session_arn,
            identity_arn=role.arn,
            duration_seconds=duration,
            role_id=role.role_id,
            session_name=session_name,
            session_policies=((inline,) if inline is not None else ()) + documents,
            session_tags=tags,
            transitive_tag_keys=(*(key for key, _ in inherited), *transitive),
            source_identity=identity,
            minimum_token_size=int(params.get("MinimumSessionTokenSize") or 0),
            # A session assumed from a session that was obtained with MFA keeps its MFA
            # (role chaining after GetSessionToken with MFA), counted from the same moment.
            mfa_authenticated_ms=verified_ms
            if verified_ms is not None
            else principal.mfa_authenticated_ms,
        )
        with self._store.write() as conn:
            issued = self._credentials.create_session(conn, grant)
        self._identities.record_role_use(account, role.role_name, caller.region)
        output: Output = {
            "Credentials": _credentials_out(issued),
            "AssumedRoleUser": {
                "AssumedRoleId": f"{role.role_id}:{session_name}",
                "Arn": session_arn,
            },
        }
        if inline is not None or policy_arns or tags:
            output["PackedPolicySize"] = packed
        if identity is not None:
            output["SourceIdentity"] = identity
        return output

    # GetFederationToken -----------------------------------------------------------------

    def get_federation_token(self, caller: Caller, params: Params) -> Output:
        """Temporary credentials for a federated user ``arn:aws:sts::ACCT:federated-user/
        Name`` (GetFederationToken API reference): called with an IAM user's long-term
        key (or the root user's), never with session credentials. The federated user has
        the intersection of the calling user's policies and the session policies passed
        here: none at all without a session policy (evaluate.py rule 6), unless a resource
        policy names it. Its credentials cannot call IAM (the pipeline refuses them as it
        refuses GetSessionToken's without MFA) nor STS but GetCallerIdentity."""
        principal = principal_of(caller)
        if principal.session_token:
            raise _access_denied("Cannot call GetFederationToken with session credentials")
        name: str = params["Name"]
        inline: str | None = params.get("Policy")
        if inline is not None:
            parse_policy(inline, kind="identity", error_code=MALFORMED)
        policy_arns = self._policy_arns(params.get("PolicyArns"))
        tags = requested_tags(params.get("Tags"))
        duration = int(params.get("DurationSeconds") or DEFAULT_USER_SESSION)
        if principal.kind == "root":
            # "If the specified duration is longer than one hour, the session obtained by
            # using root user credentials defaults to one hour."
            duration = min(duration, ROOT_SESSION_LIMIT)
        documents = self._managed_documents(principal.account_id, policy_arns)
        packed = _packed_size(inline, policy_arns, tags)
        arn = f"arn:aws:sts::{principal.account_id}:federated-user/{name}"
        grant = SessionGrant(
            account_id=principal.account_id,
            kind="federated-user",
            principal_arn=arn,
            identity_arn=principal.identity_arn,
            duration_seconds=duration,
            user_id=_issuing_user(principal),
            session_name=name,
            session_policies=((inline,) if inline is not None else ()) + documents,
            session_tags=tags,
        )
        with self._store.write() as conn:
            issued = self._credentials.create_session(conn, grant)
        output: Output = {
            "Credentials": _credentials_out(issued),
            "FederatedUser": {"FederatedUserId": f"{principal.account_id}:{name}", "Arn": arn},
        }
        if inline is not None or policy_arns or tags:
            output["PackedPolicySize"] = packed
        return output

    def _calling_session(self, principal: Principal) -> SessionRecord | None:
        if not principal.session_token:
            return None
        return self._credentials.session(principal.access_key_id)

    @staticmethod
    def _policy_arns(raw: Sequence[Mapping[str, str]] | None) -> tuple[str, ...]:
        arns = tuple(item.get("arn") or "" for item in raw or ())
        if len(arns) > MAX_SESSION_POLICY_ARNS:
            raise _validation_error(
                "1 validation error detected: Value at 'policyArns' failed to satisfy "
                f"constraint: Member must have length less than or equal to "
                f"{MAX_SESSION_POLICY_ARNS}"
            )
        if "" in arns:
            raise _validation_error("Each PolicyArns member must give an arn.")
        return arns

    def _managed_documents(self, account: str, arns: Iterable[str]) -> tuple[str, ...]:
        """The documents of the managed session policies, in the role's account."""
        documents = []
        for arn in arns:
            document = self._identities.managed_policy_document(account, arn)
            if document is None:
                # Decision: IAM's wording for a policy that cannot be used.
                raise _validation_error(f"Policy {arn} does not exist or is not attachable.")
            documents.append(document)
        return tuple(documents)


# Session tags and source identity ----------------------------------------------------------


def requested_tags(raw: Sequence[Mapping[str, str]] | None) -> tuple[tuple[str, str], ...]:
    tags: list[tuple[str, str]] = []
    seen: set[str] = set()
    for tag in raw or ():
        key, value = tag["Key"], tag.get("Value", "")
        if key.lower().startswith("aws:"):
            raise _invalid_parameter("Tag keys cannot start with the reserved prefix 'aws:'.")
        if key.lower() in seen:
            # Decision: IAM's wording (tag keys compare ignoring case, as AWS documents).
            raise _invalid_parameter(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        seen.add(key.lower())
        tags.append((key, value))
    return tuple(tags)


def transitive_keys(raw: Sequence[str] | None, tags: Sequence[tuple[str, str]]) -> list[str]:
    requested = {key.lower(): key for key, _ in tags}
    keys = []
    for key in raw or ():
        if key.lower() not in requested:
            raise _invalid_parameter(
                "The specified transitive tag key must be included in the requested tags."
            )
        keys.append(requested[key.lower()])
    return list(dict.fromkeys(keys))


def inherited_tags(session: SessionRecord | None) -> tuple[tuple[str, str], ...]:
    """The transitive tags of the calling session, which a chained session keeps."""
    if session is None:
        return ()
    transitive = {key.lower() for key in session.transitive_tag_keys}
    return tuple((key, value) for key, value in session.session_tags if key.lower() in transitive)


def _check_no_override(
    requested: Sequence[tuple[str, str]], inherited: Sequence[tuple[str, str]]
) -> None:
    # AWS: "If you pass a session tag with the same key as an inherited tag, the operation
    # fails." Decision: the wording.
    clash = {key.lower() for key, _ in inherited} & {key.lower() for key, _ in requested}
    if clash:
        raise _invalid_parameter(
            "One or more of the specified session tags conflict with transitive tags "
            "inherited from the calling session."
        )


def source_identity(requested: str | None, principal: Principal) -> str | None:
    if requested is not None and requested.lower().startswith("aws:"):
        raise _invalid_parameter("SourceIdentity cannot start with the reserved prefix 'aws:'.")
    inherited = principal.source_identity
    if inherited is not None and requested is not None and requested != inherited:
        # AWS: a source identity persists across chained sessions and cannot be changed.
        raise _invalid_parameter("The source identity of a session cannot be changed once set.")
    return inherited or requested


def _packed_size(
    inline: str | None, policy_arns: Sequence[str], tags: Sequence[tuple[str, str]]
) -> int:
    policies = (_compact_size(inline) if inline is not None else 0) + sum(map(len, policy_arns))
    tag_size = sum(len(key) + len(value) for key, value in tags)
    percent = math.ceil(100 * (policies + tag_size) / PACKED_BUDGET)
    if percent > 100:
        what = "Packed policy" if policies else "Packed size of session tags"
        raise ServiceError("PackedPolicyTooLarge", f"{what} consumes {percent}% of allotted space")
    return percent


# The facade -------------------------------------------------------------------------------


def sts_operations(service: SecurityTokenService) -> dict[str, Handler]:
    return {name: getattr(service, snake_case(name)) for name in OPERATIONS}


def sts_resources(params: Mapping[str, Any], output: Mapping[str, Any] | None) -> list[str]:
    """The role an AssumeRole event is about, for the audit record."""
    role_arn = params.get("RoleArn")
    return [str(role_arn)] if role_arn else []


def sts_spec(service: SecurityTokenService) -> ServiceSpec:
    # Imported here: the checks module builds on this one's request validation.
    from strongroom.iam.sts_authorization import refused, sts_checks

    checks = sts_checks(service.identities, service.credentials, OPERATIONS)
    return ServiceSpec(
        "sts", sts_operations(service), "AWS::IAM::Role", sts_resources, checks, refused
    )
