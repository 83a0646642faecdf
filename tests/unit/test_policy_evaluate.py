"""strongroom.policy.evaluate: AWS's policy evaluation logic, case by case.

The cases follow the IAM User Guide ("Policy evaluation logic", "Cross-account policy
evaluation logic", "Permissions boundaries", "Session policies", "Principal",
"NotPrincipal", "Condition operators", "Conditions with multiple context keys or
values", "Variables and tags") and the KMS Developer Guide ("Key policies"). Each case
names the rule it checks; the AWS examples (Carlos's log bucket, Shirley's boundary, the
DynamoDB set-operator tables) are reproduced with their documented outcomes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from strongroom.policy.document import PolicyDocument, PolicyKind
from strongroom.policy.evaluate import (
    Decision,
    PolicySet,
    RequestContext,
    access_denied_message,
    clear_caches,
    evaluate,
    load_policy,
)
from strongroom.policy.matching import action_matches, arn_matches
from strongroom.protocol.errors import ServiceError

ACCOUNT = "111122223333"
OTHER = "444455556666"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
OTHER_ROOT = f"arn:aws:iam::{OTHER}:root"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
CAROL = f"arn:aws:iam::{OTHER}:user/carol"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app/Reader"  # a path the session ARN does not show
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/s1"
SESSION_2 = f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/s2"
WRITER_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Writer/s1"
OTHER_SESSION = f"arn:aws:sts::{OTHER}:assumed-role/Reader/s1"
FEDERATED = f"arn:aws:sts::{ACCOUNT}:federated-user/dave"
SERVICE = "secretsmanager.amazonaws.com"

GET = "secretsmanager:GetSecretValue"
PUT = "secretsmanager:PutSecretValue"
LIST = "secretsmanager:ListSecrets"
DECRYPT = "kms:Decrypt"
SECRET_PREFIX = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:"
SECRET = f"{SECRET_PREFIX}MyApp/DBCredentials-AbCdEf"
OTHER_SECRET = f"{SECRET_PREFIX}Other/Thing-ZyXwVu"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


# --------------------------------------------------------------------------- builders


def stmt(
    effect: str = "Allow", action: Any = GET, resource: Any = "*", **extra: Any
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": effect}
    if "NotAction" not in extra:
        statement["Action"] = action
    if "NotResource" not in extra:
        statement["Resource"] = resource
    statement.update(extra)
    return statement


def allow(action: Any = GET, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return stmt("Allow", action, resource, **extra)


def deny(action: Any = GET, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return stmt("Deny", action, resource, **extra)


def doc(
    *statements: dict[str, Any], kind: PolicyKind = "identity", version: str | None = "2012-10-17"
) -> PolicyDocument:
    body: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        body["Version"] = version
    return load_policy(json.dumps(body), kind)


def rdoc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> PolicyDocument:
    return doc(*statements, kind="resource", version=version)


def to(*principals: str) -> dict[str, Any]:
    """A Principal element naming AWS principals."""
    return {"AWS": list(principals) if len(principals) > 1 else principals[0]}


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else ACCOUNT


def req(
    principal: str = ALICE,
    action: str = GET,
    resource: str = SECRET,
    resource_account: str | None = "",
    **context: Any,
) -> RequestContext:
    """A request; ``context`` keywords name condition keys with ``_`` for the first colon
    and ``__`` for a slash (``aws_PrincipalTag__team`` is ``aws:PrincipalTag/team``)."""
    if resource_account == "":
        resource_account = None if resource == "*" else account_of(resource)
    keys = {
        name.replace("__", "/").replace("_", ":", 1): (
            value if isinstance(value, tuple) else (value,)
        )
        for name, value in context.items()
    }
    return RequestContext(
        principal, account_of(principal), action, resource, resource_account, keys
    )


# --------------------------------------------------------------------------- the table


@dataclass
class Case:
    name: str
    request: RequestContext
    policies: PolicySet
    allowed: bool
    reason: str
    denied_by: str | None = None
    key_policy: bool = False
    matched: tuple[tuple[str, int], ...] | None = None


ALLOW_GET = doc(allow())
ALLOW_ALL = doc(allow("*"))
ALLOW_KMS = doc(allow("kms:*"))
BOUNDARY_SM = doc(allow("secretsmanager:*"))
BOUNDARY_S3 = doc(allow(["s3:*", "cloudwatch:*", "ec2:*"]))
SESSION_GET = doc(allow(GET))
SESSION_PUT = doc(allow(PUT))

CARLOS = "arn:aws:iam::123456789012:user/carlossalazar"
CARLOS_POLICY = doc(
    allow(
        [
            "s3:GetBucketLocation",
            "s3:GetAccountPublicAccessBlock",
            "s3:ListAccessPoints",
            "s3:ListAllMyBuckets",
        ],
        "arn:aws:s3:::*",
        Sid="AllowS3ListRead",
    ),
    allow(
        "s3:*", ["arn:aws:s3:::carlossalazar/*", "arn:aws:s3:::carlossalazar"], Sid="AllowS3Self"
    ),
    deny("s3:*", "arn:aws:s3:::*log*", Sid="DenyS3Logs"),
)
CARLOS_BUCKET = rdoc(
    allow(
        "s3:*", ["arn:aws:s3:::carlossalazar/*", "arn:aws:s3:::carlossalazar"], Principal=to(CARLOS)
    )
)


def s3(principal: str, resource: str, action: str = "s3:PutObject") -> RequestContext:
    return RequestContext(principal, "123456789012", action, resource, "123456789012", {})


CASES: list[Case] = [
    # ---- basics: implicit deny, allow, explicit deny overrides
    Case(
        "no policies: implicit deny by identity",
        req(),
        PolicySet(),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "identity allow",
        req(),
        PolicySet(identity=[ALLOW_GET]),
        True,
        "allowed",
        matched=(("identity[0]", 0),),
    ),
    Case(
        "identity allow, deny in another identity policy wins",
        req(),
        PolicySet(identity=[ALLOW_ALL, doc(deny())]),
        False,
        "explicit_deny",
        "identity",
        matched=(("identity[1]", 0),),
    ),
    Case(
        "explicit deny in the resource policy overrides an identity allow",
        req(),
        PolicySet(identity=[ALLOW_ALL], resource=rdoc(deny(Principal="*"))),
        False,
        "explicit_deny",
        "resource",
    ),
    Case(
        "explicit deny in a permissions boundary",
        req(),
        PolicySet(identity=[ALLOW_ALL], permissions_boundary=doc(allow("*"), deny())),
        False,
        "explicit_deny",
        "permissions_boundary",
    ),
    Case(
        "explicit deny in a session policy",
        req(SESSION),
        PolicySet(identity=[ALLOW_ALL], session_policies=[doc(allow("*"), deny())]),
        False,
        "explicit_deny",
        "session",
    ),
    Case(
        "a deny for another action does not apply",
        req(),
        PolicySet(identity=[ALLOW_ALL, doc(deny(PUT))]),
        True,
        "allowed",
    ),
    # ---- the Carlos example ("Example identity-based and resource-based policy evaluation")
    Case(
        "Carlos: PutObject to carlossalazar-logs is denied by DenyS3Logs",
        s3(CARLOS, "arn:aws:s3:::carlossalazar-logs/file"),
        PolicySet(identity=[CARLOS_POLICY], resource=CARLOS_BUCKET),
        False,
        "explicit_deny",
        "identity",
        matched=(("identity[0]", 2),),
    ),
    Case(
        "Carlos: PutObject to carlossalazar is allowed by both policies",
        s3(CARLOS, "arn:aws:s3:::carlossalazar/file"),
        PolicySet(identity=[CARLOS_POLICY], resource=CARLOS_BUCKET),
        True,
        "allowed",
    ),
    Case(
        "Carlos: the bucket policy alone allows (same account, user named)",
        s3(CARLOS, "arn:aws:s3:::carlossalazar/file"),
        PolicySet(resource=CARLOS_BUCKET),
        True,
        "allowed",
        matched=(("resource", 0),),
    ),
    Case(
        "Carlos: the identity policy alone allows",
        s3(CARLOS, "arn:aws:s3:::carlossalazar/file"),
        PolicySet(identity=[CARLOS_POLICY]),
        True,
        "allowed",
        matched=(("identity[0]", 1),),
    ),
    # ---- NotAction / NotResource
    Case(
        "Allow NotAction iam:* allows secretsmanager",
        req(),
        PolicySet(identity=[doc(allow(NotAction="iam:*"))]),
        True,
        "allowed",
    ),
    Case(
        "Allow NotAction iam:* does not allow iam:CreateUser",
        req(action="iam:CreateUser", resource=f"arn:aws:iam::{ACCOUNT}:user/x"),
        PolicySet(identity=[doc(allow(NotAction="iam:*"))]),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "Deny NotAction denies every other action",
        req(action=PUT),
        PolicySet(identity=[ALLOW_ALL, doc(deny(NotAction=[GET, LIST]))]),
        False,
        "explicit_deny",
        "identity",
    ),
    Case(
        "Deny NotAction spares the listed actions",
        req(),
        PolicySet(identity=[ALLOW_ALL, doc(deny(NotAction=[GET, LIST]))]),
        True,
        "allowed",
    ),
    Case(
        "Deny NotResource denies other secrets",
        req(resource=OTHER_SECRET),
        PolicySet(identity=[ALLOW_ALL, doc(deny("*", NotResource=SECRET))]),
        False,
        "explicit_deny",
        "identity",
    ),
    Case(
        "Deny NotResource spares the listed secret",
        req(),
        PolicySet(identity=[ALLOW_ALL, doc(deny("*", NotResource=SECRET))]),
        True,
        "allowed",
    ),
    Case(
        "Allow NotResource excludes the listed secret",
        req(),
        PolicySet(identity=[doc(allow(NotResource=f"{SECRET_PREFIX}MyApp/*"))]),
        False,
        "implicit_deny",
        "identity",
    ),
    # ---- the seed example: GetSecretValue on MyApp/DBCredentials-*
    Case(
        "seed policy: reads exactly that secret",
        req(),
        PolicySet(identity=[doc(allow(GET, f"{SECRET_PREFIX}MyApp/DBCredentials-*"))]),
        True,
        "allowed",
    ),
    Case(
        "seed policy: not another secret",
        req(resource=OTHER_SECRET),
        PolicySet(identity=[doc(allow(GET, f"{SECRET_PREFIX}MyApp/DBCredentials-*"))]),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "seed policy: not another action",
        req(action=PUT),
        PolicySet(identity=[doc(allow(GET, f"{SECRET_PREFIX}MyApp/DBCredentials-*"))]),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "an action on * is allowed only by Resource *",
        req(action=LIST, resource="*"),
        PolicySet(identity=[doc(allow(LIST, f"{SECRET_PREFIX}*"))]),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "an action on * is allowed by Resource *",
        req(action=LIST, resource="*"),
        PolicySet(identity=[doc(allow(LIST, "*"))]),
        True,
        "allowed",
    ),
    # ---- same account: resource policies and who they name
    Case(
        "same account: resource policy naming the user allows without identity policy",
        req(),
        PolicySet(resource=rdoc(allow(Principal=to(ALICE)))),
        True,
        "allowed",
    ),
    Case(
        "same account: a user named directly is not limited by its boundary",
        req(),
        PolicySet(resource=rdoc(allow(Principal=to(ALICE))), permissions_boundary=BOUNDARY_S3),
        True,
        "allowed",
    ),
    Case(
        "same account: naming another user does not allow",
        req(BOB),
        PolicySet(resource=rdoc(allow(Principal=to(ALICE)))),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "same account: naming the account delegates; no identity policy, no access",
        req(),
        PolicySet(resource=rdoc(allow(Principal=to(ACCOUNT)))),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "same account: naming the account root ARN delegates too",
        req(),
        PolicySet(resource=rdoc(allow(Principal=to(ROOT)))),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "same account: account named and identity allows",
        req(),
        PolicySet(identity=[ALLOW_GET], resource=rdoc(allow(Principal=to(ROOT)))),
        True,
        "allowed",
    ),
    Case(
        "same account: Principal * allows without identity policy",
        req(),
        PolicySet(resource=rdoc(allow(Principal="*"))),
        True,
        "allowed",
    ),
    Case(
        'same account: {"AWS": "*"} allows, and is not limited by a boundary',
        req(),
        PolicySet(resource=rdoc(allow(Principal=to("*"))), permissions_boundary=BOUNDARY_S3),
        True,
        "allowed",
    ),
    Case(
        "same account: role named; its session is allowed without identity policy",
        req(SESSION),
        PolicySet(resource=rdoc(allow(Principal=to(ROLE)))),
        True,
        "allowed",
    ),
    Case(
        "same account: role named; limited by the role's boundary",
        req(SESSION),
        PolicySet(resource=rdoc(allow(Principal=to(ROLE))), permissions_boundary=BOUNDARY_S3),
        False,
        "implicit_deny",
        "permissions_boundary",
    ),
    Case(
        "same account: role named; limited by the session policy",
        req(SESSION),
        PolicySet(resource=rdoc(allow(Principal=to(ROLE))), session_policies=[SESSION_PUT]),
        False,
        "implicit_deny",
        "session",
    ),
    Case(
        "same account: role named; boundary and session policy allow",
        req(SESSION),
        PolicySet(
            resource=rdoc(allow(Principal=to(ROLE))),
            permissions_boundary=BOUNDARY_SM,
            session_policies=[SESSION_GET],
        ),
        True,
        "allowed",
    ),
    Case(
        "same account: session named; not limited by boundary or session policy",
        req(SESSION),
        PolicySet(
            resource=rdoc(allow(Principal=to(SESSION))),
            permissions_boundary=BOUNDARY_S3,
            session_policies=[SESSION_PUT],
        ),
        True,
        "allowed",
    ),
    Case(
        "same account: another session of the role is not the named session",
        req(SESSION_2),
        PolicySet(resource=rdoc(allow(Principal=to(SESSION)))),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "same account: a session of another role does not match the role",
        req(WRITER_SESSION),
        PolicySet(resource=rdoc(allow(Principal=to(ROLE)))),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "same account: a federated user named directly",
        req(FEDERATED),
        PolicySet(resource=rdoc(allow(Principal=to(FEDERATED)))),
        True,
        "allowed",
    ),
    Case(
        "unique id principal (AIDA...) matches the user with that aws:userid",
        req(aws_userid="AIDAEXAMPLEALICE0001"),
        PolicySet(resource=rdoc(allow(Principal=to("AIDAEXAMPLEALICE0001")))),
        True,
        "allowed",
    ),
    Case(
        "unique id principal of a role (AROA...) matches its sessions, limited by boundary",
        req(SESSION, aws_userid="AROAEXAMPLEREADER001:s1"),
        PolicySet(
            resource=rdoc(allow(Principal=to("AROAEXAMPLEREADER001"))),
            permissions_boundary=BOUNDARY_S3,
        ),
        False,
        "implicit_deny",
        "permissions_boundary",
    ),
    # ---- boundaries and session policies (identity side)
    Case(
        "Shirley: the boundary does not allow iam:CreateUser",
        req(action="iam:CreateUser", resource=f"arn:aws:iam::{ACCOUNT}:user/new"),
        PolicySet(identity=[doc(allow("iam:CreateUser"))], permissions_boundary=BOUNDARY_S3),
        False,
        "implicit_deny",
        "permissions_boundary",
    ),
    Case(
        "Shirley: a boundary alone grants nothing",
        req(action="s3:GetObject", resource="arn:aws:s3:::bucket/key"),
        PolicySet(permissions_boundary=BOUNDARY_S3),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "identity and boundary both allow",
        req(),
        PolicySet(identity=[ALLOW_GET], permissions_boundary=BOUNDARY_SM),
        True,
        "allowed",
        matched=(("identity[0]", 0), ("permissions_boundary", 0)),
    ),
    Case(
        "role session without session policies: the role's identity policy suffices",
        req(SESSION),
        PolicySet(identity=[ALLOW_GET]),
        True,
        "allowed",
    ),
    Case(
        "session policy narrows the role's permissions",
        req(SESSION, action=PUT),
        PolicySet(identity=[doc(allow([GET, PUT]))], session_policies=[SESSION_GET]),
        False,
        "implicit_deny",
        "session",
    ),
    Case(
        "session policy allows within the role's permissions",
        req(SESSION),
        PolicySet(identity=[doc(allow([GET, PUT]))], session_policies=[SESSION_GET]),
        True,
        "allowed",
        matched=(("identity[0]", 0), ("session[0]", 0)),
    ),
    Case(
        "inline and managed session policies combine like identity policies",
        req(SESSION, action=PUT),
        PolicySet(identity=[doc(allow([GET, PUT]))], session_policies=[SESSION_GET, SESSION_PUT]),
        True,
        "allowed",
    ),
    Case(
        "a session policy grants nothing beyond the identity policy",
        req(SESSION, action=PUT),
        PolicySet(identity=[ALLOW_GET], session_policies=[doc(allow("*"))]),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "boundary, session policy and identity policy all allow",
        req(SESSION),
        PolicySet(
            identity=[ALLOW_ALL], permissions_boundary=BOUNDARY_SM, session_policies=[SESSION_GET]
        ),
        True,
        "allowed",
    ),
    Case(
        "federated-user session without a session policy has no permissions",
        req(FEDERATED),
        PolicySet(identity=[ALLOW_GET]),
        False,
        "implicit_deny",
        "session",
    ),
    Case(
        "federated-user session with a session policy",
        req(FEDERATED),
        PolicySet(identity=[ALLOW_GET], session_policies=[SESSION_GET]),
        True,
        "allowed",
    ),
    # ---- cross account: both sides must allow
    Case(
        "cross account: identity allow alone is not enough",
        req(CAROL),
        PolicySet(identity=[ALLOW_ALL]),
        False,
        "implicit_deny",
        "resource",
    ),
    Case(
        "cross account: resource policy naming the user, no identity policy",
        req(CAROL),
        PolicySet(resource=rdoc(allow(Principal=to(CAROL)))),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "cross account: resource policy names the account, identity allows",
        req(CAROL),
        PolicySet(identity=[ALLOW_GET], resource=rdoc(allow(Principal=to(OTHER)))),
        True,
        "allowed",
        matched=(("resource", 0), ("identity[0]", 0)),
    ),
    Case(
        "cross account: resource policy names the user, identity allows",
        req(CAROL),
        PolicySet(identity=[ALLOW_GET], resource=rdoc(allow(Principal=to(CAROL)))),
        True,
        "allowed",
    ),
    Case(
        "cross account: Principal * still needs the caller's identity policy",
        req(CAROL),
        PolicySet(resource=rdoc(allow(Principal="*"))),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "cross account: the resource policy names a different account",
        req(CAROL),
        PolicySet(identity=[ALLOW_GET], resource=rdoc(allow(Principal=to(ACCOUNT)))),
        False,
        "implicit_deny",
        "resource",
    ),
    Case(
        "cross account: the caller's boundary applies",
        req(CAROL),
        PolicySet(
            identity=[ALLOW_GET],
            resource=rdoc(allow(Principal=to(CAROL))),
            permissions_boundary=BOUNDARY_S3,
        ),
        False,
        "implicit_deny",
        "permissions_boundary",
    ),
    Case(
        "cross account: the caller's session policy applies even to a named session",
        req(OTHER_SESSION),
        PolicySet(
            identity=[ALLOW_GET],
            resource=rdoc(allow(Principal=to(OTHER_SESSION))),
            session_policies=[SESSION_PUT],
        ),
        False,
        "implicit_deny",
        "session",
    ),
    Case(
        "cross account: a role in the other account matches its sessions there",
        req(OTHER_SESSION),
        PolicySet(
            identity=[ALLOW_GET],
            resource=rdoc(allow(Principal=to(f"arn:aws:iam::{OTHER}:role/Reader"))),
        ),
        True,
        "allowed",
    ),
    Case(
        "cross account: the same role name in the resource's account does not match",
        req(OTHER_SESSION),
        PolicySet(identity=[ALLOW_GET], resource=rdoc(allow(Principal=to(ROLE)))),
        False,
        "implicit_deny",
        "resource",
    ),
    Case(
        "cross account: an explicit deny in the resource policy",
        req(CAROL),
        PolicySet(
            identity=[ALLOW_GET],
            resource=rdoc(allow(Principal=to(OTHER)), deny(Principal=to(CAROL))),
        ),
        False,
        "explicit_deny",
        "resource",
    ),
    Case(
        "cross account: a deny naming the caller's account covers its users",
        req(CAROL),
        PolicySet(
            identity=[ALLOW_GET], resource=rdoc(allow(Principal="*"), deny(Principal=to(OTHER)))
        ),
        False,
        "explicit_deny",
        "resource",
    ),
    # ---- the root user
    Case("root: everything in its own account", req(ROOT), PolicySet(), True, "allowed"),
    Case(
        "root: a resource-policy deny still applies",
        req(ROOT),
        PolicySet(resource=rdoc(deny(Principal="*"))),
        False,
        "explicit_deny",
        "resource",
    ),
    Case(
        "root of another account: needs the resource policy",
        req(OTHER_ROOT),
        PolicySet(),
        False,
        "implicit_deny",
        "resource",
    ),
    Case(
        "root of another account: named account in the resource policy",
        req(OTHER_ROOT),
        PolicySet(resource=rdoc(allow(Principal=to(OTHER)))),
        True,
        "allowed",
    ),
    # ---- service principals
    Case(
        "service principal named in the resource policy",
        req(SERVICE, resource_account=ACCOUNT),
        PolicySet(resource=rdoc(allow(Principal={"Service": SERVICE}))),
        True,
        "allowed",
    ),
    Case(
        "a service principal does not match a user",
        req(),
        PolicySet(resource=rdoc(allow(Principal={"Service": SERVICE}))),
        False,
        "implicit_deny",
        "identity",
    ),
    Case(
        "a service not named is denied",
        req("lambda.amazonaws.com", resource_account=ACCOUNT),
        PolicySet(resource=rdoc(allow(Principal={"Service": SERVICE}))),
        False,
        "implicit_deny",
        "identity",
    ),
    # ---- NotPrincipal
    Case(
        "Deny NotPrincipal naming the user and its account spares the user",
        req(),
        PolicySet(
            identity=[ALLOW_GET],
            resource=rdoc(deny(NotPrincipal=to(ALICE, ROOT))),
        ),
        True,
        "allowed",
    ),
    Case(
        "Deny NotPrincipal denies everyone else",
        req(BOB),
        PolicySet(identity=[ALLOW_GET], resource=rdoc(deny(NotPrincipal=to(ALICE, ROOT)))),
        False,
        "explicit_deny",
        "resource",
    ),
    Case(
        "Deny NotPrincipal naming the user without its account denies the user",
        req(),
        PolicySet(identity=[ALLOW_GET], resource=rdoc(deny(NotPrincipal=to(ALICE)))),
        False,
        "explicit_deny",
        "resource",
    ),
    Case(
        "Deny NotPrincipal: a session is spared with session, role and account listed",
        req(SESSION),
        PolicySet(identity=[ALLOW_GET], resource=rdoc(deny(NotPrincipal=to(SESSION, ROLE, ROOT)))),
        True,
        "allowed",
    ),
    Case(
        "Deny NotPrincipal: a session is denied when its role is not listed",
        req(SESSION),
        PolicySet(identity=[ALLOW_GET], resource=rdoc(deny(NotPrincipal=to(SESSION, ROOT)))),
        False,
        "explicit_deny",
        "resource",
    ),
    Case(
        "Allow NotPrincipal grants everyone not listed",
        req(),
        PolicySet(resource=rdoc(allow(NotPrincipal=to(BOB)))),
        True,
        "allowed",
    ),
    Case(
        "Allow NotPrincipal does not grant the listed user",
        req(BOB),
        PolicySet(resource=rdoc(allow(NotPrincipal=to(BOB)))),
        False,
        "implicit_deny",
        "identity",
    ),
    # ---- KMS key policies (key_policy=True)
    Case(
        "KMS: key policy enables IAM policies (root) and the identity policy allows",
        req(action=DECRYPT, resource=KEY),
        PolicySet(identity=[ALLOW_KMS], resource=rdoc(allow("kms:*", Principal=to(ROOT)))),
        True,
        "allowed",
        key_policy=True,
        matched=(("identity[0]", 0), ("resource", 0)),
    ),
    Case(
        "KMS: root delegation without an identity policy",
        req(action=DECRYPT, resource=KEY),
        PolicySet(resource=rdoc(allow("kms:*", Principal=to(ROOT)))),
        False,
        "implicit_deny",
        "identity",
        key_policy=True,
    ),
    Case(
        "KMS: IAM policies alone allow nothing when the key policy does not delegate",
        req(action=DECRYPT, resource=KEY),
        PolicySet(identity=[ALLOW_ALL], resource=rdoc(allow("kms:*", Principal=to(BOB)))),
        False,
        "implicit_deny",
        "resource",
        key_policy=True,
    ),
    Case(
        "KMS: no key policy, no access",
        req(action=DECRYPT, resource=KEY),
        PolicySet(identity=[ALLOW_ALL]),
        False,
        "implicit_deny",
        "resource",
        key_policy=True,
    ),
    Case(
        "KMS: the key policy names the user directly",
        req(action=DECRYPT, resource=KEY),
        PolicySet(resource=rdoc(allow("kms:Decrypt", Principal=to(ALICE)))),
        True,
        "allowed",
        key_policy=True,
    ),
    Case(
        "KMS: the key policy allows other actions only",
        req(action=DECRYPT, resource=KEY),
        PolicySet(identity=[ALLOW_KMS], resource=rdoc(allow("kms:Describe*", Principal=to(ROOT)))),
        False,
        "implicit_deny",
        "resource",
        key_policy=True,
    ),
    Case(
        "KMS: the root user needs the key policy too",
        req(ROOT, action=DECRYPT, resource=KEY),
        PolicySet(resource=rdoc(allow("kms:*", Principal=to(ALICE)))),
        False,
        "implicit_deny",
        "resource",
        key_policy=True,
    ),
    Case(
        "KMS: the root user with the default key policy",
        req(ROOT, action=DECRYPT, resource=KEY),
        PolicySet(resource=rdoc(allow("kms:*", Principal=to(ROOT)))),
        True,
        "allowed",
        key_policy=True,
    ),
    Case(
        "KMS: an IAM deny applies without key-policy permission",
        req(action=DECRYPT, resource=KEY),
        PolicySet(
            identity=[doc(deny(DECRYPT))], resource=rdoc(allow("kms:*", Principal=to(ALICE)))
        ),
        False,
        "explicit_deny",
        "identity",
        key_policy=True,
    ),
    Case(
        "KMS cross account: key policy names the account, identity allows",
        req(CAROL, action=DECRYPT, resource=KEY),
        PolicySet(identity=[ALLOW_KMS], resource=rdoc(allow(DECRYPT, Principal=to(OTHER_ROOT)))),
        True,
        "allowed",
        key_policy=True,
    ),
    Case(
        "KMS cross account: key policy names the account, no identity policy",
        req(CAROL, action=DECRYPT, resource=KEY),
        PolicySet(resource=rdoc(allow(DECRYPT, Principal=to(OTHER_ROOT)))),
        False,
        "implicit_deny",
        "identity",
        key_policy=True,
    ),
    Case(
        "KMS: resource policy for a non-key resource works without key_policy",
        req(),
        PolicySet(identity=[ALLOW_GET], resource=rdoc(allow("kms:*", Principal=to(BOB)))),
        True,
        "allowed",
    ),
    # ---- policy labels
    Case(
        "labels come from the names given",
        req(SESSION),
        PolicySet(
            identity=[ALLOW_GET],
            identity_names=["arn:aws:iam::111122223333:policy/Readers"],
            session_policies=[SESSION_GET],
            session_names=["inline"],
        ),
        True,
        "allowed",
        matched=(("arn:aws:iam::111122223333:policy/Readers", 0), ("inline", 0)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_evaluation_logic(case: Case) -> None:
    decision = evaluate(case.request, case.policies, key_policy=case.key_policy)
    assert (decision.allowed, decision.reason, decision.denied_by) == (
        case.allowed,
        case.reason,
        case.denied_by,
    )
    if case.matched is not None:
        assert decision.matched == case.matched
    if case.reason == "explicit_deny":
        assert decision.matched, "an explicit deny names the statements that denied"
    if case.reason == "implicit_deny":
        assert decision.matched == ()


def test_case_names_are_unique() -> None:
    assert len({case.name for case in CASES}) == len(CASES)


def test_all_applicable_denies_are_listed() -> None:
    policies = PolicySet(
        identity=[doc(deny("secretsmanager:*"), allow("*"), deny())],
        resource=rdoc(deny(Principal="*")),
        permissions_boundary=doc(deny()),
    )
    decision = evaluate(req(), policies)
    assert decision.denied_by == "identity"
    assert decision.matched == (
        ("identity[0]", 0),
        ("identity[0]", 2),
        ("resource", 0),
        ("permissions_boundary", 0),
    )


# --------------------------------------------------------------------------- conditions

MISSING = object()  # the request has no such key

ConditionCase = tuple[str, dict[str, Any], dict[str, tuple[str, ...]], bool]


def family(spec: tuple[str, str, Any], *rows: tuple[str, Any, bool]) -> list[ConditionCase]:
    """Cases of one (operator, key, policy value): each row gives a name, the request's
    value (a string, a tuple of values, or MISSING) and the outcome."""
    operator, key, value = spec
    cases: list[ConditionCase] = []
    for name, request, expected in rows:
        if request is MISSING:
            context: dict[str, tuple[str, ...]] = {}
        else:
            context = {key: request if isinstance(request, tuple) else (request,)}
        cases.append((f"{operator} {name}", {operator: {key: value}}, context, expected))
    return cases


def block(
    name: str, condition: dict[str, Any], context: dict[str, Any], expected: bool
) -> ConditionCase:
    """A case with a whole Condition block and several request keys."""
    values = {k: v if isinstance(v, tuple) else (v,) for k, v in context.items()}
    return (name, condition, values, expected)


TAG_KEYS = "aws:TagKeys"
ATTRS = "dynamodb:requestedAttributes"
IP = "aws:SourceIp"
NOW = "aws:CurrentTime"
USER = "aws:username"
SRC = "aws:SourceArn"
B64 = "QmluYXJ5VmFsdWVJbkJhc2U2NA=="
V6 = ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]
TIME = "2025-06-01T12:00:00Z"

CONDITIONS: list[ConditionCase] = [
    # String
    *family(
        ("StringEquals", USER, "alice"),
        ("matches", "alice", True),
        ("is case-sensitive", "Alice", False),
        ("on a missing key is false", MISSING, False),
    ),
    *family(("StringEquals", USER, ["bob", "alice"]), ("values are ORed", "alice", True)),
    *family(
        ("StringEquals", "s:k", "MyApp/*"),
        ("treats * literally", "MyApp/DB", False),
        ("matches a literal *", "MyApp/*", True),
    ),
    *family(("StringEquals", "s:k", []), ("with no values never matches", "x", False)),
    *family(
        ("StringNotEquals", USER, "bob"),
        ("with a different value", "alice", True),
        ("with the value", "bob", False),
        ("on a missing key is true", MISSING, True),
    ),
    *family(("StringNotEquals", USER, ["bob", "alice"]), ("values are NORed", "alice", False)),
    *family(
        ("StringEqualsIgnoreCase", USER, "ALICE"),
        ("ignores case", "alice", True),
        ("still compares", "alicia", False),
        ("on a missing key is false", MISSING, False),
    ),
    *family(
        ("StringNotEqualsIgnoreCase", USER, "ALICE"),
        ("ignores case", "alice", False),
        ("with a different value", "bob", True),
        ("on a missing key is true", MISSING, True),
    ),
    *family(
        ("StringLike", "s:k", "MyApp/*"),
        ("with *", "MyApp/DB", True),
        ("with * matching nothing", "MyApp/", True),
        ("is case-sensitive", "myapp/DB", False),
        ("on a missing key is false", MISSING, False),
    ),
    *family(
        ("StringLike", "s:k", "MyApp/D?"),
        ("? is one character", "MyApp/DB", True),
        ("? is exactly one character", "MyApp/DBX", False),
    ),
    *family(("StringLike", "s:k", "App*"), ("matches the whole value", "MyApp", False)),
    *family(
        ("StringLike", "s:k", "a.b(c)*"),
        ("keeps regex characters literal", "a.b(c)d", True),
        ("does not read . as any character", "axb(c)d", False),
    ),
    *family(
        ("StringNotLike", "s:k", "MyApp/*"),
        ("without a match", "Other", True),
        ("with a match", "MyApp/x", False),
        ("on a missing key is true", MISSING, True),
    ),
    # Numeric
    *family(
        ("NumericEquals", "n:k", "30"),
        ("equal", "30", True),
        ("compares numbers, not text", "30.0", True),
        ("different", "31", False),
        ("request value not a number", "thirty", False),
        ("on a missing key is false", MISSING, False),
    ),
    *family(("NumericEquals", "n:k", 1e3), ("with an exponent", "1000", True)),
    *family(
        ("NumericNotEquals", "n:k", "30"),
        ("different", "7", True),
        ("equal", "30", False),
        ("on a missing key is true", MISSING, True),
    ),
    *family(
        ("NumericLessThan", "n:k", "30"),
        ("smaller", "7", True),
        ("is strict", "30", False),
        ("on a missing key is false", MISSING, False),
    ),
    *family(("NumericLessThan", "n:k", "-1"), ("negative numbers", "-2.5", True)),
    *family(
        ("NumericLessThanEquals", "n:k", "30"),
        ("equal", "30", True),
        ("larger", "30.01", False),
    ),
    *family(
        ("NumericGreaterThan", "n:k", "7"),
        ("larger", "30", True),
        ("is strict", "7", False),
    ),
    *family(
        ("NumericGreaterThanEquals", "n:k", "7"),
        ("equal", "7", True),
        ("smaller decimal", "6.99", False),
    ),
    # Date
    *family(
        ("DateLessThan", NOW, "2030-01-01T00:00:00Z"),
        ("earlier", TIME, True),
        ("later", "2031-01-01T00:00:00Z", False),
        ("request value not a date", "yesterday", False),
        ("on a missing key is false", MISSING, False),
    ),
    *family(
        ("DateGreaterThan", "aws:EpochTime", "2030-01-01T00:00:00Z"),
        ("epoch request against an ISO policy value", "1893456001", True),
        ("is strict", "1893456000", False),
    ),
    *family(
        ("DateEquals", NOW, TIME),
        ("across time zones", "2025-06-01T14:00:00+02:00", True),
        ("to the second", "2025-06-01T12:00:01Z", False),
    ),
    *family(("DateEquals", NOW, "2025-06-01T12:00:00"), ("without a zone is UTC", TIME, True)),
    *family(
        ("DateEquals", NOW, "2025-06-01"), ("a bare date is midnight", "2025-06-01T00:00:00Z", True)
    ),
    *family(
        ("DateEquals", NOW, "1748736000"), ("epoch policy value", "2025-06-01T00:00:00Z", True)
    ),
    # The W3C profiles of ISO 8601 that AWS accepts, partial dates meaning their start.
    *family(
        ("DateGreaterThan", NOW, "2020-01"),
        ("YYYY-MM: later", "2020-01-01T00:00:01Z", True),
        ("YYYY-MM: its first instant is not later", "2020-01-01T00:00:00Z", False),
    ),
    *family(
        ("DateGreaterThanEquals", NOW, "2020"),
        ("YYYY: the first instant of the year", "2020-01-01T00:00:00Z", True),
        ("YYYY: the year before", "2019-12-31T23:59:59Z", False),
    ),
    *family(
        ("DateLessThan", NOW, "1997-07-16T19:20+01:00"),
        ("hh:mm with a zone", "1997-07-16T18:19:59Z", True),
        ("hh:mm with a zone, equal", "1997-07-16T18:20:00Z", False),
    ),
    *family(
        ("DateEquals", NOW, "1997-07-16T19:20:30.45+01:00"),
        ("fractions of a second", "1997-07-16T18:20:30.45Z", True),
    ),
    *family(("DateLessThanEquals", NOW, TIME), ("equal", TIME, True)),
    *family(("DateGreaterThanEquals", NOW, TIME), ("equal", TIME, True)),
    *family(
        ("DateNotEquals", NOW, TIME),
        ("different", "2025-06-01T12:00:01Z", True),
        ("equal", TIME, False),
        ("on a missing key is true", MISSING, True),
    ),
    # Bool
    *family(
        ("Bool", "aws:SecureTransport", "true"),
        ("true", "true", True),
        ("false", "false", False),
        ("is case-insensitive", "TRUE", True),
        ("on a missing key is false", MISSING, False),
    ),
    *family(("Bool", "aws:SecureTransport", True), ("with a JSON true", "true", True)),
    *family(("Bool", "aws:SecureTransport", "false"), ("false matches false", "false", True)),
    *family(
        ("BoolIfExists", "aws:MultiFactorAuthPresent", "false"), ("on a missing key", MISSING, True)
    ),
    # Binary
    *family(
        ("BinaryEquals", "b:k", B64),
        ("same bytes", B64, True),
        ("other bytes", "b3RoZXI=", False),
        ("request value not base64", "not base64!", False),
        ("on a missing key is false", MISSING, False),
    ),
    # IP address
    *family(
        ("IpAddress", IP, "203.0.113.0/24"),
        ("inside the block", "203.0.113.7", True),
        ("outside the block", "198.51.100.1", False),
        ("request value not an address", "localhost", False),
        ("on a missing key is false", MISSING, False),
    ),
    *family(
        ("IpAddress", IP, "203.0.113.7"),
        ("without a prefix is /32", "203.0.113.7", True),
        ("/32 excludes the neighbour", "203.0.113.8", False),
    ),
    *family(
        ("IpAddress", IP, V6),
        ("IPv6 inside", "2001:db8:1234:5678::1", True),
        ("IPv6 outside", "2001:db8:1234:5679::1", False),
        ("IPv4 inside a mixed list", "203.0.113.200", True),
    ),
    *family(
        ("NotIpAddress", IP, "203.0.113.0/24"),
        ("outside the block", "198.51.100.1", True),
        ("inside the block", "203.0.113.9", False),
        ("on a missing key is true", MISSING, True),
    ),
    # ARN
    *family(
        ("ArnEquals", SRC, ROLE),
        ("same ARN", ROLE, True),
        ("other ARN", ALICE, False),
        ("on a missing key is false", MISSING, False),
    ),
    *family(("ArnEquals", SRC, "arn:aws:iam::*:role/app/Reader"), ("takes wildcards", ROLE, True)),
    *family(
        ("ArnLike", SRC, f"arn:aws:iam::{ACCOUNT}:role/*"),
        ("resource part spans slashes", ROLE, True),
        ("request value not an ARN", "Reader", False),
        ("on a missing key is false", MISSING, False),
    ),
    *family(("ArnLike", SRC, "arn:aws:iam::1111*:role/*"), ("wildcard in the account", ROLE, True)),
    *family(
        ("ArnLike", SRC, f"arn:aws:iam::{ACCOUNT}:role/app/reader"),
        ("is case-sensitive", ROLE, False),
    ),
    *family(
        ("ArnLike", SRC, "arn:aws:*:role/app/Reader"), ("keeps * within a segment", ROLE, False)
    ),
    *family(("StringLike", SRC, "arn:aws:*:role/app/Reader"), ("lets * span colons", ROLE, True)),
    *family(
        ("ArnNotEquals", SRC, ROLE),
        ("other ARN", ALICE, True),
        ("same ARN", ROLE, False),
        ("on a missing key is true", MISSING, True),
    ),
    *family(
        ("ArnNotLike", SRC, "arn:aws:iam::*:role/*"),
        ("with a match", ROLE, False),
        ("without a match", ALICE, True),
        ("on a missing key is true", MISSING, True),
    ),
    # Null
    *family(
        ("Null", "aws:TokenIssueTime", "true"),
        ("true on a missing key", MISSING, True),
        ("true on a present key", TIME, False),
    ),
    *family(
        ("Null", "aws:TokenIssueTime", "false"),
        ("false on a present key", TIME, True),
        ("false on a missing key", MISSING, False),
    ),
    *family(("Null", TAG_KEYS, "true"), ("true on an empty set", (), True)),
    # ...IfExists
    *family(
        ("StringEqualsIfExists", "s:k", "x"),
        ("on a missing key", MISSING, True),
        ("present and different", "y", False),
        ("present and equal", "x", True),
    ),
    *family(("StringNotEqualsIfExists", "s:k", "x"), ("present and equal", "x", False)),
    *family(
        ("NumericLessThanIfExists", "n:k", "1"),
        ("on a missing key", MISSING, True),
        ("present and larger", "2", False),
    ),
    *family(
        ("DateLessThanIfExists", NOW, "2000-01-01T00:00:00Z"), ("on a missing key", MISSING, True)
    ),
    *family(
        ("IpAddressIfExists", IP, "10.0.0.0/8"),
        ("on a missing key", MISSING, True),
        ("present outside", "11.0.0.1", False),
    ),
    *family(("ArnLikeIfExists", SRC, "arn:aws:iam::*:role/x"), ("on a missing key", MISSING, True)),
    *family(("BinaryEqualsIfExists", "b:k", "eA=="), ("on a missing key", MISSING, True)),
    # set operators: the DynamoDB tables of "Conditions with multiple context keys or values"
    *family(
        ("ForAllValues:StringLike", ATTRS, ["PostDateTime", "Message", "Tags"]),
        ("every requested attribute is listed", ("PostDateTime", "Message"), True),
        ("UserName is not listed", ("PostDateTime", "UserName"), False),
        ("on a missing key is true", MISSING, True),
        ("on an empty set is true", (), True),
    ),
    *family(
        ("ForAnyValue:StringLike", ATTRS, ["ID", "PostDateTime"]),
        ("PostDateTime is listed", ("UserName", "Message", "PostDateTime"), True),
        ("no requested attribute is listed", ("UserName",), False),
        ("on a missing key is false", MISSING, False),
        ("on an empty set is false", (), False),
    ),
    *family(
        ("ForAnyValue:StringNotEquals", TAG_KEYS, ["environment", "webserver"]),
        ("some tag key is not listed", ("environment", "owner"), True),
        ("every tag key is listed", ("environment", "webserver"), False),
        ("on a missing key is false", MISSING, False),
        # "Single-valued vs. multivalued context keys": an empty string is a null data set.
        ("on an empty-string set is false", ("",), False),
    ),
    *family(
        ("ForAllValues:StringNotEquals", TAG_KEYS, ["secret"]),
        ("no tag key is forbidden", ("a", "b"), True),
        ("one tag key is forbidden", ("a", "secret"), False),
        ("on a missing key is true", MISSING, True),
        ("on an empty-string set is true", ("",), True),
    ),
    *family(
        ("ForAllValues:StringEquals", TAG_KEYS, ["environment", "costcenter"]),
        ("every tag key is listed", ("environment",), True),
        ("on an empty-string set is true", ("",), True),
        ("on several empty strings is true", ("", ""), True),
        ("an empty string beside a value is a value", ("", "environment"), False),
    ),
    *family(
        ("ForAnyValue:StringEquals", TAG_KEYS, ["environment", ""]),
        ("on an empty-string set is false", ("",), False),
    ),
    # Without a set operator an empty string is an ordinary value.
    *family(("StringEquals", "s:k", ""), ("an empty string equals itself", ("",), True)),
    *family(("StringNotEquals", "s:k", "x"), ("an empty string is not x", ("",), True)),
    *family(
        ("ForAnyValue:StringEqualsIfExists", TAG_KEYS, ["a"]), ("on a missing key", MISSING, True)
    ),
    *family(
        ("ForAllValues:NumericLessThan", "n:k", "10"),
        ("all smaller", ("1", "9"), True),
        ("one too large", ("1", "10"), False),
    ),
    *family(
        ("ForAnyValue:IpAddress", IP, "10.0.0.0/8"), ("one inside", ("192.0.2.1", "10.1.2.3"), True)
    ),
    # a multivalued key without a set operator
    *family(("StringEquals", TAG_KEYS, "owner"), ("any of several values", ("a", "owner"), True)),
    *family(
        ("StringNotEquals", TAG_KEYS, "owner"),
        ("none of several values", ("a", "owner"), False),
        ("an empty set is a missing key", (), True),
    ),
    # case rules of names
    *family(
        ("StringEquals", "AWS:UserName", "alice"), ("key name case (policy side)", "alice", True)
    ),
    *family(("stringequals", USER, "alice"), ("operator name case", "alice", True)),
    block(
        "key name case (request side)", {"StringEquals": {USER: "a"}}, {"AWS:USERNAME": "a"}, True
    ),
    block(
        "tag keys ignore case",
        {"StringEquals": {"aws:PrincipalTag/Dept": "eng"}},
        {"aws:principaltag/dept": "eng"},
        True,
    ),
    block(
        "tag values keep case",
        {"StringEquals": {"aws:PrincipalTag/Dept": "eng"}},
        {"aws:principaltag/dept": "Eng"},
        False,
    ),
    # several keys and operators are ANDed
    block(
        "two keys: both hold",
        {"StringEquals": {"a:x": "1", "a:y": "2"}},
        {"a:x": "1", "a:y": "2"},
        True,
    ),
    block(
        "two keys: one fails",
        {"StringEquals": {"a:x": "1", "a:y": "2"}},
        {"a:x": "1", "a:y": "3"},
        False,
    ),
    block("two keys: one missing", {"StringEquals": {"a:x": "1", "a:y": "2"}}, {"a:x": "1"}, False),
    block(
        "two operators: both hold",
        {"StringEquals": {"a:x": "1"}, "Bool": {"b:t": "true"}},
        {"a:x": "1", "b:t": "true"},
        True,
    ),
    block(
        "two operators: one fails",
        {"StringEquals": {"a:x": "1"}, "Bool": {"b:t": "true"}},
        {"a:x": "1", "b:t": "false"},
        False,
    ),
]


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [case[1:] for case in CONDITIONS],
    ids=[case[0] for case in CONDITIONS],
)
def test_condition_operators(
    condition: dict[str, Any], context: dict[str, tuple[str, ...]], expected: bool
) -> None:
    request = RequestContext(ALICE, ACCOUNT, GET, SECRET, ACCOUNT, context)
    granted = evaluate(request, PolicySet(identity=[doc(allow(Condition=condition))]))
    assert granted.allowed is expected
    # The same condition on a Deny statement takes away exactly what it would grant.
    denied = evaluate(request, PolicySet(identity=[ALLOW_ALL, doc(deny(Condition=condition))]))
    assert denied.allowed is not expected


def test_condition_case_names_are_unique() -> None:
    assert len({case[0] for case in CONDITIONS}) == len(CONDITIONS)


def test_every_operator_family_is_covered() -> None:
    from strongroom.policy.document import BASE_OPERATORS

    used = {
        name.lower().split(":")[-1].removesuffix("ifexists")
        for _, condition, _, _ in CONDITIONS
        for name in condition
    }
    assert {operator.lower() for operator in BASE_OPERATORS} <= used


# --------------------------------------------------------------------------- policy variables

HOME = f"{SECRET_PREFIX}home/${{aws:username}}/*"


def variable_allows(
    statement: dict[str, Any],
    resource: str,
    *,
    principal: str = ALICE,
    version: str = "2012-10-17",
    **context: Any,
) -> bool:
    return evaluate(
        req(principal, resource=resource, **context),
        PolicySet(identity=[doc(statement, version=version)]),
    ).allowed


def test_username_variable_in_resource() -> None:
    statement = allow(resource=HOME)
    assert variable_allows(statement, f"{SECRET_PREFIX}home/alice/db-AbCdEf", aws_username="alice")
    assert not variable_allows(
        statement, f"{SECRET_PREFIX}home/bob/db-AbCdEf", aws_username="alice"
    )


def test_variable_names_are_case_insensitive() -> None:
    statement = allow(resource=f"{SECRET_PREFIX}home/${{AWS:UserName}}/*")
    assert variable_allows(statement, f"{SECRET_PREFIX}home/alice/db", aws_username="alice")


def test_username_variable_in_condition() -> None:
    statement = allow(
        Condition={"StringLike": {"secretsmanager:SecretId": "home/${aws:username}/*"}}
    )
    assert variable_allows(
        statement, SECRET, aws_username="alice", secretsmanager_SecretId="home/alice/db"
    )
    assert not variable_allows(
        statement, SECRET, aws_username="alice", secretsmanager_SecretId="home/bob/db"
    )


def test_principal_tag_variable() -> None:
    statement = allow(resource=f"{SECRET_PREFIX}${{aws:PrincipalTag/team}}/*")
    assert variable_allows(
        statement, f"{SECRET_PREFIX}payments/db", aws_PrincipalTag__team="payments"
    )
    assert not variable_allows(
        statement, f"{SECRET_PREFIX}billing/db", aws_PrincipalTag__team="payments"
    )


def test_principal_account_variable_is_derived() -> None:
    statement = allow(
        Condition={"StringEquals": {"secretsmanager:ResourceTag/owner": "${aws:PrincipalAccount}"}}
    )
    assert variable_allows(statement, SECRET, secretsmanager_ResourceTag__owner=ACCOUNT)
    assert not variable_allows(statement, SECRET, secretsmanager_ResourceTag__owner=OTHER)


def test_variable_from_any_context_key() -> None:
    statement = allow(
        Condition={"StringEquals": {"aws:PrincipalTag/project": "${aws:ResourceTag/project}"}}
    )
    assert variable_allows(
        statement, SECRET, aws_PrincipalTag__project="x", aws_ResourceTag__project="x"
    )
    assert not variable_allows(
        statement, SECRET, aws_PrincipalTag__project="x", aws_ResourceTag__project="y"
    )


# "Policy variables with no value" (IAM User Guide): a variable whose key is missing is a
# null value in the one place it is written, not a reason to drop the statement.

TEAM_GUARD = deny(
    Condition={"StringNotEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}
)


def test_missing_variable_in_resource_matches_no_resource() -> None:
    # A role session has no aws:username: the pattern names no resource for it.
    statement = allow(resource=HOME)
    assert not variable_allows(statement, f"{SECRET_PREFIX}home/s1/db", principal=SESSION)
    assert not variable_allows(statement, f"{SECRET_PREFIX}home//db", principal=SESSION)
    # Another pattern of the same statement still counts.
    both = allow(resource=[HOME, OTHER_SECRET])
    assert variable_allows(both, OTHER_SECRET, principal=SESSION)


def test_missing_variable_in_not_resource_excludes_nothing() -> None:
    # Fails closed on the old reading: an Allow with NotResource now allows.
    assert variable_allows(allow(NotResource=HOME), OTHER_SECRET, principal=SESSION)
    assert variable_allows(
        allow(NotResource=HOME), f"{SECRET_PREFIX}home/s1/db-AbCdEf", principal=SESSION
    )
    # The Deny that walls a role session out of everything but the users' homes applies.
    fence = deny(NotResource=f"{SECRET_PREFIX}${{aws:username}}-*")
    policies = PolicySet(identity=[ALLOW_ALL, doc(fence)])
    denied = evaluate(req(SESSION, resource=f"{SECRET_PREFIX}s1-AbCdEf"), policies)
    assert denied.reason == "explicit_deny"
    alice = req(ALICE, resource=f"{SECRET_PREFIX}alice-AbCdEf", aws_username="alice")
    assert evaluate(alice, policies).allowed


def test_abac_guard_denies_a_principal_without_the_tag() -> None:
    policies = PolicySet(identity=[ALLOW_ALL, doc(TEAM_GUARD)])
    same = req(aws_PrincipalTag__team="blue", aws_ResourceTag__team="blue")
    assert evaluate(same, policies).allowed
    other = req(aws_PrincipalTag__team="blue", aws_ResourceTag__team="red")
    assert evaluate(other, policies).reason == "explicit_deny"
    # No team tag on the principal: the variable is null, StringNotEquals matches it.
    untagged = req(aws_ResourceTag__team="blue")
    assert evaluate(untagged, policies).reason == "explicit_deny"
    # Nor on the resource: the negated operator is true on a missing key as ever.
    assert evaluate(req(), policies).reason == "explicit_deny"


def test_abac_guard_in_a_secret_resource_policy() -> None:
    guard = {**TEAM_GUARD, "Principal": "*"}
    policies = PolicySet(identity=[ALLOW_GET], resource=rdoc(guard))
    assert evaluate(
        req(aws_PrincipalTag__team="blue", aws_ResourceTag__team="blue"), policies
    ).allowed
    untagged = evaluate(req(aws_ResourceTag__team="blue"), policies)
    assert (untagged.reason, untagged.denied_by) == ("explicit_deny", "resource")


@pytest.mark.parametrize(
    ("operator", "key", "value", "applies"),
    [
        ("StringEquals", "aws:ResourceTag/team", "blue", False),
        ("StringLike", "aws:ResourceTag/team", "blue", False),
        ("StringEqualsIgnoreCase", "aws:ResourceTag/team", "blue", False),
        ("ArnLike", "aws:SourceArn", SECRET, False),
        ("ArnEquals", "aws:SourceArn", SECRET, False),
        ("StringNotEquals", "aws:ResourceTag/team", "blue", True),
        ("StringNotLike", "aws:ResourceTag/team", "blue", True),
        ("StringNotEqualsIgnoreCase", "aws:ResourceTag/team", "blue", True),
        ("StringNotEqualsIfExists", "aws:ResourceTag/team", "blue", True),
        ("StringEqualsIfExists", "aws:ResourceTag/team", "blue", False),
        ("ArnNotLike", "aws:SourceArn", SECRET, True),
        ("ArnNotEquals", "aws:SourceArn", SECRET, True),
        ("ArnNotLikeIfExists", "aws:SourceArn", SECRET, True),
    ],
)
@pytest.mark.parametrize("effect", ["Allow", "Deny"])
def test_null_variable_per_operator(
    operator: str, key: str, value: str, applies: bool, effect: str
) -> None:
    """The key is in the request; its policy value is a variable with no value."""
    variable = "${aws:PrincipalTag/missing}"
    statement = stmt(effect, Condition={operator: {key: variable}})
    identity = [doc(statement)] if effect == "Allow" else [ALLOW_ALL, doc(statement)]
    decision = evaluate(
        req(**{key.replace("/", "__").replace(":", "_", 1): value}), PolicySet(identity=identity)
    )
    if effect == "Allow":
        assert decision.allowed is applies
    else:
        assert decision.allowed is not applies
        assert decision.reason == ("explicit_deny" if applies else "allowed")


def test_null_variable_among_several_values_fails_alone() -> None:
    statement = allow(
        Condition={"StringEquals": {"aws:ResourceTag/team": ["${aws:PrincipalTag/team}", "blue"]}}
    )
    assert variable_allows(statement, SECRET, aws_ResourceTag__team="blue")
    assert not variable_allows(statement, SECRET, aws_ResourceTag__team="red")
    assert variable_allows(
        statement, SECRET, aws_ResourceTag__team="red", aws_PrincipalTag__team="red"
    )
    negated = allow(
        Condition={
            "StringNotEquals": {"aws:ResourceTag/team": ["${aws:PrincipalTag/team}", "blue"]}
        }
    )
    assert variable_allows(negated, SECRET, aws_ResourceTag__team="red")
    assert not variable_allows(negated, SECRET, aws_ResourceTag__team="blue")


def test_null_variable_under_a_set_operator() -> None:
    statement = allow(
        Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["${aws:PrincipalTag/k}", "a"]}}
    )
    assert variable_allows(statement, SECRET, aws_TagKeys=("a",))
    assert not variable_allows(statement, SECRET, aws_TagKeys=("a", "b"))
    assert variable_allows(statement, SECRET, aws_TagKeys=("a", "b"), aws_PrincipalTag__k="b")


def test_multivalued_key_is_not_a_variable() -> None:
    statement = allow(resource=f"{SECRET_PREFIX}${{aws:TagKeys}}")
    assert not variable_allows(statement, f"{SECRET_PREFIX}a", aws_TagKeys=("a", "b"))
    assert variable_allows(statement, f"{SECRET_PREFIX}a", aws_TagKeys=("a",))


def test_variable_default_value() -> None:
    statement = allow(resource=f"{SECRET_PREFIX}home/${{aws:username, 'anonymous'}}/*")
    assert variable_allows(statement, f"{SECRET_PREFIX}home/anonymous/x", principal=SESSION)
    assert variable_allows(statement, f"{SECRET_PREFIX}home/alice/x", aws_username="alice")
    assert not variable_allows(statement, f"{SECRET_PREFIX}home/anonymous/x", aws_username="alice")


def test_special_character_variables() -> None:
    star = allow(resource=f"{SECRET_PREFIX}literal${{*}}star")
    assert variable_allows(star, f"{SECRET_PREFIX}literal*star")
    assert not variable_allows(star, f"{SECRET_PREFIX}literalXstar")
    question = allow(Condition={"StringLike": {"s:k": "why${?}"}})
    assert variable_allows(question, SECRET, s_k="why?")
    assert not variable_allows(question, SECRET, s_k="whyX")
    dollar = allow(Condition={"StringEquals": {"s:k": "cost${$}center"}})
    assert variable_allows(dollar, SECRET, s_k="cost$center")


def test_substituted_values_are_literal() -> None:
    statement = allow(resource=f"{SECRET_PREFIX}${{aws:PrincipalTag/team}}/x")
    assert not variable_allows(statement, f"{SECRET_PREFIX}payments/x", aws_PrincipalTag__team="*")
    assert variable_allows(statement, f"{SECRET_PREFIX}*/x", aws_PrincipalTag__team="*")
    like = allow(Condition={"StringLike": {"s:k": "${aws:PrincipalTag/team}"}})
    assert not variable_allows(like, SECRET, aws_PrincipalTag__team="a?c", s_k="abc")


def test_variables_are_literal_in_2008_policies_and_without_version() -> None:
    for version in ("2008-10-17", None):
        policy = rdoc(
            allow(resource=f"{SECRET_PREFIX}${{aws:username}}", Principal="*"), version=version
        )
        alice = req(resource=f"{SECRET_PREFIX}alice", aws_username="alice")
        assert not evaluate(alice, PolicySet(resource=policy)).allowed
        literal = req(resource=f"{SECRET_PREFIX}${{aws:username}}", aws_username="alice")
        assert evaluate(literal, PolicySet(resource=policy)).allowed


def test_variables_before_the_resource_part_are_literal() -> None:
    statement = allow(resource="arn:aws:secretsmanager:us-east-1:${aws:PrincipalAccount}:secret:*")
    assert not variable_allows(statement, SECRET)


def test_variables_are_not_substituted_in_numeric_conditions() -> None:
    statement = allow(Condition={"NumericEquals": {"n:k": "${n:other}"}})
    assert not variable_allows(statement, SECRET, n_k="5", n_other="5")


def test_bool_condition_substitutes_variables() -> None:
    statement = allow(Condition={"Bool": {"aws:SecureTransport": "${x:flag}"}})
    assert variable_allows(statement, SECRET, aws_SecureTransport="true", x_flag="true")
    assert not variable_allows(statement, SECRET, aws_SecureTransport="true", x_flag="false")


def test_arn_condition_substitutes_variables() -> None:
    statement = allow(
        Condition={"ArnLike": {"aws:SourceArn": "arn:aws:iam::${aws:PrincipalAccount}:role/*"}}
    )
    assert variable_allows(statement, SECRET, aws_SourceArn=ROLE)
    assert not variable_allows(statement, SECRET, aws_SourceArn=f"arn:aws:iam::{OTHER}:role/x")


# --------------------------------------------------------------------------- matching rules


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("secretsmanager:GetSecretValue", "secretsmanager:GetSecretValue", True),
        ("SecretsManager:getsecretvalue", "secretsmanager:GetSecretValue", True),
        ("secretsmanager:Get*", "secretsmanager:GetSecretValue", True),
        ("secretsmanager:*Secret*", "secretsmanager:DescribeSecret", True),
        ("secretsmanager:Get?ecretValue", "secretsmanager:GetSecretValue", True),
        ("secretsmanager:Get?", "secretsmanager:GetSecretValue", False),
        ("secretsmanager:Get", "secretsmanager:GetSecretValue", False),
        ("secretsmanager:*", "kms:Decrypt", False),
        ("*", "kms:Decrypt", True),
        ("kms:*", "KMS:Decrypt", True),
        ("kms:De.rypt", "kms:Decrypt", False),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "arn", "expected"),
    [
        ("*", SECRET, True),
        ("*", "*", True),
        (SECRET, SECRET, True),
        (f"{SECRET_PREFIX}MyApp/*", SECRET, True),
        (f"{SECRET_PREFIX}myapp/*", SECRET, False),  # case-sensitive
        ("arn:aws:secretsmanager:*:*:secret:MyApp/*", SECRET, True),
        ("arn:aws:secretsmanager:*:*:*", SECRET, True),  # the resource part spans colons
        (
            "arn:aws:secretsmanager:*:secret:MyApp/DBCredentials-AbCdEf",
            SECRET,
            False,
        ),  # * within a segment
        ("arn:aws:secretsmanager:us-east-?:*:secret:*", SECRET, True),
        (
            "arn:aws:secretsmanager:us-east-?:*:secret:*",
            SECRET.replace("us-east-1", "us-east-10"),
            False,
        ),
        (f"{SECRET_PREFIX}MyApp/DBCredentials-??????", SECRET, True),
        (f"{SECRET_PREFIX}MyApp/DBCredentials-?????", SECRET, False),
        (f"{SECRET_PREFIX}*", "*", False),
        ("arn:aws:s3:::bucket", "arn:aws:s3:::bucket", True),
        ("arn:aws:s3:::bucket", "arn:aws:s3:::bucket/key", False),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c", True),
    ],
)
def test_arn_matching(pattern: str, arn: str, expected: bool) -> None:
    assert arn_matches(pattern, arn) is expected


# --------------------------------------------------------------------------- messages


def message(request: RequestContext, policies: PolicySet, **options: Any) -> str:
    decision = evaluate(request, policies, **options)
    assert not decision.allowed
    return access_denied_message(request, decision)


def test_message_no_identity_policy() -> None:
    assert message(req(), PolicySet()) == (
        f"User: {ALICE} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        f"{SECRET} because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )


def test_message_explicit_identity_deny() -> None:
    assert message(req(), PolicySet(identity=[doc(deny())])) == (
        f"User: {ALICE} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        f"{SECRET} with an explicit deny in an identity-based policy"
    )


def test_message_explicit_resource_deny() -> None:
    text = message(req(), PolicySet(identity=[ALLOW_GET], resource=rdoc(deny(Principal="*"))))
    assert text.endswith(" with an explicit deny in a resource-based policy")


def test_message_no_resource_policy_allows() -> None:
    text = message(req(CAROL), PolicySet(identity=[ALLOW_GET]))
    assert text == (
        f"User: {CAROL} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        f"{SECRET} because no resource-based policy allows the secretsmanager:GetSecretValue action"
    )


def test_message_boundary() -> None:
    implicit = message(req(), PolicySet(identity=[ALLOW_GET], permissions_boundary=BOUNDARY_S3))
    assert implicit.endswith(
        " because no permissions boundary allows the secretsmanager:GetSecretValue action"
    )
    explicit = message(req(), PolicySet(identity=[ALLOW_GET], permissions_boundary=doc(deny())))
    assert explicit.endswith(" with an explicit deny in a permissions boundary")


def test_message_session() -> None:
    implicit = message(
        req(SESSION), PolicySet(identity=[ALLOW_ALL], session_policies=[SESSION_PUT])
    )
    assert implicit == (
        f"User: {SESSION} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        f"{SECRET} because no session policy allows the secretsmanager:GetSecretValue action"
    )
    explicit = message(
        req(SESSION), PolicySet(identity=[ALLOW_ALL], session_policies=[doc(deny())])
    )
    assert explicit.endswith(" with an explicit deny in a session policy")


def test_message_kms_key_policy() -> None:
    text = message(
        req(action=DECRYPT, resource=KEY), PolicySet(identity=[ALLOW_ALL]), key_policy=True
    )
    assert text.endswith(
        f"on resource: {KEY} because no resource-based policy allows the kms:Decrypt action"
    )


def test_message_for_an_action_on_star_has_no_resource() -> None:
    assert message(req(action=LIST, resource="*"), PolicySet()) == (
        f"User: {ALICE} is not authorized to perform: secretsmanager:ListSecrets "
        "because no identity-based policy allows the secretsmanager:ListSecrets action"
    )


def test_message_names_the_denying_managed_policy_in_the_same_account() -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:policy/NoSecrets"
    policies = PolicySet(identity=[doc(deny())], identity_names=[arn])
    assert message(req(), policies).endswith(
        f"with an explicit deny in an identity-based policy: {arn}"
    )
    inline = PolicySet(identity=[doc(deny())], identity_names=["NoSecretsInline"])
    assert message(req(), inline).endswith("with an explicit deny in an identity-based policy")


def test_message_does_not_name_policies_across_accounts() -> None:
    arn = f"arn:aws:iam::{OTHER}:policy/NoSecrets"
    policies = PolicySet(identity=[doc(deny())], identity_names=[arn])
    assert message(req(CAROL), policies).endswith(
        "with an explicit deny in an identity-based policy"
    )


def test_no_message_for_an_allowed_request() -> None:
    decision = evaluate(req(), PolicySet(identity=[ALLOW_GET]))
    with pytest.raises(ValueError):
        access_denied_message(req(), decision)


# --------------------------------------------------------------------------- context and caches


def test_request_context_normalises_keys() -> None:
    request = RequestContext(
        ALICE,
        ACCOUNT,
        GET,
        SECRET,
        ACCOUNT,
        {"AWS:UserName": ("alice",), "aws:TagKeys": (), "x:single": "v"},
    )  # type: ignore[dict-item]
    assert request.condition_keys["aws:username"] == ("alice",)
    assert "aws:tagkeys" not in request.condition_keys
    assert request.condition_keys["x:single"] == ("v",)
    assert request.condition_keys["aws:principalaccount"] == (ACCOUNT,)
    assert request.condition_keys["aws:principalarn"] == (ALICE,)


def test_principal_arn_of_a_session_is_its_role() -> None:
    request = req(SESSION)
    assert request.condition_keys["aws:principalarn"] == (f"arn:aws:iam::{ACCOUNT}:role/Reader",)
    given = req(SESSION, aws_PrincipalArn=ROLE)
    assert given.condition_keys["aws:principalarn"] == (ROLE,)


def test_principal_arn_condition_for_role_sessions() -> None:
    statement = allow(
        Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/Reader"}}
    )
    assert evaluate(req(SESSION), PolicySet(identity=[doc(statement)])).allowed
    assert not evaluate(req(WRITER_SESSION), PolicySet(identity=[doc(statement)])).allowed


def test_load_policy_caches_by_text() -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": [allow()]})
    first = load_policy(text, "identity")
    assert load_policy(text, "identity") is first
    clear_caches()
    again = load_policy(text, "identity")
    assert again is not first and again == first
    assert evaluate(req(), PolicySet(identity=[again])) == evaluate(
        req(), PolicySet(identity=[first])
    )


def test_load_policy_rejects_malformed_text_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ServiceError) as caught:
            load_policy("{not json", "identity")
        assert caught.value.code == "MalformedPolicyDocumentException"
    with pytest.raises(ServiceError) as iam:
        load_policy("{}", "identity", "MalformedPolicyDocument")
    assert iam.value.code == "MalformedPolicyDocument"


def test_decision_is_a_value() -> None:
    decision = evaluate(req(), PolicySet(identity=[ALLOW_GET]))
    assert decision == Decision(True, "allowed", None, (("identity[0]", 0),))
