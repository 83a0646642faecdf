"""The authorization seam of the pipeline.

Until the IAM policy engine lands, the rule is: a principal may do everything in its own
account, nothing elsewhere.
"""

from __future__ import annotations

from typing import Protocol

from strongroom.iam.credentials import Principal
from strongroom.protocol.errors import ServiceError


class Authorizer(Protocol):
    def authorize(self, principal: Principal, action: str, account_id: str) -> None:
        """Raise AccessDeniedException unless ``principal`` may perform ``action``."""


class AccountAdminAuthorizer:
    def authorize(self, principal: Principal, action: str, account_id: str) -> None:
        if principal.account_id != account_id or not principal.is_account_admin:
            raise ServiceError(
                "AccessDeniedException",
                f"User: {principal.arn} is not authorized to perform: {action} "
                "because no identity-based policy allows the action",
            )
