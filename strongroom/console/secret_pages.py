"""The secrets list and a secret's page: overview, "Retrieve secret value" (read only when
asked), edit value, versions and labels, rotation, resource policy, replication, tags,
delete and restore. Each action is one AWS operation run as the signed-in user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from strongroom.console.backend import ApiError
from strongroom.console.web import Console, Form, action, page, redirect, tags_from

PAGE_SIZES = (25, 50, 100)
FILTER_KEYS = ("all", "name", "description", "tag-key", "tag-value", "primary-region")
SORT_KEYS = ("name", "created-date", "last-changed-date", "last-accessed-date")


@page
async def secrets_list(console: Console) -> Response:
    query = console.request.query_params
    search = query.get("search", "").strip()
    filter_key = query.get("filter", "all")
    filter_key = filter_key if filter_key in FILTER_KEYS else "all"
    sort_by = query.get("sort", "name")
    sort_by = sort_by if sort_by in SORT_KEYS else "name"
    order = "desc" if query.get("order") == "desc" else "asc"
    size = int(query.get("size", "25")) if query.get("size", "25").isdigit() else 25
    size = size if size in PAGE_SIZES else 25
    deleted = query.get("deleted") == "1"
    filters = [{"Key": filter_key, "Values": search.split()}] if search else None
    listed = await console.attempt(
        "secretsmanager",
        "ListSecrets",
        Filters=filters,
        SortBy=sort_by,
        SortOrder=order,
        MaxResults=size,
        NextToken=query.get("token") or None,
        IncludePlannedDeletion=deleted or None,
    )
    return console.render(
        "secrets.html",
        error=listed if isinstance(listed, ApiError) else None,
        secrets=[] if isinstance(listed, ApiError) else listed.get("SecretList", []),
        next_token=None if isinstance(listed, ApiError) else listed.get("NextToken"),
        search=search,
        filter_key=filter_key,
        filter_keys=FILTER_KEYS,
        sort_by=sort_by,
        sort_keys=SORT_KEYS,
        order=order,
        size=size,
        sizes=PAGE_SIZES,
        deleted=deleted,
        done=query.get("done"),
    )


async def rotation_functions(console: Console) -> list[str]:
    """The ARNs of the functions the user may choose to rotate with (the built-in
    rotators are functions of every account); none when they may not be listed."""
    listed = await console.attempt("lambda", "ListFunctions", MaxItems=50)
    if isinstance(listed, ApiError):
        return []
    return [str(f["FunctionArn"]) for f in listed.get("Functions", []) if f.get("FunctionArn")]


def _secret_id(console: Console) -> str:
    return console.request.query_params.get("id", "")


async def _secret_page(
    console: Console,
    secret_id: str,
    *,
    value: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    described = await console.attempt("secretsmanager", "DescribeSecret", SecretId=secret_id)
    if isinstance(described, ApiError):
        return console.render(
            "secret.html",
            404 if described.code == "ResourceNotFoundException" else 403,
            secret=None,
            error=described,
            secret_id=secret_id,
        )
    # The sections' reads, at once (each its own request through the pipeline).
    versions, policy, history, functions = await asyncio.gather(
        console.attempt(
            "secretsmanager", "ListSecretVersionIds", SecretId=secret_id, IncludeDeprecated=True
        ),
        console.attempt("secretsmanager", "GetResourcePolicy", SecretId=secret_id),
        console.attempt(
            "cloudtrail",
            "LookupEvents",
            LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": described["ARN"]}],
            MaxResults=20,
        ),
        rotation_functions(console),
    )
    rotations = (
        [e for e in history.get("Events", []) if "Rotat" in str(e.get("EventName", ""))]
        if not isinstance(history, ApiError)
        else []
    )
    return console.render(
        "secret.html",
        status,
        secret=described,
        secret_id=secret_id,
        versions=versions,
        policy=policy,
        rotations=rotations,
        history_error=history if isinstance(history, ApiError) else None,
        value=value,
        functions=functions,
        errors=errors or {},
        form=form or {},
        done=console.request.query_params.get("done"),
    )


@page
async def secret_detail(console: Console) -> Response:
    return await _secret_page(console, _secret_id(console))


def _value_view(output: dict[str, Any]) -> dict[str, Any]:
    """The value as the page shows it: a key/value table when it is a JSON object."""
    text = output.get("SecretString")
    pairs: list[tuple[str, str]] | None = None
    if text is not None:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            pairs = [
                (str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in parsed.items()
            ]
    return {
        "text": text,
        "pairs": pairs,
        "binary": output.get("SecretBinary") is not None,
        "version": output.get("VersionId"),
        "stages": output.get("VersionStages", []),
    }


@action
async def retrieve(console: Console, form: Form) -> Response:
    secret_id = form.get("id")
    got = await console.attempt(
        "secretsmanager",
        "GetSecretValue",
        SecretId=secret_id,
        VersionId=form.get("version") or None,
    )
    if isinstance(got, ApiError):
        return await _secret_page(console, secret_id, errors={"retrieve": _says(got)}, status=400)
    return await _secret_page(console, secret_id, value=_value_view(got))


def _says(error: ApiError) -> str:
    return f"{error.code}: {error.message}"


def value_from(form: Form) -> str:
    """The secret string a key/value or plaintext editor submitted."""
    if form.get("editor") == "plaintext":
        return form.get("plaintext")
    pairs = zip(form.getlist("kv_key"), form.getlist("kv_value"), strict=False)
    return json.dumps({k.strip(): v for k, v in pairs if k.strip()})


async def _act(
    console: Console, form: Form, section: str, operation: str, done: str, **params: Any
) -> Response:
    """Run one operation on the secret; back to its page, with the error by its section."""
    secret_id = form.get("id")
    result = await console.attempt("secretsmanager", operation, **params)
    if isinstance(result, ApiError):
        return await _secret_page(
            console, secret_id, errors={section: _says(result)}, form=form.as_dict(), status=400
        )
    return redirect("/secret", id=secret_id, done=done)


def rotation_rules(form: Form) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    if form.get("schedule_expression").strip():
        rules["ScheduleExpression"] = form.get("schedule_expression").strip()
    elif form.get("rotation_days").strip():
        days = form.get("rotation_days").strip()
        rules["AutomaticallyAfterDays"] = int(days) if days.isdigit() else days
    if form.get("rotation_window").strip():
        rules["Duration"] = form.get("rotation_window").strip()
    return rules


def _days(text: str) -> int | str | None:
    """A number of days as typed: an int when it is one (else AWS says what is wrong)."""
    text = text.strip()
    return int(text) if text.isdigit() else text or None


def replicas_from(form: Form) -> list[dict[str, str]]:
    return [
        {"Region": r.strip(), **({"KmsKeyId": k.strip()} if k.strip() else {})}
        for r, k in zip(form.getlist("replica_region"), form.getlist("replica_key"), strict=False)
        if r.strip()
    ]


# The secret page's forms that are one operation each: form -> (section the error shows
# by, operation, what the page says once done, the operation's members besides SecretId).
_ACTIONS: dict[str, tuple[str, str, str, Callable[[Form], dict[str, Any]]]] = {
    "value": ("value", "PutSecretValue", "Secret value saved.",
              lambda f: {"SecretString": value_from(f)}),
    "details": ("details", "UpdateSecret", "Secret details saved.",
                lambda f: {"Description": f.get("description"),
                           "KmsKeyId": f.get("kms_key_id") or None}),
    "rotation": ("rotation", "RotateSecret", "Rotation configured.",
                 lambda f: {"RotationLambdaARN": f.get("rotation_function").strip() or None,
                            "RotationRules": rotation_rules(f),
                            "RotateImmediately": f.get("rotate_now") == "1"}),
    "rotate": ("rotation", "RotateSecret", "Rotation started.", lambda f: {}),
    "cancel-rotation": ("rotation", "CancelRotateSecret", "Rotation turned off.", lambda f: {}),
    "delete-policy": ("policy", "DeleteResourcePolicy", "Resource policy deleted.",
                      lambda f: {}),
    "replicate": ("replication", "ReplicateSecretToRegions", "Replication added.",
                  lambda f: {"AddReplicaRegions": replicas_from(f)}),
    "remove-replica": ("replication", "RemoveRegionsFromReplication", "Replica removed.",
                       lambda f: {"RemoveReplicaRegions": [f.get("region")]}),
    "tag": ("tags", "TagResource", "Tags saved.", lambda f: {"Tags": tags_from(f)}),
    "untag": ("tags", "UntagResource", "Tag removed.", lambda f: {"TagKeys": [f.get("key")]}),
    "delete": ("delete", "DeleteSecret", "Secret scheduled for deletion.",
               lambda f: {"RecoveryWindowInDays": _days(f.get("recovery_days"))}),
    "restore": ("delete", "RestoreSecret", "Secret restored.", lambda f: {}),
    "label": ("versions", "UpdateSecretVersionStage", "Staging label moved.",
              lambda f: {"VersionStage": f.get("stage").strip(),
                         "MoveToVersionId": f.get("to_version") or None,
                         "RemoveFromVersionId": f.get("from_version") or None}),
}  # fmt: skip
SECRET_ACTIONS = tuple(_ACTIONS)


@action
async def secret_action(console: Console, form: Form) -> Response:
    """``POST /secret/<name>`` for a name of ``_ACTIONS``."""
    name = console.request.path_params["name"]
    if name not in _ACTIONS:
        return redirect("/secret", id=form.get("id"))
    section, operation, done, members = _ACTIONS[name]
    return await _act(
        console, form, section, operation, done, SecretId=form.get("id"), **members(form)
    )


@action
async def put_policy(console: Console, form: Form) -> Response:
    secret_id, document = form.get("id"), form.get("policy")
    checked = await console.attempt(
        "secretsmanager", "ValidateResourcePolicy", SecretId=secret_id, ResourcePolicy=document
    )
    if isinstance(checked, ApiError) or not checked.get("PolicyValidationPassed", False):
        message = (
            _says(checked)
            if isinstance(checked, ApiError)
            else "; ".join(
                f"{e.get('CheckName', '')}: {e.get('ErrorMessage', '')}"
                for e in checked.get("ValidationErrors", [])
            )
        )
        return await _secret_page(
            console, secret_id, errors={"policy": message}, form=form.as_dict(), status=400
        )
    return await _act(
        console,
        form,
        "policy",
        "PutResourcePolicy",
        "Resource policy saved.",
        SecretId=secret_id,
        ResourcePolicy=document,
        BlockPublicPolicy=form.get("block_public") == "1",
    )
