"""CloudTrail's userIdentity elements (IAMUser, AssumedRole, FederatedUser, Root, a
cross-account copy's AWSAccount, an unverified request's Unknown) and the record time's
text, which ``sessionContext`` shares with the events (audit/events.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from strongroom.clock import from_ms
from strongroom.types import Principal


def user_identity(principal: Principal) -> dict[str, Any]:
    """CloudTrail's userIdentity for an authenticated caller. ``principalId`` is IAM's
    unique id (``AIDA...`` for a user, ``AROA...:<session>`` for a role session, the account
    id for root) when the credentials carry it; otherwise the access key id stands in.
    Temporary credentials carry ``sessionContext.attributes`` (when they were issued,
    whether with MFA): a role session's with its ``sessionIssuer``, GetSessionToken's on
    the IAM user's (or root's) own identity."""
    identity: dict[str, Any] = {
        "type": "IAMUser",
        "principalId": principal.unique_id or principal.access_key_id,
        "arn": principal.arn,
        "accountId": principal.account_id,
        "accessKeyId": principal.access_key_id,
    }
    if principal.kind == "root" or principal.arn.endswith(":root"):
        identity["type"] = "Root"
        identity["principalId"] = principal.account_id
    elif principal.kind == "assumed-role" or ":assumed-role/" in principal.arn:
        identity["type"] = "AssumedRole"
        role_arn = principal.identity_arn
        issuer = {"type": "Role"}
        if principal.unique_id and ":" in principal.unique_id:
            issuer["principalId"] = principal.unique_id.split(":", 1)[0]
        issuer.update(
            arn=role_arn, accountId=principal.account_id, userName=role_arn.rsplit("/", 1)[-1]
        )
        identity["sessionContext"] = {
            "sessionIssuer": issuer,
            "webIdFederationData": {},
            "attributes": session_attributes(principal),
        }
        if principal.source_identity:
            identity["sessionContext"]["sourceIdentity"] = principal.source_identity
        return identity
    elif principal.kind == "federated-user":
        identity["type"] = "FederatedUser"
        issuer_arn = principal.identity_arn
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Root" if issuer_arn.endswith(":root") else "IAMUser",
                "arn": issuer_arn,
                "accountId": principal.account_id,
                "userName": issuer_arn.rsplit("/", 1)[-1],
            },
            "attributes": session_attributes(principal),
        }
        return identity
    else:
        identity["userName"] = principal.arn.rsplit("/", 1)[-1]
    if principal.session_token:
        identity["sessionContext"] = {"attributes": session_attributes(principal)}
    return identity


# The userIdentity of a principal, made once: a Principal is immutable and its every field
# is part of its equality, so the same principal always shows the same identity (a new
# session, or a changed user, is another principal). Shared, so never changed: build_event
# and build_on_behalf_event copy it into their records. Bounded like the row cache's keys.
@lru_cache(maxsize=4096)
def principal_identity(principal: Principal) -> Mapping[str, Any]:
    """:func:`user_identity` of ``principal``, shared between its requests (read only),
    its members in canonical order (audit/events.py's CANONICAL_ORDER: orjson then sorts
    it in fewer steps; what is written is the same)."""
    return dict(sorted(user_identity(principal).items()))


def session_attributes(principal: Principal) -> dict[str, str]:
    """``sessionContext.attributes``: when the credentials were issued, and with MFA or not."""
    attributes = {
        "mfaAuthenticated": "true" if principal.mfa_authenticated_ms is not None else "false"
    }
    if principal.token_issued_ms is not None:
        attributes["creationDate"] = event_time(from_ms(principal.token_issued_ms))
    return attributes


def account_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """The userIdentity a resource owner's copy of a cross-account call shows: the calling
    account and its principal's id, nothing more (CloudTrail's ``AWSAccount``)."""
    shown: dict[str, Any] = {"type": "AWSAccount"}
    if identity.get("principalId"):
        shown["principalId"] = identity["principalId"]
    shown["accountId"] = identity.get("accountId")
    return shown


def unverified_identity(access_key_id: str, account_id: str | None) -> dict[str, Any]:
    """The userIdentity of a request whose signature was not verified: only the access
    key it claims (and that key's account, when the key exists)."""
    identity: dict[str, Any] = {"type": "Unknown", "accessKeyId": access_key_id}
    if account_id:
        identity["accountId"] = account_id
    return identity


def event_time(moment: datetime) -> str:
    """``moment.strftime("%Y-%m-%dT%H:%M:%SZ")`` (its fields as they are, no conversion),
    in a third of the time."""
    return "%d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031 (the fastest spelling)
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
    )
