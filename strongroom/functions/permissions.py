"""A function's resource policy: AddPermission, RemovePermission, GetPolicy, and whether a
service principal may invoke it (:meth:`FunctionPermissions.may_invoke`)."""

from __future__ import annotations

import json
from typing import Any

from strongroom.functions.base import FunctionsBase, Output, Params, check_revision
from strongroom.functions.common import (
    conflict,
    invalid_parameter,
    no_policy,
)
from strongroom.functions.repository import FunctionRecord
from strongroom.policy.evaluate import PolicySet, RequestContext, evaluate, load_policy
from strongroom.protocol.errors import ServiceError
from strongroom.types import Caller


class FunctionPermissions(FunctionsBase):
    # ------------------------------------------------------------------ permissions

    def add_permission(self, caller: Caller, params: Params) -> Output:
        record = self._changeable(caller, params["FunctionName"])
        check_revision(record, params)
        if params.get("FunctionUrlAuthType") or params.get("EventSourceToken"):
            raise invalid_parameter("Function URLs and Alexa event sources are not served.")
        statement = _statement(record, params)
        document = _policy_document(record.policy)
        if any(existing.get("Sid") == statement["Sid"] for existing in document["Statement"]):
            raise conflict(
                "The statement id (sid) provided already exists. Please provide a new statement "
                "id, or remove the existing statement."
            )
        document["Statement"].append(statement)
        self._set_policy(record, document)
        # FunctionArn (not in the output shape) names the audit record's resource.
        return {
            "Statement": json.dumps(statement, separators=(",", ":")),
            "FunctionArn": record.arn,
        }

    def remove_permission(self, caller: Caller, params: Params) -> Output:
        record = self._changeable(caller, params["FunctionName"])
        check_revision(record, params)
        document = _policy_document(record.policy)
        kept = [s for s in document["Statement"] if s.get("Sid") != params["StatementId"]]
        if len(kept) == len(document["Statement"]):
            raise ServiceError(
                "ResourceNotFoundException",
                f"Statement {params['StatementId']} is not found in resource policy.",
                404,
            )
        document["Statement"] = kept
        self._set_policy(record, document)
        return {"FunctionArn": record.arn}

    def get_policy(self, caller: Caller, params: Params) -> Output:
        record = self._existing(caller, params["FunctionName"])
        if record.policy is None:
            raise no_policy()
        return {
            "Policy": record.policy,
            "RevisionId": record.revision_id,
            "FunctionArn": record.arn,
        }

    def statement_principal(self, caller: Caller, params: Params) -> str | None:
        """The principal of the statement a RemovePermission names (``lambda:Principal``)."""
        try:
            record = self.find(caller, params["FunctionName"])
        except ServiceError:
            return None
        if record is None or record.policy is None:
            return None
        for statement in _policy_document(record.policy)["Statement"]:
            if statement.get("Sid") == params.get("StatementId"):
                principal = statement.get("Principal")
                if isinstance(principal, dict):
                    value = principal.get("Service") or principal.get("AWS")
                    return str(value) if value else None
                return str(principal)
        return None

    def _set_policy(self, record: FunctionRecord, document: dict[str, Any]) -> None:
        text = json.dumps(document, separators=(",", ":")) if document["Statement"] else None
        self._update(record, policy=text)

    def may_invoke(
        self, function_arn: str, *, service_principal: str, source_account: str, source_arn: str
    ) -> bool:
        record = self._target(function_arn)
        if record is None or record.policy is None:
            return False
        request = RequestContext(
            service_principal,
            source_account,
            "lambda:InvokeFunction",
            record.arn,
            record.account_id,
            context={"aws:SourceAccount": (source_account,), "aws:SourceArn": (source_arn,)},
        )
        policy = load_policy(record.policy, "resource")
        return evaluate(request, PolicySet(resource=policy)).allowed


def _policy_document(policy: str | None) -> dict[str, Any]:
    if policy is None:
        return {"Version": "2012-10-17", "Id": "default", "Statement": []}
    loaded: dict[str, Any] = json.loads(policy)
    return loaded


def _statement(record: FunctionRecord, params: Params) -> dict[str, Any]:
    principal_value = params["Principal"]
    principal: Any
    if principal_value == "*":
        principal = "*"
    elif principal_value.endswith(".amazonaws.com") or principal_value.endswith(".amazon.com"):
        principal = {"Service": principal_value}
    elif principal_value.isdigit() and len(principal_value) == 12:
        principal = {"AWS": f"arn:aws:iam::{principal_value}:root"}
    else:
        principal = {"AWS": principal_value}
    statement: dict[str, Any] = {
        "Sid": params["StatementId"],
        "Effect": "Allow",
        "Principal": principal,
        "Action": params["Action"],
        "Resource": record.arn,
    }
    condition: dict[str, dict[str, str]] = {}
    if params.get("SourceAccount"):
        condition.setdefault("StringEquals", {})["AWS:SourceAccount"] = params["SourceAccount"]
    if params.get("PrincipalOrgID"):
        condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = params["PrincipalOrgID"]
    if params.get("SourceArn"):
        condition["ArnLike"] = {"AWS:SourceArn": params["SourceArn"]}
    if condition:
        statement["Condition"] = condition
    return statement
