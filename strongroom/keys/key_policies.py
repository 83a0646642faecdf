"""Key policies: the default and AWS managed keys' policies, checking a policy (syntax and
the lockout safety check), GetKeyPolicy and PutKeyPolicy."""

from __future__ import annotations

import dataclasses

import orjson

from strongroom.keys.conditions import key_check, key_resource_keys, tag_request_keys
from strongroom.keys.kms_base import KmsBase
from strongroom.keys.kms_common import Output, Params, not_found
from strongroom.keys.repository import KeyRecord
from strongroom.policy.checks import Check
from strongroom.policy.document import parse_policy
from strongroom.protocol.errors import ServiceError
from strongroom.types import Caller


def default_key_policy(account_id: str) -> str:
    return orjson.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        option=orjson.OPT_INDENT_2,
    ).decode()


def managed_key_policy(account_id: str, region: str) -> str:
    """The policy AWS gives aws/secretsmanager: usable only through Secrets Manager, by
    principals of the account."""
    return orjson.dumps(
        {
            "Version": "2012-10-17",
            "Id": "auto-secretsmanager-2",
            "Statement": [
                {
                    "Sid": "Allow access through AWS Secrets Manager for all principals in the "
                    "account that are authorized to use AWS Secrets Manager",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:CreateGrant",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account_id,
                            "kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                        }
                    },
                },
                {
                    "Sid": "Allow access through AWS Secrets Manager for all principals in the "
                    "account that are authorized to use AWS Secrets Manager",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "kms:GenerateDataKey*",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"kms:CallerAccount": account_id},
                        "StringLike": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"},
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        },
        option=orjson.OPT_INDENT_2,
    ).decode()


def _check_policy(text: str) -> None:
    try:
        parse_policy(text, kind="key")
    except ServiceError as error:
        raise ServiceError("MalformedPolicyDocumentException", error.message) from None


def _check_lockout(caller: Caller, key: KeyRecord, policy: str) -> None:
    """KMS's policy lockout safety check: the new key policy must let the caller change
    the key policy again (with the caller's IAM policies, when it delegates to them)."""
    would_be = dataclasses.replace(key, policy=policy)
    try:
        caller.authorize(
            key_check("kms:PutKeyPolicy", would_be, {"kms:CallerAccount": (caller.account_id,)})
        )
    except ServiceError as denied:
        if denied.code != "AccessDeniedException":
            raise
        raise ServiceError(
            "MalformedPolicyDocumentException",
            "The new key policy will not allow you to update the key policy in the future.",
        ) from None


def _authorize_tags(caller: Caller, key: KeyRecord, params: Params) -> None:
    """CreateKey with Tags also needs kms:TagResource, which AWS grants in IAM policies:
    asked on the new key's ARN with the request's tags, without the key policy."""
    context = {
        **key_resource_keys(key),
        "kms:CallerAccount": (caller.account_id,),
        **tag_request_keys("TagResource", params),
    }
    caller.authorize(Check("kms:TagResource", key.arn, key.account_id, context=context))


class KeyPolicies(KmsBase):
    def get_key_policy(self, caller: Caller, params: Params) -> Output:
        name = params.get("PolicyName", "default")
        with self._store.read() as conn:
            key = self._resolve(conn, caller, params["KeyId"])
        if name != "default":
            raise not_found("No such policy exists")
        return {"Policy": self._principal_ids.show(key.policy), "PolicyName": "default"}

    def list_key_policies(self, caller: Caller, params: Params) -> Output:
        """A key has one policy, named "default"."""
        with self._store.read() as conn:
            self._resolve(conn, caller, params["KeyId"])
        page, marker = self._page(
            "ListKeyPolicies", caller, ["default"], params, default_limit=100, maximum=1000
        )
        return {"PolicyNames": list(page), "Truncated": marker is not None, "NextMarker": marker}

    def put_key_policy(self, caller: Caller, params: Params) -> Output:
        if params.get("PolicyName", "default") != "default":
            raise not_found("No such policy exists")
        with self._store.write() as conn:
            # Allowed on a key pending deletion, as on AWS (the key state table).
            key = self._permitted(
                caller, self._resolve(conn, caller, params["KeyId"]), "PutKeyPolicy"
            )
            _check_policy(params["Policy"])
            policy = self._bound(params["Policy"])
            if not params.get("BypassPolicyLockoutSafetyCheck"):
                _check_lockout(caller, key, policy)
            self._update(conn, key, policy=policy)
        return {}
