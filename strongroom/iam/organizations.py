"""AWS Organizations, enough to set up more accounts the way AWS does: an organization
whose management account is the caller's, member accounts created in it, and in each new
account the administrator role ``OrganizationAccountAccessRole`` that trusts the
management account (so ``aws sts assume-role`` reaches it). The facade is the botocore
``organizations`` model (AWS JSON 1.1, target prefix ``AWSOrganizationsV20161128``).

CreateAccount answers ``IN_PROGRESS``, as AWS's always does (its API reference: "the
request is processed asynchronously"); the caller learns the outcome from
DescribeCreateAccountStatus: ``SUCCEEDED`` with the new ``AccountId``, or ``FAILED`` with
its reason. Decision: the account is made within the request, so the first
DescribeCreateAccountStatus already tells the outcome. Tags on CreateAccount also need
``organizations:TagResource`` on the new account (CreateAccount API reference), asked
inside the transaction: a refusal creates nothing. Only the
management account may create accounts or read the organization's accounts; a member
account gets AWS's ``AccessDeniedException``, an account outside any organization
``AWSOrganizationsNotInUseException``. Who in an account may call each operation is the
pipeline's authorizer's business (``organizations:<Operation>``).

Decisions about behaviour AWS does not spell out are marked "Decision:" below.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from strongroom.audit.derived import service_event
from strongroom.audit.events import GLOBAL_REGION, MASK, build_service_event
from strongroom.clock import Clock, from_ms, now_ms
from strongroom.iam import repository as iam_repo
from strongroom.iam.credentials import CredentialStore, new_account_id
from strongroom.iam.service import create_account_access_role
from strongroom.policy.operation_checks import (
    Authorization,
    ContextValues,
    Resolver,
    Resource,
    reference_checks,
)
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec, request_scope
from strongroom.protocol.service import Handler, ServiceSpec, snake_case
from strongroom.store import schema
from strongroom.store.engine import Store
from strongroom.types import Caller, Check

Params = Mapping[str, Any]
Output = dict[str, Any]

OPERATIONS = (
    "CreateOrganization",
    "DescribeOrganization",
    "CreateAccount",
    "DescribeCreateAccountStatus",
    "ListAccounts",
    "DescribeAccount",
)
DEFAULT_ROLE_NAME = "OrganizationAccountAccessRole"
MAX_RESULTS = 20  # the model's bound, and the default page
_ORG_ID_ALPHABET = string.ascii_lowercase + string.digits


# Errors, with AWS's texts ----------------------------------------------------------------


def _not_in_use() -> ServiceError:
    return ServiceError(
        "AWSOrganizationsNotInUseException", "Your account is not a member of an organization."
    )


def _access_denied() -> ServiceError:
    return ServiceError(
        "AccessDeniedException", "You don't have permissions to access this resource."
    )


def _already_in_organization() -> ServiceError:
    return ServiceError(
        "AlreadyInOrganizationException",
        "The AWS account is already a member of an organization.",
    )


def _account_not_found() -> ServiceError:
    return ServiceError("AccountNotFoundException", "You specified an account that doesn't exist.")


def _status_not_found() -> ServiceError:
    return ServiceError(
        "CreateAccountStatusNotFoundException",
        "We can't find an create account request with the CreateAccountRequestId that you "
        "specified.",
    )


def _invalid_input(message: str) -> ServiceError:
    return ServiceError("InvalidInputException", message)


# Records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Organization:
    id: str
    management_account_id: str
    feature_set: str
    created_ms: int

    @property
    def arn(self) -> str:
        return f"arn:aws:organizations::{self.management_account_id}:organization/{self.id}"

    def account_arn(self, account_id: str) -> str:
        return f"arn:aws:organizations::{self.management_account_id}:account/{self.id}/{account_id}"


def _new_organization_id() -> str:
    return "o-" + "".join(secrets.choice(_ORG_ID_ALPHABET) for _ in range(10))


def _organization_out(org: Organization) -> Output:
    # Decision: MasterAccountEmail is left out (the management account's email is not
    # known here), and so is AvailablePolicyTypes: no policy type (SCPs) is enforced.
    return {
        "Id": org.id,
        "Arn": org.arn,
        "FeatureSet": org.feature_set,
        "MasterAccountArn": org.account_arn(org.management_account_id),
        "MasterAccountId": org.management_account_id,
    }


def _account_out(org: Organization, row: Any) -> Output:
    out: Output = {
        "Id": row.account_id,
        "Arn": org.account_arn(row.account_id),
        "Name": row.name,
        "Status": row.status,
        "State": row.status,
        "JoinedMethod": row.joined_method,
        "JoinedTimestamp": from_ms(row.joined_ms),
    }
    if row.email is not None:
        out["Email"] = row.email
    return out


def _status_out(row: Any) -> Output:
    out: Output = {
        "Id": row.id,
        "AccountName": row.account_name,
        "State": row.state,
        "RequestedTimestamp": from_ms(row.requested_ms),
    }
    if row.completed_ms is not None:
        out["CompletedTimestamp"] = from_ms(row.completed_ms)
    if row.account_id is not None:
        out["AccountId"] = row.account_id
    if row.failure_reason is not None:
        out["FailureReason"] = row.failure_reason
    return out


def _record_result(management: str, status: Output, clock: Clock) -> None:
    """CloudTrail's ``CreateAccountResult``: the service event that says how the account's
    creation ended, written with the CreateAccount call's own record."""
    details = {
        "createAccountStatus": {
            "id": status["Id"],
            "state": status["State"],
            "accountName": MASK,
            "requestedTimestamp": status["RequestedTimestamp"].isoformat(),
            **({"accountId": status["AccountId"]} if "AccountId" in status else {}),
            **(
                {"completedTimestamp": status["CompletedTimestamp"].isoformat()}
                if "CompletedTimestamp" in status
                else {}
            ),
            **({"failureReason": status["FailureReason"]} if "FailureReason" in status else {}),
        }
    }
    service_event(
        build_service_event(
            time=clock.now(),
            event_source="organizations.amazonaws.com",
            event_name="CreateAccountResult",
            account_id=management,
            region=GLOBAL_REGION,
            invoked_by="AWS Internal",
            resources=[],
            details=details,
        )
    )


def _in_progress(row: Any) -> Output:
    """CreateAccount's answer: the request, not yet its outcome."""
    return {
        "Id": row.id,
        "AccountName": row.account_name,
        "State": "IN_PROGRESS",
        "RequestedTimestamp": from_ms(row.requested_ms),
    }


def _tag_check(org: Organization, account_id: str, params: Params) -> Check:
    """organizations:TagResource on the new account, with the request's tags."""
    return Check(
        "organizations:TagResource",
        org.account_arn(account_id),
        context=organizations_request_keys(None, "TagResource", params),
    )


def _tags(raw: Sequence[Mapping[str, str]] | None) -> list[list[str]] | None:
    tags: list[list[str]] = []
    for tag in raw or ():
        if any(key == tag["Key"] for key, _ in tags):
            raise _invalid_input("You provided a duplicate tag key.")  # Decision: wording
        tags.append([tag["Key"], tag.get("Value", "")])
    return tags or None


_MEMBERS = (
    select(
        schema.organization_accounts,
        schema.accounts.c.name,
    )
    .join(
        schema.accounts,
        schema.accounts.c.account_id == schema.organization_accounts.c.account_id,
    )
    .order_by(schema.organization_accounts.c.joined_ms, schema.organization_accounts.c.account_id)
)


class Organizations:
    def __init__(
        self, store: Store, credentials: CredentialStore, clock: Clock, tokens: TokenCodec
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._clock = clock
        self._tokens = tokens

    def _now_ms(self) -> int:
        return now_ms(self._clock)

    # What other domains read ---------------------------------------------------------------

    def organization_of(self, account_id: str) -> Organization | None:
        """The organization ``account_id`` belongs to, or None (``aws:PrincipalOrgID``)."""
        with self._store.read() as conn:
            return self._organization_of(conn, account_id)

    def account_tags(self, organization_id: str, account_id: str) -> list[tuple[str, str]] | None:
        """The tags of member account ``account_id`` of the organization, or None when it
        is not a member (``aws:ResourceTag`` on the account)."""
        with self._store.read() as conn:
            row = conn.execute(
                select(schema.organization_accounts.c.tags).where(
                    schema.organization_accounts.c.organization_id == organization_id,
                    schema.organization_accounts.c.account_id == account_id,
                )
            ).first()
        if row is None:
            return None
        return [(str(key), str(value)) for key, value in row.tags or ()]

    @staticmethod
    def _organization_of(conn: Connection, account_id: str) -> Organization | None:
        row = conn.execute(
            select(schema.organizations)
            .join(
                schema.organization_accounts,
                schema.organization_accounts.c.organization_id == schema.organizations.c.id,
            )
            .where(schema.organization_accounts.c.account_id == account_id)
        ).first()
        if row is None:
            return None
        return Organization(row.id, row.management_account_id, row.feature_set, row.created_ms)

    def _management(self, conn: Connection, caller: Caller) -> Organization:
        """The caller's organization, if the caller is its management account."""
        org = self._organization_of(conn, caller.account_id)
        if org is None:
            raise _not_in_use()
        if org.management_account_id != caller.account_id:
            raise _access_denied()
        return org

    # Operations ----------------------------------------------------------------------------

    def create_organization(self, caller: Caller, params: Params) -> Output:
        feature_set: str = params.get("FeatureSet") or "ALL"
        org = Organization(_new_organization_id(), caller.account_id, feature_set, self._now_ms())
        try:
            with self._store.write() as conn:
                if self._organization_of(conn, caller.account_id) is not None:
                    raise _already_in_organization()
                conn.execute(
                    insert(schema.organizations).values(
                        id=org.id,
                        management_account_id=org.management_account_id,
                        feature_set=org.feature_set,
                        created_ms=org.created_ms,
                    )
                )
                # AWS lists the management account as having joined by invitation.
                conn.execute(
                    insert(schema.organization_accounts).values(
                        account_id=caller.account_id,
                        organization_id=org.id,
                        status="ACTIVE",
                        joined_method="INVITED",
                        joined_ms=org.created_ms,
                    )
                )
                # Membership is an input to every authorization (aws:PrincipalOrgID): what
                # was decided from IAM's state before it no longer holds.
                iam_repo.bump_generation(conn)
        except IntegrityError:
            raise _already_in_organization() from None  # a concurrent CreateOrganization
        return {"Organization": _organization_out(org)}

    def describe_organization(self, caller: Caller, params: Params) -> Output:
        org = self.organization_of(caller.account_id)
        if org is None:
            raise _not_in_use()
        return {"Organization": _organization_out(org)}

    def create_account(self, caller: Caller, params: Params) -> Output:
        email: str = params["Email"]
        name: str = params["AccountName"]
        role_name: str = params.get("RoleName") or DEFAULT_ROLE_NAME
        tags = _tags(params.get("Tags"))
        request_id = "car-" + secrets.token_hex(16)
        with self._store.write() as conn:
            org = self._management(conn, caller)
            now = self._now_ms()
            taken = conn.execute(
                select(schema.organization_accounts.c.account_id).where(
                    schema.organization_accounts.c.email_key == email.lower()
                )
            ).first()
            account_id = None if taken is not None else self._new_account(conn)
            if account_id is not None:
                self._credentials.create_account(conn, account_id, name)
                create_account_access_role(
                    conn, account_id, role_name, org.management_account_id, now
                )
                conn.execute(
                    insert(schema.organization_accounts).values(
                        account_id=account_id,
                        organization_id=org.id,
                        email=email,
                        email_key=email.lower(),
                        status="ACTIVE",
                        joined_method="CREATED",
                        joined_ms=now,
                        tags=tags,
                    )
                )
                iam_repo.bump_generation(conn)  # as in create_organization
                if tags:
                    caller.authorize(_tag_check(org, account_id, params))
            conn.execute(
                insert(schema.create_account_requests).values(
                    id=request_id,
                    organization_id=org.id,
                    account_name=name,
                    state="SUCCEEDED" if account_id is not None else "FAILED",
                    failure_reason=None if account_id is not None else "EMAIL_ALREADY_EXISTS",
                    account_id=account_id,
                    requested_ms=now,
                    completed_ms=now,
                )
            )
            row = self._request(conn, org, request_id)
        # The answer says IN_PROGRESS; the outcome is CloudTrail's CreateAccountResult
        # (and DescribeCreateAccountStatus).
        _record_result(org.management_account_id, _status_out(row), self._clock)
        return {"CreateAccountStatus": _in_progress(row)}

    @staticmethod
    def _new_account(conn: Connection) -> str:
        while True:
            account_id = new_account_id()
            exists = conn.execute(
                select(schema.accounts.c.account_id).where(
                    schema.accounts.c.account_id == account_id
                )
            ).first()
            if exists is None:
                return account_id

    @staticmethod
    def _request(conn: Connection, org: Organization, request_id: str) -> Any:
        row = conn.execute(
            select(schema.create_account_requests).where(
                schema.create_account_requests.c.id == request_id,
                schema.create_account_requests.c.organization_id == org.id,
            )
        ).first()
        if row is None:
            raise _status_not_found()
        return row

    def describe_create_account_status(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            org = self._management(conn, caller)
            row = self._request(conn, org, params["CreateAccountRequestId"])
        return {"CreateAccountStatus": _status_out(row)}

    def list_accounts(self, caller: Caller, params: Params) -> Output:
        limit = int(params.get("MaxResults") or MAX_RESULTS)
        with self._store.read() as conn:
            org = self._management(conn, caller)
            scope = request_scope("ListAccounts", {"Organization": org.id})
            after: tuple[int, str] | None = None
            if params.get("NextToken"):
                try:
                    state = self._tokens.decode(scope, params["NextToken"])
                    after = (int(state["after"][0]), str(state["after"][1]))
                except (ServiceError, KeyError, IndexError, TypeError, ValueError):
                    # Decision: Organizations' error for a bad token, in our words.
                    raise _invalid_input("You specified an invalid value for nextToken.") from None
            query = _MEMBERS.where(schema.organization_accounts.c.organization_id == org.id)
            rows = [
                row
                for row in conn.execute(query)
                if after is None or (row.joined_ms, row.account_id) > after
            ]
        page = rows[:limit]
        output: Output = {"Accounts": [_account_out(org, row) for row in page]}
        if len(rows) > limit:
            last = page[-1]
            output["NextToken"] = self._tokens.encode(
                scope, {"after": [last.joined_ms, last.account_id]}
            )
        return output

    def describe_account(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            org = self._management(conn, caller)
            row = conn.execute(
                _MEMBERS.where(
                    schema.organization_accounts.c.organization_id == org.id,
                    schema.organization_accounts.c.account_id == params["AccountId"],
                )
            ).first()
        if row is None:
            raise _account_not_found()
        return {"Account": _account_out(org, row)}


# The facade --------------------------------------------------------------------------------


def organizations_operations(service: Organizations) -> dict[str, Handler]:
    return {name: getattr(service, snake_case(name)) for name in OPERATIONS}


def organizations_resources(
    params: Mapping[str, Any], output: Mapping[str, Any] | None
) -> list[str]:
    """The organization or account an event is about, for the audit record."""
    if output:
        for member in ("Organization", "Account"):
            item = output.get(member)
            if isinstance(item, Mapping) and item.get("Arn"):
                return [str(item["Arn"])]
    return []


def organizations_request_keys(_caller: Any, _operation: str, params: Params) -> ContextValues:
    """CreateAccount's tags (``aws:RequestTag/*``, ``aws:TagKeys``)."""
    keys: dict[str, tuple[str, ...]] = {}
    tags = params.get("Tags")
    if tags:
        for tag in tags:
            keys[f"aws:RequestTag/{tag['Key']}"] = (tag.get("Value", ""),)
        keys["aws:TagKeys"] = tuple(tag["Key"] for tag in tags)
    return keys


def account_resolver(service: Organizations) -> Resolver:
    """The resolver of the ``account`` resource type: the member account's ARN in the
    caller's organization, with its tags. Outside an organization there is no account
    ARN; the operation then says the organization is not in use."""

    def resolve(caller: Any, _operation: str, params: Params) -> Sequence[Resource]:
        org = service.organization_of(caller.account_id)
        if org is None:
            return []
        account_id = str(params["AccountId"])
        tags = service.account_tags(org.id, account_id) or ()
        keys = {f"aws:ResourceTag/{key}": (value,) for key, value in tags}
        # No resource account: Organizations has no resource policies to let another
        # account in, so the caller's own policies decide, and the operation itself
        # refuses a member account with Organizations' AccessDeniedException.
        return [Resource(org.account_arn(account_id), keys=keys)]

    return resolve


def organizations_spec(service: Organizations) -> ServiceSpec:
    authorization = Authorization(
        "organizations", {"account": account_resolver(service)}, organizations_request_keys
    )
    return ServiceSpec(
        "organizations",
        organizations_operations(service),
        "AWS::Organizations::Account",
        organizations_resources,
        reference_checks(authorization, OPERATIONS),
    )
