"""IAM's output shapes: users, groups, roles, managed policies and their versions, login
profiles, as the botocore ``iam`` model names their members."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.clock import from_ms, to_ms
from strongroom.iam.common import Output, _tags_out, _url_encoded
from strongroom.iam.managed_policies import AwsManagedPolicy
from strongroom.iam.policy_rows import PolicyRecord, VersionRecord
from strongroom.iam.repository import GroupRecord, LoginProfileRecord, RoleRecord, Tags, UserRecord


def _boundary_out(arn: str) -> dict[str, str]:
    return {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": arn}


def _user_out(user: UserRecord, *, full: bool) -> Output:
    """A User; list operations leave out PermissionsBoundary and Tags, as IAM's do."""
    out: Output = {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.id,
        "Arn": user.arn,
        "CreateDate": from_ms(user.created_ms),
    }
    if user.password_last_used_ms is not None:
        out["PasswordLastUsed"] = from_ms(user.password_last_used_ms)
    if full and user.permissions_boundary:
        out["PermissionsBoundary"] = _boundary_out(user.permissions_boundary)
    if full and user.tags:
        out["Tags"] = _tags_out(user.tags)
    return out


def _group_out(group: GroupRecord) -> Output:
    return {
        "Path": group.path,
        "GroupName": group.name,
        "GroupId": group.id,
        "Arn": group.arn,
        "CreateDate": from_ms(group.created_ms),
    }


def _role_out(role: RoleRecord, *, full: bool, last_used: bool = False) -> Output:
    """A Role; ListRoles leaves out PermissionsBoundary, RoleLastUsed and Tags."""
    out: Output = {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.id,
        "Arn": role.arn,
        "CreateDate": from_ms(role.created_ms),
        "AssumeRolePolicyDocument": _url_encoded(role.trust_policy),
        "MaxSessionDuration": role.max_session_duration,
    }
    if role.description is not None:
        out["Description"] = role.description
    if full and role.permissions_boundary:
        out["PermissionsBoundary"] = _boundary_out(role.permissions_boundary)
    if full and role.tags:
        out["Tags"] = _tags_out(role.tags)
    if last_used:
        used: Output = {}
        if role.last_used_ms is not None:
            used["LastUsedDate"] = from_ms(role.last_used_ms)
            used["Region"] = role.last_used_region
        out["RoleLastUsed"] = used
    return out


@dataclass(frozen=True)
class _Managed:
    """A managed policy: customer managed (``record``) or AWS managed (``aws``)."""

    arn: str
    policy_id: str
    name: str
    path: str
    description: str | None
    default_version: str
    created_ms: int
    updated_ms: int
    tags: Tags | None
    record: PolicyRecord | None = None
    aws: AwsManagedPolicy | None = None

    @classmethod
    def local(cls, record: PolicyRecord) -> _Managed:
        return cls(
            record.arn,
            record.id,
            record.name,
            record.path,
            record.description,
            record.default_version,
            record.created_ms,
            record.updated_ms,
            record.tags,
            record=record,
        )

    @classmethod
    def of_aws(cls, policy: AwsManagedPolicy) -> _Managed:
        return cls(
            policy.arn,
            policy.policy_id,
            policy.name,
            policy.path,
            policy.description,
            policy.version_id,
            to_ms(policy.created),
            to_ms(policy.updated),
            None,
            aws=policy,
        )

    def out(self, attachments: int, boundaries: int, *, full: bool) -> Output:
        """A Policy; ListPolicies leaves out Description and Tags, as IAM's does."""
        out: Output = {
            "PolicyName": self.name,
            "PolicyId": self.policy_id,
            "Arn": self.arn,
            "Path": self.path,
            "DefaultVersionId": self.default_version,
            "AttachmentCount": attachments,
            "PermissionsBoundaryUsageCount": boundaries,
            "IsAttachable": True,
            "CreateDate": from_ms(self.created_ms),
            "UpdateDate": from_ms(self.updated_ms),
        }
        if full:
            if self.description:
                out["Description"] = self.description
            out["Tags"] = _tags_out(self.tags)
        return out


def _version_out(version: VersionRecord, default: str, *, document: bool) -> Output:
    """A PolicyVersion; only GetPolicyVersion returns its Document (URL-encoded)."""
    out: Output = {
        "VersionId": version.version_id,
        "IsDefaultVersion": version.version_id == default,
        "CreateDate": from_ms(version.created_ms),
    }
    if document:
        out["Document"] = _url_encoded(version.document)
    return out


def _login_profile_out(user: UserRecord, profile: LoginProfileRecord) -> Output:
    out: Output = {
        "UserName": user.name,
        "CreateDate": from_ms(profile.created_ms),
        "PasswordResetRequired": profile.password_reset_required,
    }
    if profile.max_signin_session_duration is not None:
        out["MaxSigninSessionDuration"] = profile.max_signin_session_duration
    return out
