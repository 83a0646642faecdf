"""KMS grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, grant
tokens, and what a grant allows its grantee (KMS developer guide, "Grants in AWS KMS").

A grant lets its grantee principal use one key for the operations it lists, without a
key policy statement, optionally only with an encryption context that equals, or
includes, the grant's constraints. It is authorized like the key policy it complements:
:meth:`Grants.grant_policy` adds to the key policy an Allow for the caller and the
operation when a grant gives it, so an explicit Deny (key policy, IAM, boundary) still
wins and the decision memo keys on it. Grants take effect at once (there is no
eventual consistency to wait out), so a grant token only has to be one we issued.

A grant names an IAM user or role by its unique id, as a resource policy does
(docs/architecture.md, "Principals in resource policies: bound by unique id"): CreateGrant
stores the grantee and retiring principal ARNs of users and roles as the entities' ids
(``AIDA...``/``AROA...``, :meth:`strongroom.types.PrincipalIds.bind_principal`), a caller
is matched by its own id, and ListGrants shows each id as the entity's current ARN while it
exists, the id once it is deleted (as KMS answers: aws/aws-sdk-go#1718). A user or role
deleted and created again with the same name is another principal: the old grants are not
its own.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection

from strongroom.clock import from_ms
from strongroom.keys import repository as repo
from strongroom.keys.conditions import grant_constraint_keys
from strongroom.keys.kms_base import KmsBase
from strongroom.keys.kms_common import Output, Params, not_found, unsupported
from strongroom.keys.repository import GrantRecord, KeyRecord
from strongroom.policy.principal_ids import ENTITY_ARN
from strongroom.protocol.errors import ServiceError, validation_error
from strongroom.store.cache import Namespace
from strongroom.store.engine import cached
from strongroom.types import Caller, Principal, UnknownPrincipal

# The grant operations a symmetric encryption key supports (GrantOperation's values that
# apply to it; Sign, Verify, GenerateMac... are for other key types).
SYMMETRIC_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
    }
)
# The request member holding the encryption context a constraint is compared with, per
# operation; operations without one (DescribeKey, RetireGrant) are not constrained.
_CONTEXT_MEMBER = {
    "Encrypt": "EncryptionContext",
    "Decrypt": "EncryptionContext",
    "GenerateDataKey": "EncryptionContext",
    "GenerateDataKeyWithoutPlaintext": "EncryptionContext",
    "GenerateDataKeyPair": "EncryptionContext",
    "GenerateDataKeyPairWithoutPlaintext": "EncryptionContext",
    "ReEncryptFrom": "SourceEncryptionContext",
    "ReEncryptTo": "DestinationEncryptionContext",
}
GRANTS_PER_KEY = 50_000  # AWS's quota of grants for one KMS key
_UNCONSTRAINED = frozenset({"DescribeKey", "RetireGrant"})
_CONSTRAINT_TYPES = ("EncryptionContextEquals", "EncryptionContextSubset")
_TOKEN_SCOPE = "kms:grant-token"  # noqa: S105 - the signing scope of grant tokens
_GRANT_ID = re.compile(r"[0-9a-f]{64}")
# Read for every check on a key: cached per process, dropped when kms_grants changes.
_GRANTS = Namespace("kms-grants", ("kms_grants",))


def invalid_grant_token() -> ServiceError:
    return ServiceError("InvalidGrantTokenException", "The grant token is not valid.")


def invalid_grant_id(grant_id: str) -> ServiceError:
    return ServiceError("InvalidGrantIdException", f"Grant ID {grant_id} is not valid.")


def grant_not_found(grant_id: str) -> ServiceError:
    return not_found(f"Grant ID {grant_id} not found")


def grantee_matches(grantee: str | None, principal: Principal) -> bool:
    """Whether a grant's grantee (or retiring principal) names the caller. A user or role
    is named by its unique id: the user, or every session of the role (whose id is
    ``AROA...:<session>``), never one created later with the same name. The account root, a
    role session and a federated user are named by ARN. A user or role ARN (a grant the
    migration to ids found no entity for) names nobody: it fails closed."""
    if grantee is None:
        return False
    if ":" not in grantee:
        unique_id = principal.unique_id
        return unique_id is not None and unique_id.split(":", 1)[0] == grantee
    if ENTITY_ARN.fullmatch(grantee):
        return False
    return grantee in (principal.arn, principal.identity_arn)


def context_satisfies(
    constraints: Mapping[str, Any] | None, context: Mapping[str, str] | None
) -> bool:
    """Whether a request's encryption context meets a grant's constraints: equal to
    EncryptionContextEquals, including every pair of EncryptionContextSubset (keys and
    values compared exactly). A SourceArn constraint is for AWS services acting for the
    grantee; no request to Strongroom carries one, so it is never met (fail closed)."""
    if not constraints:
        return True
    if constraints.get("SourceArn"):
        return False
    given = dict(context or {})
    equals = constraints.get("EncryptionContextEquals")
    if equals is not None and given != dict(equals):
        return False
    subset = constraints.get("EncryptionContextSubset")
    return subset is None or all(given.get(k) == v for k, v in subset.items())


def at_least_as_strict(parent: Mapping[str, Any] | None, child: Mapping[str, Any] | None) -> bool:
    """Whether a grant made under ``parent``'s CreateGrant keeps its constraints: the same
    or more restrictive ones (KMS developer guide, "Grant constraints")."""
    if not parent:
        return True
    if parent.get("SourceArn") or not child:
        return False
    equals, subset = parent.get("EncryptionContextEquals"), parent.get("EncryptionContextSubset")
    child_equals = child.get("EncryptionContextEquals")
    if equals is not None:
        return child_equals is not None and dict(child_equals) == dict(equals)
    narrower = child_equals if child_equals is not None else child.get("EncryptionContextSubset")
    return narrower is not None and all(narrower.get(k) == v for k, v in (subset or {}).items())


def _constraints(given: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not given:
        return None
    kept = {name: dict(given[name]) for name in _CONSTRAINT_TYPES if given.get(name) is not None}
    if given.get("SourceArn"):
        kept["SourceArn"] = given["SourceArn"]
    return kept or None


def _principal(params: Params, member: str, *, required: bool) -> str | None:
    """A grant's principal member (GranteePrincipal, RetiringPrincipal): an IAM principal's
    ARN. Its service-principal twin is not supported."""
    if params.get(member.replace("Principal", "ServicePrincipal")):
        raise unsupported("Service principals in grants are not supported by Strongroom.")
    value: str | None = params.get(member)
    if not value:
        if required:
            raise validation_error(f"{member} must be specified.")
        return None
    if not value.startswith("arn:"):
        raise ServiceError("InvalidArnException", f"{value} is not a valid principal ARN.")
    return value


def with_grants(policy: str, operation: str) -> str:
    """``policy`` with one more statement: the caller (whom a grant names) may perform
    ``operation`` on the key. Built per request, for the caller the grant names only."""
    document = orjson.loads(policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    grant = {
        "Sid": "AllowedByGrant",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": f"kms:{operation}",
        "Resource": "*",
    }
    return orjson.dumps({**document, "Statement": [*statements, grant]}).decode()


def _entry(grant: GrantRecord, key_arn: str, arns: Mapping[str, str]) -> dict[str, Any]:
    """A GrantListEntry; ``arns``: the current ARN of each principal id that still exists."""
    retiring = grant.retiring_principal
    entry: dict[str, Any] = {
        "KeyId": key_arn,
        "GrantId": grant.grant_id,
        "Name": grant.name,
        "CreationDate": from_ms(grant.created_ms),
        "GranteePrincipal": arns.get(grant.grantee_principal, grant.grantee_principal),
        "RetiringPrincipal": arns.get(retiring, retiring) if retiring else None,
        "IssuingAccount": grant.issuing_account,
        "Operations": list(grant.operations),
        "Constraints": dict(grant.constraints) if grant.constraints else None,
    }
    return {name: value for name, value in entry.items() if value is not None}


class Grants(KmsBase):
    # Principals ----------------------------------------------------------------------------

    def _bound_principal(self, value: str) -> str:
        """A grant's principal as stored: a user or role ARN bound to the entity's id; one
        naming no existing user or role is not a valid principal."""
        try:
            return self._principal_ids.bind_principal(value)
        except UnknownPrincipal:
            raise ServiceError(
                "InvalidArnException", f"{value} is not a valid principal ARN."
            ) from None

    def _stored_as(self, value: str) -> str:
        """What a stored principal equals when a list request names ``value`` (ListGrants'
        and ListRetirableGrants' filters): the id of the user or role it names, else the
        value itself (an account root, a deleted entity's id)."""
        try:
            return self._principal_ids.bind_principal(value)
        except UnknownPrincipal:
            return value

    def _entries(self, grants: Sequence[GrantRecord], key_arns: Mapping[str, str]) -> list[Any]:
        """GrantListEntries, principal ids shown as current ARNs (one IAM read for them all)."""
        arns = self._principal_ids.current_arns(
            principal
            for grant in grants
            for principal in (grant.grantee_principal, grant.retiring_principal)
            if principal
        )
        return [_entry(grant, key_arns[grant.key_id], arns) for grant in grants]

    # Grant tokens --------------------------------------------------------------------------

    def _token(self, grant: GrantRecord) -> str:
        return self._tokens.encode(_TOKEN_SCOPE, {"g": grant.grant_id})

    def _token_grant_id(self, token: str) -> str:
        try:
            grant_id = self._tokens.decode(_TOKEN_SCOPE, token).get("g")
        except ServiceError:
            raise invalid_grant_token() from None
        if not isinstance(grant_id, str):
            raise invalid_grant_token()
        return grant_id

    def check_grant_tokens(self, tokens: Sequence[str] | None) -> None:
        """Every GrantTokens member must be a token Strongroom issued."""
        for token in tokens or ():
            self._token_grant_id(token)

    # What grants allow ---------------------------------------------------------------------

    def _grants_of(self, conn: Connection, key_id: str) -> tuple[GrantRecord, ...]:
        return cached(conn, _GRANTS, key_id, lambda: repo.grants_of_key(conn, key_id))

    def grant_policy(
        self,
        caller: Caller,
        key: KeyRecord,
        operation: str,
        params: Params,
        conn: Connection | None = None,
    ) -> str:
        """The policy deciding ``operation`` on ``key`` for ``caller``: the key policy, and an
        Allow when one of the key's grants gives the caller the operation for this request
        (``conn``: the transaction the caller is in, if any)."""
        if caller.principal is None:
            return key.policy
        if key.grants is False and operation != "RetireGrant":
            # Known to have none when the key was read (blobs.py keeps it true): nothing to
            # add to the key policy, and no lookup on every check of the key. RetireGrant is
            # decided by the grant it names (_retire_policy), not by the key's grants.
            return key.policy
        if conn is not None:
            return self._grant_policy(conn, caller, caller.principal, key, operation, params)
        with self._store.read() as reading:
            return self._grant_policy(reading, caller, caller.principal, key, operation, params)

    def _grant_policy(
        self,
        conn: Connection,
        caller: Caller,
        principal: Principal,
        key: KeyRecord,
        operation: str,
        params: Params,
    ) -> str:
        if operation == "RetireGrant":
            return self._retire_policy(conn, caller, principal, key, params)
        grants = self._grants_of(conn, key.key_id)
        if not grants:
            return key.policy
        allows = any(self._allows(grant, principal, operation, params) for grant in grants)
        return with_grants(key.policy, operation) if allows else key.policy

    @staticmethod
    def _allows(grant: GrantRecord, principal: Principal, operation: str, params: Params) -> bool:
        if operation not in grant.operations or not grantee_matches(
            grant.grantee_principal, principal
        ):
            return False
        if operation in _UNCONSTRAINED:
            return True
        if operation == "CreateGrant":
            # A grantee may pass on no more than it was given.
            return set(params.get("Operations") or ()) <= set(grant.operations) and (
                at_least_as_strict(grant.constraints, _constraints(params.get("Constraints")))
            )
        member = _CONTEXT_MEMBER.get(operation)
        context = params.get(member) if member else None
        return member is not None and context_satisfies(grant.constraints, context)

    def _retire_policy(
        self, conn: Connection, caller: Caller, principal: Principal, key: KeyRecord, params: Params
    ) -> str:
        """RetireGrant is decided by the grant it retires, not by the key policy ("Retiring
        and revoking grants": kms:RetireGrant "is not effective in a key policy"): its
        retiring principal may, its grantee if the grant lists RetireGrant, and the account
        that created the grant, which may delegate it in IAM policies (an IAM Deny holds)."""
        grant = self._retiring(conn, caller, params, key)
        account = grant.issuing_account if grant else f"arn:aws:iam::{key.account_id}:root"
        delegated = {
            "Sid": "GrantingAccount",
            "Effect": "Allow",
            "Principal": {"AWS": account},
            "Action": "kms:RetireGrant",
            "Resource": "*",
        }
        policy = orjson.dumps({"Version": "2012-10-17", "Statement": [delegated]}).decode()
        named = grant is not None and (
            grantee_matches(grant.retiring_principal, principal)
            or (
                "RetireGrant" in grant.operations
                and grantee_matches(grant.grantee_principal, principal)
            )
        )
        return with_grants(policy, "RetireGrant") if named else policy

    def _retiring(
        self, conn: Connection, caller: Caller, params: Params, key: KeyRecord | None
    ) -> GrantRecord | None:
        """The grant a RetireGrant request names (by token, or by key and grant id)."""
        token, grant_id = params.get("GrantToken"), params.get("GrantId")
        if token:
            try:
                grant_id = self._token_grant_id(token)
            except ServiceError:
                return None
        if not grant_id:
            return None
        if key is None:
            found = repo.grant_by_id(conn, grant_id)
            return found if found is not None and found.region == caller.region else None
        return next((g for g in self._grants_of(conn, key.key_id) if g.grant_id == grant_id), None)

    def retire_target(self, caller: Caller, params: Params) -> KeyRecord | None:
        """For authorization: the key of the grant a RetireGrant request names."""
        if params.get("KeyId"):
            return self.target(caller, params["KeyId"])
        with self._store.read() as conn:
            grant = self._retiring(conn, caller, params, None)
            return repo.key_by_id(conn, grant.key_id) if grant is not None else None

    def retire_grant_keys(self, caller: Caller, params: Params) -> dict[str, tuple[str, ...]]:
        """The constraint keys of the grant a RetireGrant request names, as AWS gives them
        (kms:GrantConstraintType, kms:EncryptionContext:*, kms:EncryptionContextKeys)."""
        key = None
        with self._store.read() as conn:
            if params.get("KeyId"):
                try:
                    key = self._resolve(conn, caller, params["KeyId"])
                except ServiceError:
                    return {}
            grant = self._retiring(conn, caller, params, key)
        return grant_constraint_keys(grant.constraints) if grant is not None else {}

    # The operations --------------------------------------------------------------------------

    def create_grant(self, caller: Caller, params: Params) -> Output:
        operations = tuple(dict.fromkeys(params.get("Operations") or ()))
        if not operations:
            raise validation_error("Operations must name at least one grant operation.")
        invalid = [name for name in operations if name not in SYMMETRIC_OPERATIONS]
        if invalid:
            raise validation_error(
                f"Grant operations {', '.join(invalid)} are not valid for a symmetric "
                "encryption KMS key."
            )
        named = _principal(params, "GranteePrincipal", required=True)
        assert named is not None
        grantee = self._bound_principal(named)
        retiring = _principal(params, "RetiringPrincipal", required=False)
        retiring = self._bound_principal(retiring) if retiring else None
        self.check_grant_tokens(params.get("GrantTokens"))
        constraints = _constraints(params.get("Constraints"))
        name = params.get("Name")
        with self._store.write() as conn:
            key = self._changeable(
                caller, self._resolve(conn, caller, params["KeyId"]), "CreateGrant"
            )
            existing_grants = repo.grants_of_key(conn, key.key_id)
            if len(existing_grants) >= GRANTS_PER_KEY:
                # AWS's quota; it also bounds what every check on the key reads.
                raise ServiceError(
                    "LimitExceededException",
                    f"{key.arn} has reached the maximum number of grants ({GRANTS_PER_KEY}).",
                )
            for existing in existing_grants if name else ():
                # With a Name, CreateGrant is idempotent: the same grant again answers the
                # existing grant's id (with a new token).
                if (
                    existing.name == name
                    and existing.grantee_principal == grantee
                    and existing.retiring_principal == retiring
                    and set(existing.operations) == set(operations)
                    and existing.constraints == constraints
                ):
                    return {"GrantToken": self._token(existing), "GrantId": existing.grant_id}
            grant = GrantRecord(
                grant_id=secrets.token_hex(32),
                key_id=key.key_id,
                account_id=key.account_id,
                region=key.region,
                name=name,
                grantee_principal=grantee,
                retiring_principal=retiring,
                issuing_account=f"arn:aws:iam::{caller.account_id}:root",
                operations=operations,
                constraints=constraints,
                created_ms=self._now_ms(),
            )
            repo.insert_grant(conn, grant)
        return {"GrantToken": self._token(grant), "GrantId": grant.grant_id}

    def list_grants(self, caller: Caller, params: Params) -> Output:
        grant_id = params.get("GrantId")
        if grant_id is not None and not _GRANT_ID.fullmatch(grant_id):
            raise invalid_grant_id(grant_id)
        with self._store.read() as conn:
            key = self._resolve(conn, caller, params["KeyId"])
            grants = self._grants_of(conn, key.key_id)
        grantee = params.get("GranteePrincipal")
        # A grant is found by the principal it is shown with (a user's or role's current ARN,
        # a deleted one's id) or by the value it stores.
        wanted = {grantee, self._stored_as(grantee)} if grantee is not None else set()
        listed = [
            grant
            for grant in grants
            if (grant_id is None or grant.grant_id == grant_id)
            and (grantee is None or grant.grantee_principal in wanted)
        ]
        page, marker = self._page(
            "ListGrants", caller, listed, params, default_limit=50, maximum=100
        )
        entries = self._entries(page, {key.key_id: key.arn})
        return {"Grants": entries, "Truncated": marker is not None, "NextMarker": marker}

    def list_retirable_grants(self, caller: Caller, params: Params) -> Output:
        principal = _principal(params, "RetiringPrincipal", required=True)
        assert principal is not None
        parts = principal.split(":")
        if len(parts) < 5 or parts[4] != caller.account_id:
            # Only the grants a principal of the caller's own account may retire.
            raise ServiceError(
                "AccessDeniedException",
                f"User: {caller.arn} is not authorized to list the grants retirable by "
                f"{principal}: it is not a principal of account {caller.account_id}.",
            )
        with self._store.read() as conn:
            grants = repo.grants_retirable_by(conn, caller.region, self._stored_as(principal))
        page, marker = self._page(
            "ListRetirableGrants", caller, grants, params, default_limit=50, maximum=100
        )
        arns = {g.key_id: f"arn:aws:kms:{g.region}:{g.account_id}:key/{g.key_id}" for g in page}
        entries = self._entries(page, arns)
        return {"Grants": entries, "Truncated": marker is not None, "NextMarker": marker}

    def retire_grant(self, caller: Caller, params: Params) -> Output:
        token, key_ref, grant_id = (
            params.get("GrantToken"),
            params.get("KeyId"),
            params.get("GrantId"),
        )
        if not token and not (key_ref and grant_id):
            raise validation_error("Either GrantToken, or KeyId and GrantId, must be specified.")
        if token:
            named = self._token_grant_id(token)
            if grant_id is not None and grant_id != named:
                raise invalid_grant_id(grant_id)
            grant_id = named
        assert grant_id is not None
        if not _GRANT_ID.fullmatch(grant_id):
            raise invalid_grant_id(grant_id)
        with self._store.write() as conn:
            key = self._resolve(conn, caller, key_ref) if key_ref else None
            grant = repo.grant_by_id(conn, grant_id)
            if (
                grant is None
                or grant.region != caller.region
                or (key is not None and grant.key_id != key.key_id)
            ):
                raise grant_not_found(grant_id)
            repo.delete_grant(conn, grant_id)
        return {}

    def revoke_grant(self, caller: Caller, params: Params) -> Output:
        grant_id: str = params["GrantId"]
        if not _GRANT_ID.fullmatch(grant_id):
            raise invalid_grant_id(grant_id)
        with self._store.write() as conn:
            key = self._resolve(conn, caller, params["KeyId"])
            grant = repo.grant_by_id(conn, grant_id)
            if grant is None or grant.key_id != key.key_id:
                raise grant_not_found(grant_id)
            repo.delete_grant(conn, grant_id)
        return {}
