"""A walk over every operation of every service served, against AWS's Service
Authorization Reference (issue 13 §1, issue 18):

(a) the checks an operation asks for name exactly the resource types the reference
    requires for its action (each check's resource an ARN of one of the action's resource
    types, every required type present) and only condition keys the reference lists;
(b) every condition key the reference lists for the action is in the request context
    whenever the request or the stored resource defines a value: each operation is driven
    with a representative request (every member that defines a key) against stored
    resources that carry every attribute that defines one (tags, path, boundary,
    replicas...). The next key we forget fails here instead of failing open.

Requests are handed to each service's check builder, as the pipeline does; they are not
run, so one request may carry every member at once.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from strongroom.audit.api import PublicKeys, cloudtrail_spec
from strongroom.audit.lookup import EventLookup
from strongroom.clock import ManualClock
from strongroom.functions.api import lambda_spec
from strongroom.functions.logs import FunctionLogs, logs_spec
from strongroom.iam.api import iam_spec
from strongroom.iam.mfa import MfaDevices
from strongroom.iam.organizations import Organizations, organizations_spec
from strongroom.iam.service import IdentityService
from strongroom.iam.sts import SecurityTokenService, sts_spec
from strongroom.keys.api import kms_spec
from strongroom.policy import reference
from strongroom.protocol.pagination import TokenCodec
from strongroom.secrets.api import secretsmanager_spec
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.types import Caller, Check, Principal, ServiceSpec, admin_arn
from tests.aws import create_account
from tests.inprocess import client, signing_at

REGION = "us-east-1"
ADMIN = admin_arn(DEV_ACCOUNT)
TAGS = [{"Key": "team", "Value": "blue"}, {"Key": "tier", "Value": "gold"}]
ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            }
        ],
    }
)

LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


ZIP = _zip()

# Keys no request to Strongroom can define, whatever it carries.
NEVER_DEFINED = {
    # Only an AWS service calling KMS for its caller defines it (Secrets Manager does, in
    # secrets/service.py); a request to the KMS API never does.
    "kms:ViaService": "a direct KMS request",
    # Nitro Enclaves attestation (the Recipient member): not served.
    "kms:RecipientAttestation:": "no enclave attestation",
    # When a key was last used is not tracked.
    "kms:TrailingDaysWithoutKeyUsage": "key use is not tracked",
    # Grants name IAM principals only: CreateGrant refuses service principals.
    "kms:GranteeServicePrincipal": "no service principals in grants",
    "kms:RetiringServicePrincipal": "no service principals in grants",
    # Multi-Region keys are not served (MultiRegion=true is refused).
    "kms:MultiRegionKeyType": "no multi-Region keys",
    # IAM's role templates are not served.
    "iam:RoleTemplateARN": "no role templates",
    # FIDO security keys are not served: MFA devices here are virtual (TOTP) ones.
    "iam:FIDO-": "no FIDO security keys",
    "iam:RegisterSecurityKey": "no FIDO security keys",
    # Web identity and SAML federation keys: AssumeRole by an IAM principal never has them.
    "accounts.google.com:": "web identity",
    "cognito-identity.amazonaws.com:": "web identity",
    "graph.facebook.com:": "web identity",
    "www.amazon.com:": "web identity",
    "saml:": "SAML",
    # The walk's secret has no rotation function (its deployment has no function service).
    "secretsmanager:resource/AllowRotationLambdaArn": "no rotation",
    # Lambda: no Alexa event sources, function URLs, layers, VPCs or code signing (the
    # members that would define them are refused).
    "lambda:EventSourceToken": "no Alexa event sources",
    "lambda:InvokedViaFunctionUrl": "no function URLs",
    "lambda:FunctionUrlAuthType": "no function URLs",
    "lambda:CodeSigningConfigArn": "no code signing",
    "lambda:Layer": "no layers",
    "lambda:SecurityGroupIds": "no VPC configuration",
    "lambda:SubnetIds": "no VPC configuration",
    "lambda:VpcIds": "no VPC configuration",
}
# The resource of a Create* operation does not exist yet: it has no tags of its own (the
# request's tags are aws:RequestTag).
NOT_YET = {
    ("iam", "CreateUser"): ("aws:ResourceTag/${TagKey}", "iam:ResourceTag/${TagKey}"),
    ("iam", "CreateRole"): ("aws:ResourceTag/${TagKey}", "iam:ResourceTag/${TagKey}"),
    ("iam", "CreatePolicy"): ("aws:ResourceTag/${TagKey}",),
    ("iam", "CreateVirtualMFADevice"): ("aws:ResourceTag/${TagKey}",),
    ("secretsmanager", "CreateSecret"): (
        "aws:ResourceTag/${TagKey}",
        "secretsmanager:ResourceTag/tag-key",
        "secretsmanager:resource/Type",  # the request's Type is secretsmanager:Type
    ),
    ("kms", "CreateKey"): ("aws:ResourceTag/${TagKey}",),
    ("organizations", "CreateAccount"): ("aws:ResourceTag/${TagKey}",),
    ("lambda", "CreateFunction"): ("aws:ResourceTag/${TagKey}",),
    # The log groups of functions' invocation logs carry no tags.
    ("logs", "FilterLogEvents"): ("aws:ResourceTag/${TagKey}",),
    ("logs", "GetLogEvents"): ("aws:ResourceTag/${TagKey}",),
    ("logs", "DescribeLogStreams"): ("aws:ResourceTag/${TagKey}",),
    ("logs", "PutRetentionPolicy"): ("aws:ResourceTag/${TagKey}",),
    ("logs", "DeleteRetentionPolicy"): ("aws:ResourceTag/${TagKey}",),
    ("logs", "DeleteLogGroup"): ("aws:ResourceTag/${TagKey}",),
    ("logs", "DeleteLogStream"): ("aws:ResourceTag/${TagKey}",),
}
# Request keys that a resource type lists for every action on it (Secrets Manager's
# secret does): a request defines them only when it carries tags, which the action then
# lists itself.
REQUEST_ONLY = ("aws:RequestTag/${TagKey}", "aws:TagKeys")
# Operations that AWS documents as needing no permission.
NO_PERMISSION = {("sts", "GetCallerIdentity"), ("sts", "GetSessionToken")}


@dataclass
class World:
    """The stored resources the representative requests are about."""

    specs: dict[str, ServiceSpec]
    user_arn: str
    role_arn: str
    policy_arn: str
    boundary_arn: str
    access_key_id: str
    key_id: str
    grant_id: str
    ciphertext: bytes
    secret_arn: str
    version_id: str
    member_account: str
    create_account_request: str
    function_role_arn: str


@pytest.fixture
def world(deployment: Deployment, clock: ManualClock) -> Iterator[World]:
    with signing_at(clock):
        iam = client(deployment, "iam")
        boundary = iam.create_policy(PolicyName="boundary", PolicyDocument=ALLOW_ALL)["Policy"]
        user = iam.create_user(
            UserName="walker",
            Path="/team/",
            Tags=TAGS,
            PermissionsBoundary=boundary["Arn"],
        )["User"]
        iam.create_group(GroupName="walkers", Path="/team/")
        role = iam.create_role(
            RoleName="walk-role",
            Path="/team/",
            AssumeRolePolicyDocument=TRUST,
            Tags=TAGS,
            PermissionsBoundary=boundary["Arn"],
        )["Role"]
        policy = iam.create_policy(
            PolicyName="walk-policy", Path="/team/", PolicyDocument=ALLOW_ALL, Tags=TAGS
        )["Policy"]
        key = iam.create_access_key(UserName="walker")["AccessKey"]["AccessKeyId"]
        iam.create_virtual_mfa_device(VirtualMFADeviceName="walk-phone", Tags=TAGS)
        kms = client(deployment, "kms")
        key_id = kms.create_key(Tags=[{"TagKey": "team", "TagValue": "blue"}])["KeyMetadata"][
            "KeyId"
        ]
        kms.create_alias(AliasName="alias/walk", TargetKeyId=key_id)
        grant_id = kms.create_grant(
            KeyId=key_id,
            GranteePrincipal=user["Arn"],
            RetiringPrincipal=ADMIN,
            Operations=["Decrypt", "RetireGrant"],
            Constraints={"EncryptionContextSubset": {"app": "walk"}},
        )["GrantId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"app": "walk"})[
            "CiphertextBlob"
        ]
        sm = client(deployment, "secretsmanager")
        secret = sm.create_secret(Name="walk/secret", SecretString="v", Tags=TAGS, Type="walk")
        sm.replicate_secret_to_regions(
            SecretId=secret["ARN"], AddReplicaRegions=[{"Region": "eu-west-1"}]
        )
        org = client(deployment, "organizations")
        org.create_organization()
        status = create_account(
            org,
            Email="member@example.com",
            AccountName="member",
            Tags=[{"Key": "team", "Value": "blue"}],
        )
        function_role = iam.create_role(
            RoleName="walk-function-role", AssumeRolePolicyDocument=LAMBDA_TRUST
        )["Role"]["Arn"]
        functions = client(deployment, "lambda")
        functions.create_function(
            FunctionName="walk-function",
            Runtime="python3.11",
            Role=function_role,
            Handler="index.handler",
            Code={"ZipFile": ZIP},
            Tags={"team": "blue"},
        )
        functions.add_permission(
            FunctionName="walk-function",
            StatementId="walk",
            Action="lambda:InvokeFunction",
            Principal="secretsmanager.amazonaws.com",
        )
    identities = IdentityService(
        deployment.store, deployment.barrier, clock, deployment.credentials
    )
    tokens = TokenCodec(b"w" * 32)
    mfa = MfaDevices(deployment.store, deployment.barrier, clock, tokens)
    specs = [
        secretsmanager_spec(deployment.secrets),
        kms_spec(deployment.keys),
        cloudtrail_spec(
            EventLookup(deployment.data_dir / "audit", clock, tokens),
            PublicKeys(deployment.store, clock, deployment.audit.fingerprint),
        ),
        iam_spec(identities, mfa),
        sts_spec(
            SecurityTokenService(deployment.store, deployment.credentials, identities, clock, mfa)
        ),
        organizations_spec(Organizations(deployment.store, deployment.credentials, clock, tokens)),
        lambda_spec(deployment.functions),
        logs_spec(FunctionLogs(deployment.functions.log_groups, tokens)),
    ]
    yield World(
        {spec.name: spec for spec in specs},
        user["Arn"],
        role["Arn"],
        policy["Arn"],
        boundary["Arn"],
        key,
        key_id,
        grant_id,
        blob,
        secret["ARN"],
        secret["VersionId"],
        status["AccountId"],
        status["Id"],
        function_role,
    )


def requests(w: World) -> dict[str, dict[str, Mapping[str, Any]]]:
    """One representative request per served operation, carrying every member that
    defines a condition key."""
    user = {"UserName": "WALKER"}  # names are looked up ignoring case, as on AWS
    group = {"GroupName": "walkers"}
    role = {"RoleName": "walk-role"}
    policy = {"PolicyArn": w.policy_arn}
    document = {"PolicyDocument": ALLOW_ALL}
    inline = {"PolicyName": "inline"}
    tags = {"Tags": TAGS}
    device = {"SerialNumber": f"arn:aws:iam::{DEV_ACCOUNT}:mfa/walk-phone"}
    codes = {"AuthenticationCode1": "123456", "AuthenticationCode2": "654321"}
    iam: dict[str, Mapping[str, Any]] = {
        "CreateUser": {
            "UserName": "new",
            "Path": "/dev/",
            **tags,
            "PermissionsBoundary": w.boundary_arn,
        },
        "GetUser": user,
        "ListUsers": {},
        "UpdateUser": {**user, "NewUserName": "renamed", "NewPath": "/moved/"},
        "DeleteUser": user,
        "TagUser": {**user, **tags},
        "UntagUser": {**user, "TagKeys": ["team"]},
        "ListUserTags": user,
        "CreateAccessKey": user,
        "ListAccessKeys": user,
        "UpdateAccessKey": {**user, "AccessKeyId": w.access_key_id, "Status": "Inactive"},
        "DeleteAccessKey": {**user, "AccessKeyId": w.access_key_id},
        "GetAccessKeyLastUsed": {"AccessKeyId": w.access_key_id},
        "CreateGroup": {"GroupName": "new", "Path": "/dev/"},
        "GetGroup": group,
        "ListGroups": {},
        "DeleteGroup": group,
        "AddUserToGroup": {**group, **user},
        "RemoveUserFromGroup": {**group, **user},
        "ListGroupsForUser": user,
        "CreateRole": {
            "RoleName": "new",
            "Path": "/dev/",
            "AssumeRolePolicyDocument": TRUST,
            **tags,
            "PermissionsBoundary": w.boundary_arn,
        },
        "GetRole": role,
        "ListRoles": {},
        "DeleteRole": role,
        "UpdateAssumeRolePolicy": {**role, **document},
        "UpdateRole": {**role, "Description": "d"},
        "TagRole": {**role, **tags},
        "UntagRole": {**role, "TagKeys": ["team"]},
        "ListRoleTags": role,
        "PutUserPolicy": {**user, **inline, **document},
        "GetUserPolicy": {**user, **inline},
        "ListUserPolicies": user,
        "DeleteUserPolicy": {**user, **inline},
        "PutGroupPolicy": {**group, **inline, **document},
        "GetGroupPolicy": {**group, **inline},
        "ListGroupPolicies": group,
        "DeleteGroupPolicy": {**group, **inline},
        "PutRolePolicy": {**role, **inline, **document},
        "GetRolePolicy": {**role, **inline},
        "ListRolePolicies": role,
        "DeleteRolePolicy": {**role, **inline},
        "CreatePolicy": {"PolicyName": "new", "Path": "/dev/", **document, **tags},
        "GetPolicy": policy,
        "ListPolicies": {},
        "DeletePolicy": policy,
        "CreatePolicyVersion": {**policy, **document},
        "GetPolicyVersion": {**policy, "VersionId": "v1"},
        "ListPolicyVersions": policy,
        "DeletePolicyVersion": {**policy, "VersionId": "v1"},
        "SetDefaultPolicyVersion": {**policy, "VersionId": "v1"},
        "AttachUserPolicy": {**user, **policy},
        "DetachUserPolicy": {**user, **policy},
        "AttachGroupPolicy": {**group, **policy},
        "DetachGroupPolicy": {**group, **policy},
        "AttachRolePolicy": {**role, **policy},
        "DetachRolePolicy": {**role, **policy},
        "ListAttachedUserPolicies": user,
        "ListAttachedGroupPolicies": group,
        "ListAttachedRolePolicies": role,
        "ListEntitiesForPolicy": policy,
        "PutUserPermissionsBoundary": {**user, "PermissionsBoundary": w.policy_arn},
        "DeleteUserPermissionsBoundary": user,
        "PutRolePermissionsBoundary": {**role, "PermissionsBoundary": w.policy_arn},
        "DeleteRolePermissionsBoundary": role,
        "CreateLoginProfile": {**user, "Password": "Corr3ct-Horse-Battery"},
        "GetLoginProfile": user,
        "UpdateLoginProfile": user,
        "DeleteLoginProfile": user,
        "ChangePassword": {"OldPassword": "Corr3ct-Horse-Battery", "NewPassword": "An0ther-one!"},
        "SimulatePrincipalPolicy": {"PolicySourceArn": w.user_arn, "ActionNames": ["s3:*"]},
        "SimulateCustomPolicy": {"PolicyInputList": [ALLOW_ALL], "ActionNames": ["s3:*"]},
        "CreateVirtualMFADevice": {"VirtualMFADeviceName": "new-phone", "Path": "/", **tags},
        "EnableMFADevice": {**user, **device, **codes},
        "ResyncMFADevice": {**user, **device, **codes},
        "DeactivateMFADevice": {**user, **device},
        "DeleteVirtualMFADevice": device,
        "ListMFADevices": user,
        "ListVirtualMFADevices": {},
    }
    key = {"KeyId": w.key_id}
    context = {"EncryptionContext": {"app": "walk"}}
    kms: dict[str, Mapping[str, Any]] = {
        "CancelKeyDeletion": key,
        "CreateAlias": {"AliasName": "alias/walk-2", "TargetKeyId": w.key_id},
        "CreateGrant": {
            **key,
            "GranteePrincipal": w.user_arn,
            "RetiringPrincipal": ADMIN,
            "Operations": ["Encrypt", "Decrypt"],
            "Constraints": {"EncryptionContextEquals": {"app": "walk"}, "SourceArn": w.secret_arn},
        },
        "CreateKey": {
            "KeySpec": "SYMMETRIC_DEFAULT",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "Origin": "AWS_KMS",
            "MultiRegion": False,
            "BypassPolicyLockoutSafetyCheck": False,
            "Tags": [{"TagKey": "team", "TagValue": "blue"}],
        },
        "Decrypt": {
            "CiphertextBlob": w.ciphertext,
            "KeyId": "alias/walk",
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            **context,
        },
        "DeleteAlias": {"AliasName": "alias/walk"},
        "DescribeKey": {"KeyId": "alias/walk"},
        "DisableKey": key,
        "DisableKeyRotation": key,
        "EnableKey": key,
        "EnableKeyRotation": {**key, "RotationPeriodInDays": 90},
        "Encrypt": {
            "KeyId": "alias/walk",
            "Plaintext": b"x",
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            **context,
        },
        "GenerateDataKey": {"KeyId": "alias/walk", "KeySpec": "AES_256", **context},
        "GenerateDataKeyWithoutPlaintext": {"KeyId": "alias/walk", "KeySpec": "AES_256", **context},
        "GenerateRandom": {"NumberOfBytes": 16},
        "GetKeyPolicy": key,
        "GetKeyRotationStatus": key,
        "ListAliases": {},
        "ListGrants": key,
        "ListKeyPolicies": key,
        "ListKeyRotations": key,
        "ListRetirableGrants": {"RetiringPrincipal": ADMIN},
        "ListKeys": {},
        "ListResourceTags": key,
        "PutKeyPolicy": {**key, "Policy": ALLOW_ALL, "BypassPolicyLockoutSafetyCheck": True},
        "ReEncrypt": {
            "CiphertextBlob": w.ciphertext,
            "SourceKeyId": "alias/walk",
            "SourceEncryptionContext": {"app": "walk"},
            "DestinationKeyId": "alias/walk",
            "DestinationEncryptionContext": {"app": "walk"},
            "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        },
        "RetireGrant": {**key, "GrantId": w.grant_id},
        "RevokeGrant": {**key, "GrantId": w.grant_id},
        "RotateKeyOnDemand": key,
        "ScheduleKeyDeletion": {**key, "PendingWindowInDays": 7},
        "TagResource": {**key, "Tags": [{"TagKey": "team", "TagValue": "red"}]},
        "UntagResource": {**key, "TagKeys": ["team"]},
        "UpdateAlias": {"AliasName": "alias/walk", "TargetKeyId": w.key_id},
        "UpdateKeyDescription": {**key, "Description": "d"},
    }
    secret = {"SecretId": w.secret_arn}
    secretsmanager: dict[str, Mapping[str, Any]] = {
        "BatchGetSecretValue": {"SecretIdList": [w.secret_arn]},
        "CancelRotateSecret": secret,
        "CreateSecret": {
            "Name": "walk/new",
            "Description": "d",
            "KmsKeyId": w.key_id,
            "Tags": TAGS,
            "AddReplicaRegions": [{"Region": "eu-west-1"}],
            "ForceOverwriteReplicaSecret": True,
            "Type": "walk",
        },
        "DeleteResourcePolicy": secret,
        "DeleteSecret": {**secret, "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": False},
        "DescribeSecret": secret,
        "GetRandomPassword": {},
        "GetResourcePolicy": secret,
        "ListResourcePolicies": secret,
        "GetSecretValue": {**secret, "VersionId": w.version_id, "VersionStage": "AWSCURRENT"},
        "ListSecretVersionIds": secret,
        "ListSecrets": {},
        "PutResourcePolicy": {**secret, "ResourcePolicy": ALLOW_ALL, "BlockPublicPolicy": True},
        "PutSecretValue": {**secret, "SecretString": "w"},
        "RemoveRegionsFromReplication": {**secret, "RemoveReplicaRegions": ["eu-west-1"]},
        "ReplicateSecretToRegions": {
            **secret,
            "AddReplicaRegions": [{"Region": "eu-west-2"}],
            "ForceOverwriteReplicaSecret": True,
        },
        "RestoreSecret": secret,
        "RotateSecret": {
            **secret,
            "RotationLambdaARN": f"arn:aws:lambda:us-east-1:{DEV_ACCOUNT}:function:walk",
            "RotationRules": {"AutomaticallyAfterDays": 7},
            "RotateImmediately": False,
            "ExternalSecretRotationRoleArn": f"arn:aws:iam::{DEV_ACCOUNT}:role/walk",
        },
        "StopReplicationToReplica": secret,
        "TagResource": {**secret, "Tags": TAGS},
        "UntagResource": {**secret, "TagKeys": ["team"]},
        "UpdateSecret": {**secret, "Description": "d", "KmsKeyId": w.key_id, "Type": "walk"},
        "UpdateSecretVersionStage": {**secret, "VersionStage": "STAGED"},
        "ValidateResourcePolicy": {**secret, "ResourcePolicy": ALLOW_ALL},
    }
    sts: dict[str, Mapping[str, Any]] = {
        "AssumeRole": {
            "RoleArn": w.role_arn,
            "RoleSessionName": "walk",
            "ExternalId": "ext",
            "Tags": [{"Key": "project", "Value": "walk"}],
            "TransitiveTagKeys": ["project"],
            "SourceIdentity": "walker",
        },
        "GetAccessKeyInfo": {"AccessKeyId": w.access_key_id},
        "GetCallerIdentity": {},
        "GetFederationToken": {"Name": "walker", "Tags": [{"Key": "project", "Value": "walk"}]},
        "GetSessionToken": {},
    }
    organizations: dict[str, Mapping[str, Any]] = {
        "CreateOrganization": {},
        "DescribeOrganization": {},
        "CreateAccount": {
            "Email": "other@example.com",
            "AccountName": "other",
            "Tags": [{"Key": "team", "Value": "blue"}],
        },
        "DescribeCreateAccountStatus": {"CreateAccountRequestId": w.create_account_request},
        "ListAccounts": {},
        "DescribeAccount": {"AccountId": w.member_account},
    }
    function = {"FunctionName": "walk-function"}
    functions: dict[str, Mapping[str, Any]] = {
        "CreateFunction": {
            "FunctionName": "walk-new",
            "Runtime": "python3.11",
            "Role": w.function_role_arn,
            "Handler": "index.handler",
            "Code": {"ZipFile": ZIP},
            "Tags": {"team": "blue"},
        },
        "GetFunction": function,
        "GetFunctionConfiguration": function,
        "ListFunctions": {},
        "UpdateFunctionCode": {**function, "ZipFile": ZIP},
        "UpdateFunctionConfiguration": {**function, "Role": w.function_role_arn},
        "DeleteFunction": function,
        "Invoke": {**function, "Payload": b"{}"},
        "AddPermission": {
            **function,
            "StatementId": "new",
            "Action": "lambda:InvokeFunction",
            "Principal": "secretsmanager.amazonaws.com",
        },
        "RemovePermission": {**function, "StatementId": "walk"},
        "GetPolicy": function,
        "PutFunctionEventInvokeConfig": {**function, "MaximumRetryAttempts": 1},
        "GetFunctionEventInvokeConfig": function,
        "UpdateFunctionEventInvokeConfig": {**function, "MaximumEventAgeInSeconds": 60},
        "DeleteFunctionEventInvokeConfig": function,
        "ListFunctionEventInvokeConfigs": function,
    }
    group = {"logGroupName": "/aws/lambda/walk-function"}
    logs: dict[str, Mapping[str, Any]] = {
        "FilterLogEvents": group,
        "GetLogEvents": {**group, "logStreamName": "2026/12/07/[$LATEST]0123"},
        "DescribeLogStreams": group,
        "DescribeLogGroups": {"logGroupNamePrefix": "/aws/lambda/"},
        "PutRetentionPolicy": {**group, "retentionInDays": 30},
        "DeleteRetentionPolicy": group,
        "DeleteLogGroup": group,
        "DeleteLogStream": {**group, "logStreamName": "2026/12/07/[$LATEST]0123"},
    }
    return {
        "logs": logs,
        "lambda": functions,
        "iam": iam,
        "kms": kms,
        "secretsmanager": secretsmanager,
        "sts": sts,
        "organizations": organizations,
        "cloudtrail": {"LookupEvents": {}, "ListPublicKeys": {}},
    }


def admin_caller() -> Caller:
    principal = Principal(DEV_ACCOUNT, ADMIN, "test", "user")
    return Caller(DEV_ACCOUNT, REGION, ADMIN, principal=principal)


def user_caller(arn: str) -> Caller:
    return Caller(DEV_ACCOUNT, REGION, arn, principal=Principal(DEV_ACCOUNT, arn, "walk", "user"))


def walk(world: World) -> Iterator[tuple[str, str, list[Check]]]:
    for service, operations in requests(world).items():
        spec = world.specs[service]
        for operation, params in operations.items():
            # ChangePassword names no user: it is always the caller's own, here the walker.
            caller = (
                user_caller(world.user_arn) if operation == "ChangePassword" else admin_caller()
            )
            yield service, operation, spec.checks_for(caller, operation, params)


# Actions newer than the pinned Service Authorization Reference data, walked as the action
# AWS documents them like (secretsmanager:ListResourcePolicies: on the secret, as
# GetResourcePolicy).
NEWER_THAN_REFERENCE = {"secretsmanager:ListResourcePolicies": "secretsmanager:GetResourcePolicy"}


def as_in_reference(check: Check) -> str:
    return NEWER_THAN_REFERENCE.get(check.action, check.action)


def action_of(check: Check) -> reference.Action:
    service, name = as_in_reference(check).split(":", 1)
    return reference.action(service, name)


def test_every_served_operation_has_a_representative_request(world: World) -> None:
    walked = requests(world)
    assert set(walked) == set(reference.SERVED) == set(world.specs)
    for service, spec in world.specs.items():
        assert set(walked[service]) == set(spec.handlers), service


def test_checks_name_exactly_the_reference_resource_types_and_keys(world: World) -> None:
    for service, operation, checks in walk(world):
        where = f"{service}:{operation}"
        if (service, operation) in NO_PERMISSION:
            assert checks == [], where
            continue
        assert checks, where
        for check in checks:
            action = action_of(check)
            types = [resource.type for resource in action.resources]
            if not types:
                assert check.resource == "*", (where, check)
            else:
                assert any(kind.arn_matches(check.resource) for kind in types), (where, check)
            unlisted = [key for key in check.context if not action.lists_key(key)]
            assert unlisted == [], (where, check.action, unlisted)
        for action in {action_of(check) for check in checks}:
            for resource in action.resources:
                if resource.required:
                    assert any(
                        as_in_reference(check) == action.iam_action
                        and resource.type.arn_matches(check.resource)
                        for check in checks
                    ), (where, action.iam_action, resource.type.name)


def _exempt(service: str, operation: str, template: str) -> bool:
    if any(template.startswith(prefix) for prefix in NEVER_DEFINED):
        return True
    return template in NOT_YET.get((service, operation), ())


def test_every_listed_key_with_a_value_is_in_the_request_context(world: World) -> None:
    missing: list[tuple[str, str, str]] = []
    for service, operation, checks in walk(world):
        try:
            actions = [reference.action(service, operation)]
        except KeyError:  # ReEncrypt: kms:ReEncryptFrom and kms:ReEncryptTo
            actions = list({action_of(check) for check in checks})
        for action in actions:
            carried = [
                key
                for check in checks
                if as_in_reference(check) == action.iam_action
                for key in check.context
            ]
            for template in action.all_condition_keys:
                if template in REQUEST_ONLY and template not in action.condition_keys:
                    continue
                if _exempt(service, operation, template):
                    continue
                if not any(reference.key_matches(template, key) for key in carried):
                    missing.append((action.iam_action, operation, template))
    assert missing == [], "\n".join(map(str, missing))


def test_the_walk_sees_stored_attributes(world: World) -> None:
    """The stored entity, not the request, decides the ARN and the resource keys."""
    checks = world.specs["iam"].checks_for(admin_caller(), "PutUserPolicy", {"UserName": "WALKER"})
    assert [(c.resource, dict(c.context)) for c in checks] == [
        (
            f"arn:aws:iam::{DEV_ACCOUNT}:user/team/walker",
            {
                "aws:ResourceTag/team": ("blue",),
                "iam:ResourceTag/team": ("blue",),
                "aws:ResourceTag/tier": ("gold",),
                "iam:ResourceTag/tier": ("gold",),
                "iam:PermissionsBoundary": (world.boundary_arn,),
            },
        )
    ]
    # GetUser: the reference lists no iam:PermissionsBoundary for it.
    (got,) = world.specs["iam"].checks_for(admin_caller(), "GetUser", {"UserName": "walker"})
    assert "iam:PermissionsBoundary" not in got.context
    assert got.context["iam:ResourceTag/team"] == ("blue",)
