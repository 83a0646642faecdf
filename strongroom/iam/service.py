"""IAM's domain logic over the store, one module per noun: users (:mod:`.users`), access
keys (:mod:`.access_keys`), tags (:mod:`.tags`), groups (:mod:`.groups`), roles
(:mod:`.roles`), inline policies (:mod:`.inline_policies`), managed policies, attachments
and permissions boundaries (:mod:`.policies`), login profiles (:mod:`.login_profiles`) and
the identity read model for the authorizer and STS (:mod:`.identities`); what they share is
in :mod:`.base`, :mod:`.common` and :mod:`.shapes`.

Every public method named after an operation is one operation: it takes the caller and
the parsed input members (the botocore ``iam`` model's names) and returns the output
members of the model's output shape. The handlers shared by users, groups and roles
(``tag``, ``put_inline``, ``attach``, ``put_boundary``, ...) take the kind first and are
bound to it in :mod:`strongroom.iam.api`. Checks come before writes and each write
operation is one transaction, so a refused request changes nothing. Errors carry IAM's
codes and, where AWS's wording is on record, its messages.

Besides the operations, the authorizer and STS read identities through
:meth:`IdentityService.principal_policies`, :meth:`IdentityService.role` and
:meth:`IdentityService.generation` (the authorizer through the
:class:`strongroom.types.Identities` protocol). :meth:`IdentityService.verify_password`
checks a login profile's password; no sign-in is served yet.
"""

from __future__ import annotations

from strongroom.iam.access_keys import AccessKeys
from strongroom.iam.bootstrap import (
    create_account_access_role,
    create_admin_user,
    trust_account_document,
)
from strongroom.iam.common import (
    ADMIN_USER,
    MAX_ACCESS_KEYS,
    MAX_ATTACHED_POLICIES,
    MAX_GROUPS_PER_USER,
    MAX_POLICY_VERSIONS,
    MAX_TAGS,
    entity_arn,
    new_id,
)
from strongroom.iam.groups import Groups
from strongroom.iam.identities import IdentityReads, RoleInfo
from strongroom.iam.inline_policies import InlinePolicies
from strongroom.iam.login_profiles import LoginProfiles
from strongroom.iam.policies import ManagedPolicies
from strongroom.iam.roles import Roles
from strongroom.iam.tags import Tagging
from strongroom.iam.users import Users

# The old import path of these names, kept for the packages and tests that use it.
__all__ = [
    "ADMIN_USER",
    "MAX_ACCESS_KEYS",
    "MAX_ATTACHED_POLICIES",
    "MAX_GROUPS_PER_USER",
    "MAX_POLICY_VERSIONS",
    "MAX_TAGS",
    "IdentityService",
    "RoleInfo",
    "create_account_access_role",
    "create_admin_user",
    "entity_arn",
    "new_id",
    "trust_account_document",
]


class IdentityService(
    Users,
    AccessKeys,
    Tagging,
    Groups,
    Roles,
    InlinePolicies,
    ManagedPolicies,
    LoginProfiles,
    IdentityReads,
):
    """The IAM service: every noun's operations over one store, clock and Marker codec."""
