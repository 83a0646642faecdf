"""The AWS managed policies users reach for, as AWS publishes them.

Sources (AWS Managed Policy Reference Guide, docs.aws.amazon.com/aws-managed-policy/):

- ``AdministratorAccess``: v1, created and last edited 2015-02-06T18:39:46Z, PolicyId
  ANPAIWMBCKSKIEE64ZLYK.
- ``SecretsManagerReadWrite``: v6, created 2018-04-04T18:05Z, edited 2026-08-25T23:37Z.
  The document is AWS's verbatim (it grants Lambda, CloudFormation, EC2 and RDS lookups
  the Secrets Manager console uses; only the ``secretsmanager:*`` and ``kms:`` parts have
  an effect here). Its PolicyId is not on record here, so the id below is derived from
  the ARN (stable, ANPA-shaped, but not AWS's).
- ``ReadOnlyAccess``: v178, created 2015-02-06T18:39:48Z, edited 2026-02-12T18:01:33Z,
  PolicyId ANPAILL3HVNFSB6DCOWYQ. Upstream it lists about 2,900 actions across more than
  300 services in two statements (``ReadOnlyActionsGroup1`` and ``...Group2``). We keep
  both statements with only the actions of the services Strongroom serves (CloudTrail,
  IAM, KMS, Lambda, Organizations, Secrets Manager, STS), each exactly as upstream
  writes it; note that it does not allow ``secretsmanager:GetSecretValue``.

Each policy has only its current default version here; older AWS versions are not kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

AWS_POLICY_PREFIX = "arn:aws:iam::aws:policy"


@dataclass(frozen=True)
class AwsManagedPolicy:
    name: str
    policy_id: str
    description: str
    version_id: str
    created: datetime
    updated: datetime
    document: str
    path: str = "/"

    @property
    def arn(self) -> str:
        return f"{AWS_POLICY_PREFIX}{self.path}{self.name}"


def _document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=4)


def _derived_id(name: str) -> str:
    digest = hashlib.sha256(f"{AWS_POLICY_PREFIX}/{name}".encode()).digest()
    return "ANPA" + base64.b32encode(digest).decode()[:17]


ADMINISTRATOR_ACCESS = AwsManagedPolicy(
    name="AdministratorAccess",
    policy_id="ANPAIWMBCKSKIEE64ZLYK",
    description="Provides full access to AWS services and resources.",
    version_id="v1",
    created=datetime(2015, 2, 6, 18, 39, 46, tzinfo=UTC),
    updated=datetime(2015, 2, 6, 18, 39, 46, tzinfo=UTC),
    document=_document([{"Effect": "Allow", "Action": "*", "Resource": "*"}]),
)

SECRETS_MANAGER_READ_WRITE = AwsManagedPolicy(
    name="SecretsManagerReadWrite",
    policy_id=_derived_id("SecretsManagerReadWrite"),
    # "exludes" is AWS's spelling.
    description=(
        "Provides read/write access to AWS Secrets Manager via the AWS Management Console. "
        "Note: this exludes IAM actions, so combine with IAMFullAccess if rotation "
        "configuration is required."
    ),
    version_id="v6",
    created=datetime(2018, 4, 4, 18, 5, tzinfo=UTC),
    updated=datetime(2026, 8, 25, 23, 37, tzinfo=UTC),
    document=_document(
        [
            {
                "Sid": "BasePermissions",
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:*",
                    "cloudformation:CreateChangeSet",
                    "cloudformation:DescribeChangeSet",
                    "cloudformation:DescribeStackResource",
                    "cloudformation:DescribeStacks",
                    "cloudformation:ExecuteChangeSet",
                    "docdb-elastic:GetCluster",
                    "docdb-elastic:ListClusters",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcs",
                    "kms:DescribeKey",
                    "kms:ListAliases",
                    "kms:ListKeys",
                    "lambda:ListFunctions",
                    "rds:DescribeDBClusters",
                    "rds:DescribeDBInstances",
                    "redshift:DescribeClusters",
                    "redshift-serverless:ListWorkgroups",
                    "redshift-serverless:GetNamespace",
                    "tag:GetResources",
                ],
                "Resource": "*",
            },
            {
                "Sid": "LambdaPermissions",
                "Effect": "Allow",
                "Action": [
                    "lambda:AddPermission",
                    "lambda:CreateFunction",
                    "lambda:GetFunction",
                    "lambda:InvokeFunction",
                    "lambda:UpdateFunctionConfiguration",
                ],
                "Resource": "arn:aws:lambda:*:*:function:SecretsManager*",
            },
            {
                "Sid": "SARPermissions",
                "Effect": "Allow",
                "Action": [
                    "serverlessrepo:CreateCloudFormationChangeSet",
                    "serverlessrepo:GetApplication",
                ],
                "Resource": "arn:aws:serverlessrepo:*:*:applications/SecretsManager*",
            },
            {
                "Sid": "S3Permissions",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [
                    "arn:aws:s3:::awsserverlessrepo-changesets*",
                    "arn:aws:s3:::secrets-manager-rotation-apps-*/*",
                ],
            },
            {
                "Sid": "CloudFormationTagOnCreate",
                "Effect": "Allow",
                "Action": ["cloudformation:TagResource", "cloudformation:UntagResource"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "cloudformation:CreateAction": ["CreateChangeSet", "ExecuteChangeSet"]
                    }
                },
            },
        ]
    ),
)

# Trimmed to the services Strongroom serves (see the module docstring); each action as
# AWS lists it in v178, in AWS's order and statement.
READ_ONLY_ACCESS = AwsManagedPolicy(
    name="ReadOnlyAccess",
    policy_id="ANPAILL3HVNFSB6DCOWYQ",
    description="Provides read-only access to AWS services and resources.",
    version_id="v178",
    created=datetime(2015, 2, 6, 18, 39, 48, tzinfo=UTC),
    updated=datetime(2026, 2, 12, 18, 1, 33, tzinfo=UTC),
    document=_document(
        [
            {
                "Sid": "ReadOnlyActionsGroup1",
                "Effect": "Allow",
                "Action": [
                    "cloudtrail:Describe*",
                    "cloudtrail:Get*",
                    "cloudtrail:List*",
                    "cloudtrail:LookupEvents",
                    "iam:Generate*",
                    "iam:Get*",
                    "iam:List*",
                    "iam:Simulate*",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ReadOnlyActionsGroup2",
                "Effect": "Allow",
                "Action": [
                    "kms:Describe*",
                    "kms:Get*",
                    "kms:List*",
                    "lambda:Get*",
                    "lambda:List*",
                    "organizations:Describe*",
                    "organizations:List*",
                    "secretsmanager:Describe*",
                    "secretsmanager:GetResourcePolicy",
                    "secretsmanager:List*",
                    "sts:GetAccessKeyInfo",
                    "sts:GetCallerIdentity",
                    "sts:GetSessionToken",
                ],
                "Resource": "*",
            },
        ]
    ),
)

CATALOGUE: dict[str, AwsManagedPolicy] = {
    policy.arn: policy
    for policy in (ADMINISTRATOR_ACCESS, READ_ONLY_ACCESS, SECRETS_MANAGER_READ_WRITE)
}


def find(arn: str) -> AwsManagedPolicy | None:
    return CATALOGUE.get(arn)
