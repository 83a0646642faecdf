"""strongroom.policy.document: the policy grammar, broad-access analysis and lockout check."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.policy import (
    BROAD_ACCESS_CHECK,
    LOCKOUT_CHECK,
    MALFORMED_POLICY,
    SYNTAX_CHECK,
    PolicyDocument,
    PolicyKind,
    Principal,
    ValidationFinding,
    is_public,
    parse_policy,
    validate_resource_policy,
)
from strongroom.policy.document import BASE_OPERATORS, split_operator
from strongroom.policy.matching import action_matches
from strongroom.protocol.errors import ServiceError

OWNER = "111122223333"
OTHER = "444455556666"
OWNER_ROOT = f"arn:aws:iam::{OWNER}:root"
CANONICAL = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
DROP = object()  # statement(...) removes an element given this value


def statement(**elements: Any) -> dict[str, Any]:
    """A valid resource-policy statement, with elements replaced or dropped."""
    base: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": OWNER_ROOT},
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
    }
    base.update(elements)
    return {key: value for key, value in base.items() if value is not DROP}


def identity_statement(**elements: Any) -> dict[str, Any]:
    return statement(Principal=DROP, **elements)


def policy(*statements: dict[str, Any], **top: Any) -> str:
    document: dict[str, Any] = {"Version": "2012-10-17", "Statement": list(statements)}
    document.update(top)
    return json.dumps({key: value for key, value in document.items() if value is not DROP})


def parse(text: str, kind: PolicyKind = "resource") -> PolicyDocument:
    return parse_policy(text, kind=kind)


def malformed(text: str, kind: PolicyKind = "resource") -> str:
    with pytest.raises(ServiceError) as caught:
        parse_policy(text, kind=kind)
    assert caught.value.code == "MalformedPolicyDocumentException"
    assert caught.value.status == 400
    return caught.value.message


# --------------------------------------------------------------------------- grammar: accepted

WELL_FORMED: list[tuple[str, PolicyKind, str]] = [
    ("identity minimal", "identity", policy(identity_statement())),
    ("identity statement object", "identity", policy(Statement=identity_statement())),
    ("identity Id allowed", "identity", policy(identity_statement(), Id="Admin_Policy")),
    (
        "identity NotAction NotResource",
        "identity",
        policy(identity_statement(Action=DROP, NotAction="iam:*", Resource=DROP, NotResource="*")),
    ),
    ("identity Action star", "identity", policy(identity_statement(Action="*"))),
    ("identity alphanumeric Sid", "identity", policy(identity_statement(Sid="ReadOnly1"))),
    ("resource minimal", "resource", policy(statement())),
    ("resource Version absent", "resource", policy(statement(), Version=DROP)),
    ("resource Version 2008", "resource", policy(statement(), Version="2008-10-17")),
    ("resource Id", "resource", policy(statement(), Id="cd3ad3d9-2776-4ef1-a904-4c229d1642ee")),
    ("resource Sid with hyphen", "resource", policy(statement(Sid="Allow-Read_1"))),
    ("principal star", "resource", policy(statement(Principal="*"))),
    ("principal AWS star", "resource", policy(statement(Principal={"AWS": "*"}))),
    ("account id shorthand", "resource", policy(statement(Principal={"AWS": OTHER}))),
    (
        "user and role ARNs with paths",
        "resource",
        policy(
            statement(
                Principal={
                    "AWS": [
                        f"arn:aws:iam::{OTHER}:user/division/team/alice",
                        f"arn:aws:iam::{OTHER}:role/service-role/Reader",
                    ]
                }
            )
        ),
    ),
    (
        "assumed-role session",
        "resource",
        policy(statement(Principal={"AWS": f"arn:aws:sts::{OTHER}:assumed-role/Reader/ci"})),
    ),
    (
        "unique id of a deleted principal",
        "resource",
        policy(statement(Principal={"AWS": "AIDACKCEVSQ6C2EXAMPLE"})),
    ),
    (
        "GovCloud partition",
        "resource",
        policy(statement(Principal={"AWS": "arn:aws-us-gov:iam::111122223333:root"})),
    ),
    (
        "service principals",
        "resource",
        policy(
            statement(
                Principal={"Service": ["lambda.amazonaws.com", "logs.us-east-1.amazonaws.com"]}
            )
        ),
    ),
    (
        "federated SAML",
        "resource",
        policy(statement(Principal={"Federated": f"arn:aws:iam::{OWNER}:saml-provider/Okta"})),
    ),
    (
        "federated web identity",
        "resource",
        policy(statement(Principal={"Federated": "cognito-identity.amazonaws.com"})),
    ),
    ("canonical user", "resource", policy(statement(Principal={"CanonicalUser": CANONICAL}))),
    (
        "NotPrincipal deny",
        "resource",
        policy(statement(Effect="Deny", Principal=DROP, NotPrincipal={"AWS": OWNER_ROOT})),
    ),
    (
        "wildcard actions, any case",
        "resource",
        policy(
            statement(
                Action=[
                    "secretsmanager:Get*",
                    "secretsmanager:?escribeSecret",
                    "SecretsManager:listsecretversionids",
                ]
            )
        ),
    ),
    ("vendor with dot and dash", "resource", policy(statement(Action=["s3-s:List", "s3.s:List"]))),
    (
        "ARN resource",
        "resource",
        policy(statement(Resource=f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:db-AbCdEf")),
    ),
    ("empty Condition", "resource", policy(statement(Condition={}))),
    ("empty operator block", "resource", policy(statement(Condition={"StringEquals": {}}))),
    (
        "empty value list",
        "resource",
        policy(statement(Condition={"StringEquals": {"aws:PrincipalTag/team": []}})),
    ),
    (
        "every operator family",
        "resource",
        policy(
            statement(
                Condition={
                    "StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/Temp*"},
                    "NumericLessThanEquals": {"secretsmanager:RecoveryWindowInDays": 30},
                    "NumericGreaterThan": {"x:Size": [1e3, "-2.5", "4E-2"]},
                    "DateGreaterThan": {"aws:CurrentTime": "2017-07-01T00:00:00Z"},
                    "DateLessThan": {"aws:EpochTime": "1893456000"},
                    "Bool": {"aws:SecureTransport": True},
                    "BinaryEquals": {"x:Blob": "QmluYXJ5VmFsdWU="},
                    "IpAddress": {
                        "aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"]
                    },
                    "ArnNotEquals": {"aws:SourceArn": "arn:aws:s3:::bucket"},
                    "Null": {"aws:TokenIssueTime": "false"},
                }
            )
        ),
    ),
    (
        "set operators and IfExists",
        "resource",
        policy(
            statement(
                Condition={
                    "ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "team"},
                    "ForAllValues:StringLike": {"aws:TagKeys": ["team", "env*"]},
                    "BoolIfExists": {"aws:MultiFactorAuthPresent": "TRUE"},
                }
            )
        ),
    ),
    (
        "policy variable in a typed value",
        "resource",
        policy(statement(Condition={"DateLessThan": {"aws:CurrentTime": "${aws:TokenIssueTime}"}})),
    ),
]


@pytest.mark.parametrize(
    ("kind", "text"), [c[1:] for c in WELL_FORMED], ids=[c[0] for c in WELL_FORMED]
)
def test_well_formed_policies_parse(kind: PolicyKind, text: str) -> None:
    doc = parse(text, kind)
    source = json.loads(text)
    raw = source["Statement"]
    assert len(doc.statements) == (1 if isinstance(raw, dict) else len(raw))
    assert doc.version == source.get("Version")
    assert doc.id == source.get("Id")


def test_full_statement_becomes_typed_ast() -> None:
    doc = parse(
        policy(
            {
                "Sid": "CrossAccountRead",
                "Effect": "Allow",
                "Principal": {
                    "AWS": [OTHER, f"arn:aws:iam::{OTHER}:role/Reader"],
                    "Service": "lambda.amazonaws.com",
                },
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
            },
            Id="SecretPolicy",
        )
    )
    assert doc.version == "2012-10-17"
    assert doc.id == "SecretPolicy"
    (s,) = doc.statements
    assert s.sid == "CrossAccountRead"
    assert s.effect == "Allow"
    assert s.principal == Principal(
        entries={
            "AWS": (OTHER, f"arn:aws:iam::{OTHER}:role/Reader"),
            "Service": ("lambda.amazonaws.com",),
        }
    )
    assert s.principal.wildcard is False
    assert s.not_principal is None
    assert s.action == ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
    assert s.not_action is None
    assert s.resource == ("*",)
    assert s.not_resource is None
    assert s.condition == {"StringEquals": {"aws:PrincipalOrgID": ("o-a1b2c3d4e5",)}}


def test_negated_elements_fill_the_negated_fields() -> None:
    (s,) = parse(
        policy(
            statement(
                Effect="Deny",
                Principal=DROP,
                NotPrincipal="*",
                Action=DROP,
                NotAction="secretsmanager:Get*",
                Resource=DROP,
                NotResource="*",
            )
        )
    ).statements
    assert s.effect == "Deny"
    assert (s.principal, s.not_principal) == (None, Principal(wildcard=True))
    assert (s.action, s.not_action) == (None, ("secretsmanager:Get*",))
    assert (s.resource, s.not_resource) == (None, ("*",))
    assert s.condition == {}


def test_identity_statements_have_no_principal() -> None:
    (s,) = parse(policy(identity_statement()), "identity").statements
    assert s.principal is None
    assert s.not_principal is None


def test_principal_star_forms_are_everyone() -> None:
    assert Principal(wildcard=True).is_everyone
    assert Principal(entries={"AWS": (OTHER, "*")}).is_everyone
    assert not Principal(entries={"AWS": (OTHER,)}).is_everyone
    assert not Principal(entries={"Service": ("lambda.amazonaws.com",)}).is_everyone


def test_condition_values_are_normalised_to_strings() -> None:
    text = (
        '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*",'
        ' "Action": "secretsmanager:*", "Resource": "*", "Condition": {'
        ' "Bool": {"aws:SecureTransport": true, "aws:ViaAWSService": [false]},'
        ' "NumericLessThan": {"a:Int": 10, "a:Decimal": 1.50,'
        ' "a:Big": 123456789012345678901234567890},'
        ' "StringEquals": {"aws:PrincipalOrgID": ["o-1", "o-2"]}}}}'
    )
    condition = parse(text).statements[0].condition
    assert condition["Bool"] == {"aws:SecureTransport": ("true",), "aws:ViaAWSService": ("false",)}
    # Numbers keep their source text, not a float's repr.
    assert condition["NumericLessThan"] == {
        "a:Int": ("10",),
        "a:Decimal": ("1.50",),
        "a:Big": ("123456789012345678901234567890",),
    }
    assert condition["StringEquals"] == {"aws:PrincipalOrgID": ("o-1", "o-2")}
    values = [v for keys in condition.values() for vs in keys.values() for v in vs]
    assert all(type(v) is str for v in values)


def test_operator_names_are_canonicalised() -> None:
    condition = (
        parse(
            policy(
                statement(
                    Condition={
                        "stringequals": {"aws:PrincipalOrgID": "o-1"},
                        "foranyvalue:stringlikeifexists": {"aws:TagKeys": "t*"},
                    }
                )
            )
        )
        .statements[0]
        .condition
    )
    assert list(condition) == ["StringEquals", "ForAnyValue:StringLikeIfExists"]


def test_ast_is_immutable_and_hashable() -> None:
    doc = parse(policy(statement(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-1"}})))
    s = doc.statements[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.effect = "Deny"  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.condition["Bool"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        s.condition["StringEquals"]["aws:SourceVpc"] = ("vpc-1",)  # type: ignore[index]
    assert s.principal is not None
    with pytest.raises(TypeError):
        s.principal.entries["AWS"] = ("*",)  # type: ignore[index]
    assert hash(doc) == hash(
        parse(policy(statement(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-1"}})))
    )


def test_error_code_can_be_iam_s() -> None:
    with pytest.raises(ServiceError) as caught:
        parse_policy("nope", kind="identity", error_code="MalformedPolicyDocument")
    assert caught.value.code == "MalformedPolicyDocument"
    assert MALFORMED_POLICY == "MalformedPolicyDocumentException"


def test_split_operator() -> None:
    assert split_operator("StringEquals") == (None, "StringEquals", False)
    assert split_operator("ArnLikeIfExists") == (None, "ArnLike", True)
    assert split_operator("ForAnyValue:StringLikeIfExists") == ("ForAnyValue", "StringLike", True)
    assert split_operator("ForAllValues:StringEquals") == ("ForAllValues", "StringEquals", False)
    # The IAM list: 6 String, 6 Numeric, 6 Date, Bool, Binary, 2 IP, 4 ARN and Null.
    assert len(BASE_OPERATORS) == 27


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "secretsmanager:PutResourcePolicy", True),
        ("secretsmanager:*", "secretsmanager:PutResourcePolicy", True),
        ("SecretsManager:putresourcepolicy", "secretsmanager:PutResourcePolicy", True),
        ("secretsmanager:Put*", "secretsmanager:PutResourcePolicy", True),
        ("secretsmanager:?utResourcePolicy", "secretsmanager:PutResourcePolicy", True),
        ("secretsmanager:Get*", "secretsmanager:PutResourcePolicy", False),
        ("secretsmanager:PutResource", "secretsmanager:PutResourcePolicy", False),
        ("secrets.manager:*", "secretsmanager:PutResourcePolicy", False),  # "." is literal
        ("kms:*", "secretsmanager:PutResourcePolicy", False),
    ],
)
def test_action_matches(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


# --------------------------------------------------------------------------- grammar: rejected

MALFORMED: list[tuple[str, PolicyKind, str, str]] = [
    # JSON itself
    (
        "not JSON",
        "resource",
        "This is not a json document",
        "This policy contains invalid Json",
    ),
    ("empty text", "resource", "", "This policy contains invalid Json"),
    ("trailing data", "resource", "{} x", "This policy contains invalid Json"),
    ("NaN", "resource", '{"Version": NaN}', "This policy contains invalid Json"),
    ("Infinity", "resource", '{"Version": -Infinity}', "This policy contains invalid Json"),
    ("nesting bomb", "resource", "[" * 100_000, "This policy contains invalid Json"),
    # the document
    ("array document", "resource", "[]", "The policy must be a JSON object."),
    ("string document", "resource", '"policy"', "The policy must be a JSON object."),
    (
        "duplicate top-level key",
        "resource",
        '{"Version": "2012-10-17", "Version": "2008-10-17", "Statement": []}',
        'Duplicate element "Version".',
    ),
    (
        "duplicate statement key",
        "resource",
        '{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Effect": "Allow",'
        ' "Principal": "*", "Action": "*", "Resource": "*"}}',
        'Duplicate element "Effect".',
    ),
    (
        "unknown top-level element",
        "resource",
        policy(statement(), **{"Extra field": "value"}),
        'Unknown element "Extra field" in the policy.',
    ),
    (
        "lower-case element",
        "resource",
        policy(statement(), Version=DROP, version="2012-10-17"),
        'Unknown element "version" in the policy.',
    ),
    (
        "unsupported version",
        "resource",
        policy(statement(), Version="2013-10-17"),
        'Unsupported Version "2013-10-17"',
    ),
    ("numeric version", "resource", policy(statement(), Version=2012), "Unsupported Version"),
    ("null version", "resource", policy(statement(), Version=None), "Unsupported Version null"),
    (
        "identity without version",
        "identity",
        policy(identity_statement(), Version=DROP),
        "Policy document must be version 2012-10-17 or greater.",
    ),
    (
        "identity 2008 version",
        "identity",
        policy(identity_statement(), Version="2008-10-17"),
        "Policy document must be version 2012-10-17 or greater.",
    ),
    ("Id list", "resource", policy(statement(), Id=["x"]), "Id must be a string."),
    ("Id object", "resource", policy(statement(), Id={}), "Id must be a string."),
    ("Id number", "resource", policy(statement(), Id=7), "Id must be a string."),
    (
        "no Statement",
        "resource",
        json.dumps({"Version": "2012-10-17"}),
        "Missing required element Statement.",
    ),
    ("empty Statement", "resource", policy(), "Statement must not be empty."),
    (
        "Statement string",
        "resource",
        policy(Statement="Allow all"),
        "Statement must be an object or a list of objects.",
    ),
    (
        "Statement item string",
        "resource",
        policy(Statement=["afd"]),
        "Statement[0] must be a JSON object.",
    ),
    # statement elements
    (
        "unknown statement element",
        "resource",
        policy(statement(**{"Extra field": "value"})),
        'Unknown element "Extra field" in Statement[0].',
    ),
    (
        "lower-case statement element",
        "resource",
        policy(statement(Effect=DROP, effect="Allow")),
        'Unknown element "effect" in Statement[0].',
    ),
    (
        "no Effect",
        "resource",
        policy(statement(Effect=DROP)),
        "Statement[0]: Missing required field Effect.",
    ),
    (
        "Effect wrong case",
        "resource",
        policy(statement(Effect="allow")),
        'Statement[0]: Effect must be "Allow" or "Deny", not "allow".',
    ),
    (
        "Effect list",
        "resource",
        policy(statement(Effect=["Allow"])),
        'Effect must be "Allow" or "Deny", not ["Allow"].',
    ),
    ("Sid object", "resource", policy(statement(Sid={})), "Statement[0]: Sid must be a string."),
    ("Sid number", "resource", policy(statement(Sid=1)), "Statement[0]: Sid must be a string."),
    (
        "identity Sid punctuation",
        "identity",
        policy(identity_statement(Sid="Read-Only")),
        'Sid "Read-Only" is not valid: use only letters and digits',
    ),
    (
        "resource Sid space",
        "resource",
        policy(statement(Sid="Read Only")),
        'Sid "Read Only" is not valid: it must not contain spaces.',
    ),
    (
        "duplicate Sid",
        "resource",
        policy(statement(Sid="A"), statement(Sid="A")),
        'Statement IDs (SID) in a single policy must be unique. Sid "A"',
    ),
    (
        "errors name the Sid",
        "resource",
        policy(statement(Sid="Reader", Effect=DROP)),
        'Statement[0] (Sid "Reader"): Missing required field Effect.',
    ),
    (
        "errors name the index",
        "resource",
        policy(statement(), statement(Resource=DROP)),
        "Statement[1]: Policy statement must contain resources.",
    ),
    # principals
    (
        "identity Principal",
        "identity",
        policy(statement()),
        "Statement[0]: Policy document should not specify a principal.",
    ),
    (
        "identity NotPrincipal",
        "identity",
        policy(identity_statement(NotPrincipal="*")),
        "Policy document should not specify a principal.",
    ),
    (
        "resource without Principal",
        "resource",
        policy(identity_statement()),
        "Statement[0]: Missing required field Principal.",
    ),
    (
        "Principal and NotPrincipal",
        "resource",
        policy(statement(NotPrincipal="*")),
        "must not contain both Principal and NotPrincipal.",
    ),
    (
        "Principal bare ARN",
        "resource",
        policy(statement(Principal=OWNER_ROOT)),
        'Principal must be "*" or an object',
    ),
    (
        "Principal empty object",
        "resource",
        policy(statement(Principal={})),
        'Principal must be "*" or an object',
    ),
    (
        "Principal list",
        "resource",
        policy(statement(Principal=["*"])),
        'Principal must be "*" or an object',
    ),
    (
        "NotPrincipal bad shape",
        "resource",
        policy(statement(Principal=DROP, NotPrincipal=1)),
        'NotPrincipal must be "*" or an object',
    ),
    (
        "unknown principal type",
        "resource",
        policy(statement(Principal={"Group": "admins"})),
        'unknown principal type "Group"',
    ),
    (
        "principal type wrong case",
        "resource",
        policy(statement(Principal={"aws": "*"})),
        'unknown principal type "aws"',
    ),
    (
        "wildcard account",
        "resource",
        policy(statement(Principal={"AWS": "arn:aws:iam::*:root"})),
        'Invalid principal in policy: "AWS":"arn:aws:iam::*:root".',
    ),
    (
        "wildcard role name",
        "resource",
        policy(statement(Principal={"AWS": f"arn:aws:iam::{OWNER}:role/*"})),
        "Invalid principal in policy",
    ),
    (
        "non-ASCII digits",
        "resource",
        policy(statement(Principal={"AWS": "١١١١٢٢٢٢٣٣٣٣"})),
        "Invalid principal in policy",
    ),
    (
        "short account id",
        "resource",
        policy(statement(Principal={"AWS": "11112222333"})),
        'Invalid principal in policy: "AWS":"11112222333".',
    ),
    (
        "user name",
        "resource",
        policy(statement(Principal={"AWS": "bob"})),
        "Invalid principal in policy",
    ),
    (
        "group ARN",
        "resource",
        policy(statement(Principal={"AWS": f"arn:aws:iam::{OWNER}:group/admins"})),
        "Invalid principal in policy",
    ),
    (
        "numeric account id",
        "resource",
        policy(statement(Principal={"AWS": 111122223333})),
        "Principal.AWS must be a string or a list of strings.",
    ),
    (
        "empty principal list",
        "resource",
        policy(statement(Principal={"AWS": []})),
        "Principal.AWS must be a string or a list of strings.",
    ),
    (
        "service star",
        "resource",
        policy(statement(Principal={"Service": "*"})),
        'Invalid principal in policy: "Service":"*".',
    ),
    (
        "service with space",
        "resource",
        policy(statement(Principal={"Service": "lambda amazonaws.com"})),
        "Invalid principal in policy",
    ),
    (
        "federated star",
        "resource",
        policy(statement(Principal={"Federated": "*"})),
        "Invalid principal in policy",
    ),
    (
        "canonical user short",
        "resource",
        policy(statement(Principal={"CanonicalUser": "abc"})),
        'Invalid principal in policy: "CanonicalUser":"abc".',
    ),
    # actions
    (
        "no Action",
        "resource",
        policy(statement(Action=DROP)),
        "Statement[0]: Policy statement must contain actions.",
    ),
    (
        "empty Action",
        "resource",
        policy(statement(Action=[])),
        "Policy statement must contain actions.",
    ),
    (
        "empty NotAction",
        "resource",
        policy(statement(Action=DROP, NotAction="")),
        "Policy statement must contain actions.",
    ),
    (
        "Action and NotAction",
        "resource",
        policy(statement(NotAction="iam:*")),
        "must not contain both Action and NotAction.",
    ),
    (
        "Action without vendor",
        "resource",
        policy(statement(Action="invalid")),
        'Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. Got "invalid".',
    ),
    (
        "Action two colons",
        "resource",
        policy(statement(Action="s3:List:Bucket")),
        "Actions/Condition can contain only one colon.",
    ),
    (
        "Action bad vendor",
        "resource",
        policy(statement(Action="a a:ListBucket")),
        "Vendor a a is not valid.",
    ),
    (
        "Action star vendor",
        "resource",
        policy(statement(Action="*:GetSecretValue")),
        "Vendor * is not valid.",
    ),
    ("Action empty name", "resource", policy(statement(Action="s3:")), 'Action "s3:" is not valid'),
    (
        "Action name with space",
        "resource",
        policy(statement(Action="s3:Get Object")),
        'Action "s3:Get Object" is not valid',
    ),
    (
        "Action number",
        "resource",
        policy(statement(Action=123)),
        "Action must be a string or a list of strings.",
    ),
    (
        "Action nested list",
        "resource",
        policy(statement(Action=[[]])),
        "Action must be a string or a list of strings.",
    ),
    (
        "Action object",
        "resource",
        policy(statement(Action={"a": "s3:x"})),
        "Action must be a string or a list of strings.",
    ),
    # resources
    (
        "no Resource",
        "resource",
        policy(statement(Resource=DROP)),
        "Statement[0]: Policy statement must contain resources.",
    ),
    (
        "identity no Resource",
        "identity",
        policy(identity_statement(Resource=DROP)),
        "Policy statement must contain resources.",
    ),
    (
        "empty Resource",
        "resource",
        policy(statement(Resource=[])),
        "Policy statement must contain resources.",
    ),
    (
        "Resource and NotResource",
        "resource",
        policy(statement(NotResource="*")),
        "must not contain both Resource and NotResource.",
    ),
    (
        "Resource not ARN",
        "resource",
        policy(statement(Resource="invalid resource")),
        'Resource invalid resource must be in ARN format or "*".',
    ),
    (
        "Resource truncated ARN",
        "resource",
        policy(statement(Resource="arn:aws")),
        'Resource arn:aws must be in ARN format or "*".',
    ),
    (
        "Resource no service",
        "resource",
        policy(statement(Resource="arn:aws::us-east-1:1:x")),
        "must be in ARN format",
    ),
    (
        "Resource list with object",
        "resource",
        policy(statement(Resource=["adfdf", {}])),
        "Resource must be a string or a list of strings.",
    ),
    # conditions
    (
        "Condition list",
        "resource",
        policy(statement(Condition=[])),
        "Condition must be an object mapping condition operators",
    ),
    (
        "Condition string",
        "resource",
        policy(statement(Condition="a")),
        "Condition must be an object mapping condition operators",
    ),
    (
        "unknown operator",
        "resource",
        policy(statement(Condition={"x": {"a": "1"}})),
        'Statement[0]: Unknown condition operator "x".',
    ),
    (
        "double colon operator",
        "resource",
        policy(statement(Condition={"ForAnyValue::StringEqualsIfExists": {"a": "x"}})),
        "Unknown condition operator",
    ),
    (
        "Null IfExists",
        "resource",
        policy(statement(Condition={"NullIfExists": {"aws:TokenIssueTime": "true"}})),
        'Unknown condition operator "NullIfExists".',
    ),
    (
        "set prefix on Null",
        "resource",
        policy(statement(Condition={"ForAnyValue:Null": {"aws:TagKeys": "true"}})),
        "Unknown condition operator",
    ),
    (
        "unknown set prefix",
        "resource",
        policy(statement(Condition={"ForSomeValues:StringEquals": {"a": "x"}})),
        "Unknown condition operator",
    ),
    (
        "operator repeated in other case",
        "resource",
        '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*",'
        ' "Action": "*", "Resource": "*",'
        ' "Condition": {"StringEquals": {"a": "1"}, "stringequals": {"b": "2"}}}}',
        'Condition operator "StringEquals" appears more than once.',
    ),
    (
        "operator block string",
        "resource",
        policy(statement(Condition={"DateGreaterThan": "b"})),
        "Condition operator DateGreaterThan must map to an object of condition keys.",
    ),
    (
        "operator block list",
        "resource",
        policy(statement(Condition={"DateGreaterThan": []})),
        "must map to an object of condition keys.",
    ),
    (
        "value object",
        "resource",
        policy(statement(Condition={"DateGreaterThan": {"a": {}}})),
        "the value of a under DateGreaterThan must be a string, number or Boolean, or a list",
    ),
    (
        "value nested list",
        "resource",
        policy(statement(Condition={"StringEquals": {"a": [["x"]]}})),
        "must be a string, number or Boolean",
    ),
    (
        "value null",
        "resource",
        policy(statement(Condition={"StringEquals": {"a": None}})),
        "must be a string, number or Boolean",
    ),
    (
        "empty key",
        "resource",
        policy(statement(Condition={"StringEquals": {"": "x"}})),
        "Condition operator StringEquals has an empty key.",
    ),
    (
        "key repeated in other case",
        "resource",
        policy(
            statement(
                Condition={"StringEquals": {"aws:SourceVpc": "vpc-1", "AWS:SOURCEVPC": "vpc-2"}}
            )
        ),
        'Condition key "AWS:SOURCEVPC" appears more than once under StringEquals',
    ),
    (
        "bad date",
        "resource",
        policy(statement(Condition={"DateGreaterThan": {"aws:CurrentTime": "sdfdsf"}})),
        '"sdfdsf" is not a valid date (ISO 8601 or epoch seconds) for aws:CurrentTime'
        " under DateGreaterThan.",
    ),
    (
        "bad number",
        "resource",
        policy(statement(Condition={"NumericLessThanIfExists": {"s3:max-keys": "ten"}})),
        '"ten" is not a valid number for s3:max-keys under NumericLessThanIfExists.',
    ),
    (
        "bad IP",
        "resource",
        policy(statement(Condition={"IpAddress": {"aws:SourceIp": "300.1.1.1"}})),
        '"300.1.1.1" is not a valid IP address or CIDR block',
    ),
    (
        "bad Bool",
        "resource",
        policy(statement(Condition={"Bool": {"aws:SecureTransport": "yes"}})),
        '"yes" is not a valid Boolean (true or false)',
    ),
    (
        "bad Null",
        "resource",
        policy(statement(Condition={"Null": {"aws:TokenIssueTime": "maybe"}})),
        '"maybe" is not a valid Boolean',
    ),
    (
        "bad base64",
        "resource",
        policy(statement(Condition={"BinaryEquals": {"x:Blob": "not base64!"}})),
        '"not base64!" is not a valid base64 value',
    ),
    (
        "bad value under set operator",
        "resource",
        policy(statement(Condition={"ForAnyValue:NumericEquals": {"x:N": ["1", "x"]}})),
        '"x" is not a valid number',
    ),
]


@pytest.mark.parametrize(
    ("kind", "text", "message"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_policies_are_rejected(kind: PolicyKind, text: str, message: str) -> None:
    assert message in malformed(text, kind)


@pytest.mark.parametrize("base", BASE_OPERATORS)
def test_every_operator_and_variant_is_known(base: str) -> None:
    sample = {
        "Numeric": "1",
        "Date": "2020-01-01T00:00:00Z",
        "Bool": "true",
        "Null": "true",
        "BinaryEquals": "QQ==",
        "IpAddress": "10.0.0.0/8",
        "NotIpAddress": "10.0.0.0/8",
    }
    value = next((v for prefix, v in sample.items() if base.startswith(prefix)), "x")
    variants = (
        [base]
        if base == "Null"
        else [base, f"{base}IfExists", f"ForAnyValue:{base}", f"ForAllValues:{base}IfExists"]
    )
    for operator in variants:
        doc = parse(policy(statement(Condition={operator: {"k:Key": value}})))
        assert list(doc.statements[0].condition) == [operator]


# --------------------------------------------------------------------------- broad access


def public(*statements: dict[str, Any]) -> bool:
    return is_public(parse(policy(*statements)), account_id=OWNER)


def anyone(**condition: Any) -> dict[str, Any]:
    """An Allow to Principal "*" with the given Condition (operator -> {key: values})."""
    return statement(Principal="*", Condition=condition) if condition else statement(Principal="*")


PUBLIC: list[tuple[str, dict[str, Any]]] = [
    ("principal star", anyone()),
    ("AWS star", statement(Principal={"AWS": "*"})),
    ("star among accounts", statement(Principal={"AWS": [f"arn:aws:iam::{OTHER}:root", "*"]})),
    ("NotPrincipal allow", statement(Principal=DROP, NotPrincipal={"AWS": OWNER_ROOT})),
    ("web identity federation", statement(Principal={"Federated": "graph.facebook.com"})),
    ("any action is broad", anyone() | {"Action": "secretsmanager:DescribeSecret"}),
    (
        "NotAction allow",
        statement(Principal="*", Action=DROP, NotAction="secretsmanager:DeleteSecret"),
    ),
    ("IfExists does not pin", anyone(StringEqualsIfExists={"aws:PrincipalAccount": OWNER})),
    (
        "ArnEqualsIfExists does not pin",
        anyone(ArnEqualsIfExists={"aws:SourceArn": "arn:aws:s3:::b"}),
    ),
    (
        "set IfExists does not pin",
        anyone(**{"ForAnyValue:StringEqualsIfExists": {"aws:PrincipalOrgID": "o-1"}}),
    ),
    (
        "ForAllValues does not pin",
        anyone(**{"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-1"}}),
    ),
    ("negation does not pin", anyone(StringNotEquals={"aws:PrincipalAccount": OTHER})),
    ("ArnNotLike does not pin", anyone(ArnNotLike={"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:*"})),
    ("StringLike star", anyone(StringLike={"aws:PrincipalAccount": "*"})),
    ("StringLike org wildcard", anyone(StringLike={"aws:PrincipalOrgID": "o-*"})),
    ("wildcard among values", anyone(StringLike={"aws:SourceVpc": ["vpc-1", "vpc-*"]})),
    ("question mark wildcard", anyone(StringLike={"aws:SourceAccount": "11112222333?"})),
    ("wildcard even under StringEquals", anyone(StringEquals={"aws:PrincipalAccount": "*"})),
    ("policy variable", anyone(StringEquals={"aws:PrincipalOrgID": "${aws:PrincipalTag/org}"})),
    ("role-id pattern in userid", anyone(StringLike={"aws:userid": "AROAEXAMPLEID:*"})),
    ("empty value list", anyone(StringEquals={"aws:PrincipalAccount": []})),
    ("username is not unique", anyone(StringEquals={"aws:username": "alice"})),
    ("unrelated key", anyone(StringEquals={"aws:RequestedRegion": "us-east-1"})),
    ("transport only", anyone(Bool={"aws:SecureTransport": "true"})),
    (
        "wildcard account in PrincipalArn",
        anyone(ArnLike={"aws:PrincipalArn": "arn:aws:iam::*:role/Reader"}),
    ),
    (
        "wildcard partition in PrincipalArn",
        anyone(StringLike={"aws:PrincipalArn": f"arn:*:iam::{OWNER}:role/R"}),
    ),
    ("truncated ARN pattern", anyone(StringLike={"aws:PrincipalArn": f"arn:aws:iam::{OWNER}*"})),
    ("bucket wildcard in SourceArn", anyone(ArnLike={"aws:SourceArn": "arn:aws:s3:::*"})),
    ("org wildcard in OrgPaths", anyone(StringLike={"aws:PrincipalOrgPaths": "o-*/r-ab12/*"})),
    ("org path without a slash", anyone(StringLike={"aws:PrincipalOrgPaths": "o-a1b2c3d4e5*"})),
    ("SourceIp everywhere", anyone(IpAddress={"aws:SourceIp": "0.0.0.0/0"})),
    ("SourceIp broader than /8", anyone(IpAddress={"aws:SourceIp": ["10.0.0.0/8", "64.0.0.0/2"]})),
    ("SourceIp v6 broader than /32", anyone(IpAddress={"aws:SourceIp": "2001:db8::/16"})),
    ("SourceIp negated", anyone(NotIpAddress={"aws:SourceIp": "203.0.113.0/24"})),
    ("SourceIp as a string", anyone(StringEquals={"aws:SourceIp": "203.0.113.7"})),
    ("SourceIp variable", anyone(IpAddress={"aws:SourceIp": "${aws:SourceIp}"})),
]


@pytest.mark.parametrize("stmt", [c[1] for c in PUBLIC], ids=[c[0] for c in PUBLIC])
def test_public_grants(stmt: dict[str, Any]) -> None:
    assert public(stmt) is True


PINNING = [
    ("StringEquals", "aws:PrincipalAccount", OWNER),
    ("StringEquals", "aws:PrincipalAccount", OTHER),  # another account is cross-account, not public
    ("ArnEquals", "aws:PrincipalArn", f"arn:aws:iam::{OTHER}:role/Reader"),
    ("StringEquals", "aws:PrincipalOrgID", "o-a1b2c3d4e5"),
    ("ForAnyValue:StringLike", "aws:PrincipalOrgPaths", "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*"),
    ("StringEquals", "aws:SourceAccount", OWNER),
    ("ArnLike", "aws:SourceArn", f"arn:aws:lambda:us-east-1:{OWNER}:function:rotate"),
    ("StringEquals", "aws:SourceVpc", "vpc-91237329"),
    ("StringEquals", "aws:SourceVpce", "vpce-1a2b3c4d"),
    ("StringEquals", "aws:SourceOwner", OWNER),
    ("StringEquals", "aws:userid", "AIDACKCEVSQ6C2EXAMPLE"),
    ("StringEqualsIgnoreCase", "aws:PrincipalOrgID", "o-a1b2c3d4e5"),
    ("StringLike", "aws:PrincipalAccount", OWNER),  # Like without a wildcard is fixed
    ("ForAnyValue:StringEquals", "aws:PrincipalOrgID", "o-a1b2c3d4e5"),
    ("StringEquals", "AWS:PRINCIPALORGID", "o-a1b2c3d4e5"),  # keys are case-insensitive
    ("ArnLike", "aws:PrincipalArn", f"arn:aws:iam::{OWNER}:role/*"),  # a fixed account pins
    ("StringLike", "aws:PrincipalArn", f"arn:aws:iam::{OWNER}:*"),
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24"),
    ("IpAddress", "aws:SourceIp", "10.0.0.0/8"),
    ("IpAddress", "aws:SourceIp", "198.51.100.7"),
    ("IpAddress", "aws:SourceIp", "2001:db8::/32"),
]


@pytest.mark.parametrize(
    ("operator", "key", "value"), PINNING, ids=[f"{o} {k} {v}" for o, k, v in PINNING]
)
def test_pinning_condition_makes_star_not_public(operator: str, key: str, value: str) -> None:
    assert public(anyone()) is True
    assert public(anyone(**{operator: {key: value}})) is False
    # Pinning works the same for the {"AWS": "*"} form and for NotPrincipal.
    assert public(statement(Principal={"AWS": "*"}, Condition={operator: {key: value}})) is False
    assert (
        public(
            statement(
                Principal=DROP, NotPrincipal={"AWS": OWNER_ROOT}, Condition={operator: {key: value}}
            )
        )
        is False
    )


def test_one_pinning_entry_restricts_the_whole_statement() -> None:
    # Condition entries are ANDed: an irrelevant entry next to a pinning one is fine.
    assert (
        public(
            anyone(Bool={"aws:SecureTransport": "true"}, StringEquals={"aws:PrincipalOrgID": "o-1"})
        )
        is False
    )
    assert (
        public(
            anyone(StringEquals={"aws:PrincipalOrgID": "o-1", "aws:RequestedRegion": "us-east-1"})
        )
        is False
    )


NOT_PUBLIC: list[tuple[str, dict[str, Any]]] = [
    ("own account root", statement(Principal={"AWS": OWNER_ROOT})),
    ("other account shorthand", statement(Principal={"AWS": OTHER})),
    ("other account role", statement(Principal={"AWS": f"arn:aws:iam::{OTHER}:role/Reader"})),
    ("service principal", statement(Principal={"Service": "lambda.amazonaws.com"})),
    (
        "SAML provider",
        statement(Principal={"Federated": f"arn:aws:iam::{OWNER}:saml-provider/Okta"}),
    ),
    ("canonical user", statement(Principal={"CanonicalUser": CANONICAL})),
    ("deny everyone", statement(Effect="Deny", Principal="*")),
    ("deny AWS star", statement(Effect="Deny", Principal={"AWS": "*"}, Action="*")),
    (
        "deny NotPrincipal",
        statement(Effect="Deny", Principal=DROP, NotPrincipal={"AWS": OWNER_ROOT}),
    ),
]


@pytest.mark.parametrize("stmt", [c[1] for c in NOT_PUBLIC], ids=[c[0] for c in NOT_PUBLIC])
def test_grants_that_are_not_public(stmt: dict[str, Any]) -> None:
    assert public(stmt) is False


def test_one_public_statement_makes_the_policy_public() -> None:
    named = statement(Sid="Named", Principal={"AWS": OTHER})
    assert public(named) is False
    assert public(named, anyone() | {"Sid": "Open"}) is True


def test_deny_guards_are_not_credited() -> None:
    # Decision: a "deny unless in my organization" guard does not narrow an Allow for "*"
    # (over-reporting is the safe side for BlockPublicPolicy).
    guard = statement(
        Effect="Deny",
        Principal="*",
        Action="*",
        Condition={"StringNotEquals": {"aws:PrincipalOrgID": "o-1"}},
    )
    assert public(anyone(), guard) is True


def test_identity_policies_are_never_public() -> None:
    doc = parse(policy(identity_statement(Action="*")), "identity")
    assert is_public(doc, account_id=OWNER) is False


# --------------------------------------------------------------------------- ValidateResourcePolicy

CALLER = f"arn:aws:iam::{OWNER}:user/alice"
SESSION = f"arn:aws:sts::{OWNER}:assumed-role/Admin/alice-session"


def validate(*statements: dict[str, Any], caller: str | None = CALLER) -> list[ValidationFinding]:
    return validate_resource_policy(policy(*statements), account_id=OWNER, caller_arn=caller)


def deny(**elements: Any) -> dict[str, Any]:
    return statement(**({"Effect": "Deny", "Principal": "*", "Action": "*"} | elements))


def test_botocore_example_policy_passes() -> None:
    # The ValidateResourcePolicy example in botocore's examples-1.json, answered with
    # {"PolicyValidationPassed": true, "ValidationErrors": []}.
    text = (
        '{\n"Version":"2012-10-17",\n"Statement":[{\n"Effect":"Allow",\n"Principal":{\n'
        '"AWS":"arn:aws:iam::123456789012:root"\n},\n"Action":"secretsmanager:GetSecretValue",'
        '\n"Resource":"*"\n}]\n}'
    )
    assert validate_resource_policy(text, account_id="123456789012", caller_arn=None) == []


def test_broad_access_is_reported() -> None:
    findings = validate(
        statement(Sid="Named", Principal={"AWS": OTHER}), anyone() | {"Sid": "Open"}
    )
    assert [f.check_name for f in findings] == [BROAD_ACCESS_CHECK]
    message = findings[0].error_message
    assert 'Statement[1] (Sid "Open") allows any principal' in message
    assert "Named" not in message
    assert "aws:PrincipalOrgID" in message


def test_every_public_statement_is_named() -> None:
    (finding,) = validate(anyone(), statement(Principal={"AWS": "*"}))
    assert "Statement[0], Statement[1] allow any principal" in finding.error_message


def test_grammar_errors_are_a_syntax_finding() -> None:
    findings = validate(identity_statement())
    assert findings == [
        ValidationFinding(SYNTAX_CHECK, "Statement[0]: Missing required field Principal.")
    ]


def test_grammar_error_in_valid_json_is_reported_not_raised() -> None:
    findings = validate_resource_policy("[1, 2]", account_id=OWNER, caller_arn=None)
    assert [f.check_name for f in findings] == [SYNTAX_CHECK]


@pytest.mark.parametrize("text", ["{not json", "", '{"Version": NaN}'])
def test_text_that_is_not_json_raises(text: str) -> None:
    with pytest.raises(ServiceError) as caught:
        validate_resource_policy(text, account_id=OWNER, caller_arn=CALLER)
    assert caught.value.code == "MalformedPolicyDocumentException"
    assert caught.value.message == "This policy contains invalid Json"


def test_broad_access_and_lockout_are_both_reported() -> None:
    findings = validate(anyone(), deny(Sid="Freeze"))
    assert [f.check_name for f in findings] == [BROAD_ACCESS_CHECK, LOCKOUT_CHECK]
    assert findings[1].error_message == (
        f'The policy would lock out the caller: Statement[1] (Sid "Freeze") denies {CALLER} '
        "secretsmanager:PutResourcePolicy, so this policy could not be changed again."
    )


LOCKOUT: list[tuple[str, dict[str, Any], str | None]] = [
    ("deny everything to everyone", deny(), CALLER),
    ("deny PutResourcePolicy", deny(Action="secretsmanager:PutResourcePolicy"), CALLER),
    (
        "deny by wildcard action",
        deny(Action=["secretsmanager:Get*", "secretsmanager:Put*"]),
        CALLER,
    ),
    ("deny in another case", deny(Action="SecretsManager:putresourcepolicy"), CALLER),
    ("deny all but reads", deny(Action=DROP, NotAction="secretsmanager:Get*"), CALLER),
    ("deny AWS star", deny(Principal={"AWS": "*"}), CALLER),
    ("deny the caller's ARN", deny(Principal={"AWS": CALLER}), CALLER),
    ("deny the caller's account", deny(Principal={"AWS": OWNER}), CALLER),
    ("deny the caller's account root", deny(Principal={"AWS": OWNER_ROOT}), CALLER),
    (
        "deny the session's role",
        deny(Principal={"AWS": f"arn:aws:iam::{OWNER}:role/ops/Admin"}),
        SESSION,
    ),
    (
        "NotPrincipal leaves the caller in",
        deny(Principal=DROP, NotPrincipal={"AWS": f"arn:aws:iam::{OWNER}:user/bob"}),
        CALLER,
    ),
    (
        "deny by Resource",
        deny(Resource=f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:db-AbCdEf"),
        CALLER,
    ),
    (
        "deny NotResource of others",
        deny(Resource=DROP, NotResource=f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:x"),
        CALLER,
    ),
    ("unknown caller, everyone denied", deny(), None),
    ("unknown caller, owner account denied", deny(Principal={"AWS": OWNER}), None),
    # NotPrincipal exempts a caller only if every level AWS checks is listed: the
    # account, and the user, or the role and the session.
    (
        "NotPrincipal names the user but not the account",
        deny(Principal=DROP, NotPrincipal={"AWS": CALLER}),
        CALLER,
    ),
    (
        "NotPrincipal names the account but not the user",
        deny(Principal=DROP, NotPrincipal={"AWS": OWNER}),
        CALLER,
    ),
    (
        "NotPrincipal names the role but not the session",
        deny(Principal=DROP, NotPrincipal={"AWS": [OWNER, f"arn:aws:iam::{OWNER}:role/Admin"]}),
        SESSION,
    ),
    (
        "NotPrincipal names another account's user",
        deny(Principal=DROP, NotPrincipal={"AWS": [OTHER, f"arn:aws:iam::{OTHER}:user/alice"]}),
        CALLER,
    ),
]


@pytest.mark.parametrize(("stmt", "caller"), [c[1:] for c in LOCKOUT], ids=[c[0] for c in LOCKOUT])
def test_lockout_is_reported(stmt: dict[str, Any], caller: str | None) -> None:
    assert [f.check_name for f in validate(stmt, caller=caller)] == [LOCKOUT_CHECK]


NO_LOCKOUT: list[tuple[str, dict[str, Any], str | None]] = [
    ("deny reads only", deny(Action="secretsmanager:GetSecretValue"), CALLER),
    ("deny DeleteResourcePolicy only", deny(Action="secretsmanager:DeleteResourcePolicy"), CALLER),
    ("NotAction excludes it", deny(Action=DROP, NotAction="secretsmanager:*"), CALLER),
    ("conditional deny", deny(Condition={"Bool": {"aws:SecureTransport": "false"}}), CALLER),
    ("another user", deny(Principal={"AWS": f"arn:aws:iam::{OWNER}:user/bob"}), CALLER),
    ("another account", deny(Principal={"AWS": OTHER}), CALLER),
    ("another account's root", deny(Principal={"AWS": f"arn:aws:iam::{OTHER}:root"}), CALLER),
    ("another role", deny(Principal={"AWS": f"arn:aws:iam::{OWNER}:role/Reader"}), SESSION),
    (
        "same role name, other account",
        deny(Principal={"AWS": f"arn:aws:iam::{OTHER}:role/Admin"}),
        SESSION,
    ),
    ("a service", deny(Principal={"Service": "lambda.amazonaws.com"}), CALLER),
    (
        "NotPrincipal names the user and its account",
        deny(Principal=DROP, NotPrincipal={"AWS": [OWNER_ROOT, CALLER]}),
        CALLER,
    ),
    (
        "NotPrincipal names account, role and session",
        deny(
            Principal=DROP,
            NotPrincipal={"AWS": [OWNER, f"arn:aws:iam::{OWNER}:role/ops/Admin", SESSION]},
        ),
        SESSION,
    ),
    (
        "NotPrincipal names the root's account",
        deny(Principal=DROP, NotPrincipal={"AWS": OWNER}),
        OWNER_ROOT,
    ),
    ("NotPrincipal star exempts everyone", deny(Principal=DROP, NotPrincipal="*"), CALLER),
    ("NotPrincipal AWS star", deny(Principal=DROP, NotPrincipal={"AWS": "*"}), CALLER),
    (
        "unknown caller, NotPrincipal names the owner account",
        deny(Principal=DROP, NotPrincipal={"AWS": OWNER_ROOT}),
        None,
    ),
    ("NotResource star", deny(Resource=DROP, NotResource="*"), CALLER),
    ("allow is not a lockout", statement(Principal={"AWS": CALLER}, Action="*"), CALLER),
    (
        "unknown caller, a named user denied",
        deny(Principal={"AWS": f"arn:aws:iam::{OWNER}:user/bob"}),
        None,
    ),
]


@pytest.mark.parametrize(
    ("stmt", "caller"), [c[1:] for c in NO_LOCKOUT], ids=[c[0] for c in NO_LOCKOUT]
)
def test_no_lockout(stmt: dict[str, Any], caller: str | None) -> None:
    assert validate(stmt, caller=caller) == []


def test_lockout_message_without_a_caller_names_the_account() -> None:
    (finding,) = validate(deny(), caller=None)
    assert (
        f"denies principals of account {OWNER} secretsmanager:PutResourcePolicy"
        in finding.error_message
    )


def test_caller_in_another_account_is_matched_by_its_own_account() -> None:
    other_caller = f"arn:aws:iam::{OTHER}:user/carol"
    assert [
        f.check_name for f in validate(deny(Principal={"AWS": OTHER}), caller=other_caller)
    ] == [LOCKOUT_CHECK]
    assert validate(deny(Principal={"AWS": OWNER}), caller=other_caller) == []


# --------------------------------------------------------------------------- properties

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
ELEMENTS = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
]


def parses_or_is_malformed(text: str, kind: PolicyKind) -> None:
    try:
        doc = parse_policy(text, kind=kind)
    except ServiceError as exc:
        assert exc.code == "MalformedPolicyDocumentException"
        assert exc.message
    else:
        assert doc.statements


@given(st.text(max_size=200), st.sampled_from(["identity", "resource"]))
def test_arbitrary_text_never_crashes_the_parser(text: str, kind: PolicyKind) -> None:
    parses_or_is_malformed(text, kind)


@given(json_values, st.sampled_from(["identity", "resource"]))
def test_arbitrary_documents_never_crash_the_parser(document: Any, kind: PolicyKind) -> None:
    parses_or_is_malformed(json.dumps(document), kind)


@given(st.sampled_from(ELEMENTS), json_values, st.sampled_from(["identity", "resource"]))
def test_arbitrary_element_values_never_crash_the_parser(
    element: str, value: Any, kind: PolicyKind
) -> None:
    parses_or_is_malformed(policy(statement(**{element: value})), kind)


account_ids = st.from_regex(r"[0-9]{12}", fullmatch=True)
names = st.from_regex(r"[A-Za-z0-9+=,.@_-]{1,20}", fullmatch=True)
aws_principals = st.one_of(
    account_ids,
    account_ids.map(lambda a: f"arn:aws:iam::{a}:root"),
    st.tuples(account_ids, names).map(lambda t: f"arn:aws:iam::{t[0]}:role/{t[1]}"),
    st.tuples(account_ids, names).map(lambda t: f"arn:aws:iam::{t[0]}:user/{t[1]}"),
)
principals = st.one_of(
    st.just("*"),
    st.fixed_dictionaries(
        {},
        optional={
            "AWS": st.lists(aws_principals, min_size=1, max_size=3),
            "Service": st.lists(
                st.sampled_from(["lambda.amazonaws.com", "ec2.amazonaws.com"]),
                min_size=1,
                max_size=2,
            ),
        },
    ).filter(bool),
)
actions = st.lists(
    st.one_of(
        st.just("*"),
        st.from_regex(r"[a-z0-9][a-z0-9-]{0,11}:[A-Za-z*?]{1,16}", fullmatch=True),
    ),
    min_size=1,
    max_size=4,
)
resources = st.lists(
    st.one_of(
        st.just("*"), names.map(lambda n: f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:{n}")
    ),
    min_size=1,
    max_size=3,
)
condition_values = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=10), st.booleans(), st.integers(-(10**6), 10**6)
)
conditions = st.dictionaries(
    st.sampled_from(
        [
            "StringEquals",
            "StringLike",
            "ForAnyValue:StringEquals",
            "StringNotEqualsIfExists",
            "ArnLike",
        ]
    ),
    st.dictionaries(
        st.from_regex(r"[a-z]{1,6}:[A-Za-z]{1,12}", fullmatch=True),
        st.one_of(condition_values, st.lists(condition_values, max_size=3)),
        max_size=3,
    ),
    max_size=3,
).filter(
    # Condition keys are case-insensitive, so keys equal but for case are a duplicate.
    lambda c: all(len({k.lower() for k in block}) == len(block) for block in c.values())
)


@st.composite
def resource_statements(draw: st.DrawFn) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    stmt["NotPrincipal" if draw(st.booleans()) else "Principal"] = draw(principals)
    stmt["NotAction" if draw(st.booleans()) else "Action"] = draw(actions)
    stmt["NotResource" if draw(st.booleans()) else "Resource"] = draw(resources)
    condition = draw(conditions)
    if condition:
        stmt["Condition"] = condition
    return stmt


def as_condition_strings(value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    return tuple(("true" if v else "false") if isinstance(v, bool) else str(v) for v in values)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(resource_statements(), min_size=1, max_size=4))
def test_valid_policies_round_trip_into_the_ast(statements: list[dict[str, Any]]) -> None:
    text = policy(*statements)
    doc = parse(text)
    for raw, parsed in zip(statements, doc.statements, strict=True):
        assert parsed.effect == raw["Effect"]
        assert parsed.action == (tuple(raw["Action"]) if "Action" in raw else None)
        assert parsed.not_action == (tuple(raw["NotAction"]) if "NotAction" in raw else None)
        assert parsed.resource == (tuple(raw["Resource"]) if "Resource" in raw else None)
        assert parsed.not_resource == (tuple(raw["NotResource"]) if "NotResource" in raw else None)
        negated = "NotPrincipal" in raw
        raw_principal: Any = raw["NotPrincipal" if negated else "Principal"]
        got, unset = (
            (parsed.not_principal, parsed.principal)
            if negated
            else (parsed.principal, parsed.not_principal)
        )
        assert got is not None
        assert unset is None
        if raw_principal == "*":
            assert got == Principal(wildcard=True)
        else:
            assert got.entries == {kind: tuple(v) for kind, v in raw_principal.items()}
        assert parsed.condition == {
            op: {key: as_condition_strings(v) for key, v in block.items()}
            for op, block in raw.get("Condition", {}).items()
        }
    # Layout and key order do not change the policy.
    reordered = json.dumps(json.loads(text), indent=2, sort_keys=True)
    assert parse(reordered) == doc


pinning_conditions = st.tuples(
    st.sampled_from(
        ["StringEquals", "StringLike", "StringEqualsIgnoreCase", "ForAnyValue:StringEquals"]
    ),
    st.sampled_from(
        [
            "aws:PrincipalAccount",
            "aws:PrincipalOrgID",
            "aws:SourceAccount",
            "aws:SourceVpc",
            "aws:SourceVpce",
            "aws:userid",
            "aws:SourceOwner",
        ]
    ),
    st.lists(st.from_regex(r"[a-z0-9-]{1,16}", fullmatch=True), min_size=1, max_size=3),
)


@given(st.sampled_from(["*", {"AWS": "*"}]), pinning_conditions)
def test_fixed_pins_make_star_private_and_if_exists_undoes_it(
    principal: Any, pin: tuple[str, str, list[str]]
) -> None:
    operator, key, values = pin
    assert public(statement(Principal=principal, Condition={operator: {key: values}})) is False
    assert (
        public(statement(Principal=principal, Condition={f"{operator}IfExists": {key: values}}))
        is True
    )
    wildcarded = [*values[:-1], values[-1] + "*"]
    assert public(statement(Principal=principal, Condition={operator: {key: wildcarded}})) is True


@given(st.lists(resource_statements(), min_size=1, max_size=4))
def test_deny_statements_never_make_a_policy_public(statements: list[dict[str, Any]]) -> None:
    denies = [s | {"Effect": "Deny"} for s in statements]
    assert public(*denies) is False
    allows = [s for s in statements if s["Effect"] == "Allow"]
    if allows:
        assert public(*allows, *denies) is public(*allows)


@pytest.mark.parametrize(
    "value",
    [
        "2020",
        "2020-01",
        "2020-01-31",
        "2020-01-31T10:00Z",
        "2020-01-31T10:00:59+02:00",
        "2020-01-31T10:00:59.25Z",
        "1617220800",
    ],
)
def test_w3c_dates_are_valid_date_values(value: str) -> None:
    """AWS's Date operators take the W3C profiles of ISO 8601 (YYYY, YYYY-MM, YYYY-MM-DD
    and the time forms) or epoch seconds."""
    parsed = parse(policy(statement(Condition={"DateGreaterThan": {"aws:CurrentTime": value}})))
    assert parsed.statements[0].condition["DateGreaterThan"]["aws:CurrentTime"] == (value,)


@pytest.mark.parametrize("value", ["2020-13", "2020-1", "0000", "2020-01-32", "tomorrow"])
def test_dates_outside_the_w3c_profiles_are_refused(value: str) -> None:
    text = policy(statement(Condition={"DateGreaterThan": {"aws:CurrentTime": value}}))
    assert f'"{value}" is not a valid date' in malformed(text, "resource")
