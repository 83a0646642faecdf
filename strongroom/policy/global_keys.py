"""The global condition keys of a request (``aws:...``): who calls, from where, in which
organization (IAM User Guide, "AWS global condition context keys").

The authorizer builds them here for every check, role trust policies (sts:AssumeRole)
included.
"""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.clock import from_ms
from strongroom.types import Principal

Keys = dict[str, tuple[str, ...]]

_PRINCIPAL_TYPES = {
    "user": "User",
    "assumed-role": "AssumedRole",
    "federated-user": "FederatedUser",
    "root": "Account",
}


def global_keys(
    principal: Principal,
    *,
    user_id: str | None,
    user_name: str | None,
    tags: Mapping[str, str],
    organization_id: str | None,
    source_ip: str,
    region: str,
    secure_transport: bool = False,
) -> Keys:
    """The global keys of a request by ``principal``.

    Temporary credentials carry ``aws:TokenIssueTime`` and ``aws:MultiFactorAuthPresent``
    ("true" only if they were obtained with an MFA code); long-term keys carry neither
    (AWS: which is why "MFA required" policies use ``BoolIfExists``).
    ``aws:MultiFactorAuthAge`` moves with the clock: :func:`multi_factor_auth_age`.
    ``aws:PrincipalIsAWSService`` is "false": every caller here is an IAM principal.

    ``tags`` are the IAM user's or role's own (the session's tags win over them);
    ``organization_id`` is that of the principal's account, None outside an organization
    (then ``aws:PrincipalOrgID`` is absent, as on AWS); an empty ``source_ip`` (a call
    made inside the server) leaves ``aws:SourceIp`` out.
    """
    keys: Keys = {
        # A federated user's ARN is its own (its policies are the calling user's).
        "aws:PrincipalArn": (
            principal.arn if principal.kind == "federated-user" else principal.identity_arn,
        ),
        "aws:PrincipalAccount": (principal.account_id,),
        "aws:PrincipalType": (_PRINCIPAL_TYPES[principal.kind],),
        "aws:SecureTransport": ("true" if secure_transport else "false",),
        "aws:RequestedRegion": (region,),
        "aws:ViaAWSService": ("false",),
        "aws:PrincipalIsAWSService": ("false",),
    }
    if principal.session_token:
        if principal.token_issued_ms is not None:
            keys["aws:TokenIssueTime"] = (_iso(principal.token_issued_ms),)
        mfa = principal.mfa_authenticated_ms is not None
        keys["aws:MultiFactorAuthPresent"] = ("true" if mfa else "false",)
    if source_ip:
        keys["aws:SourceIp"] = (source_ip,)
    if organization_id is not None:
        keys["aws:PrincipalOrgID"] = (organization_id,)
    if user_id is not None:
        keys["aws:userid"] = (user_id,)
    if user_name is not None and principal.kind == "user":
        keys["aws:username"] = (user_name,)
    merged = {**tags, **dict(principal.session_tags)}
    for key, value in merged.items():
        keys[f"aws:PrincipalTag/{key}"] = (value,)
    if principal.source_identity:
        keys["aws:SourceIdentity"] = (principal.source_identity,)
    return keys


def multi_factor_auth_age(principal: Principal, epoch_seconds: int) -> Keys:
    """``aws:MultiFactorAuthAge`` at ``epoch_seconds``: whole seconds since the principal's MFA code
    was verified; no key for credentials obtained without MFA (AWS: "If MFA was not used,
    this key is not present")."""
    verified = principal.mfa_authenticated_ms
    if verified is None or not principal.session_token:
        return {}
    age = max(0, epoch_seconds - verified // 1000)
    return {"aws:MultiFactorAuthAge": (str(age),)}


def _iso(ms: int) -> str:
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%SZ")
