"""KMS keys: list, create (with an alias), a key's page (enable/disable, aliases,
schedule and cancel deletion)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from strongroom.console.backend import ApiError
from strongroom.console.web import Console, Form, action, page, redirect


@page
async def keys_list(console: Console) -> Response:
    query = console.request.query_params
    listed = await console.attempt("kms", "ListKeys", Limit=100, Marker=query.get("marker") or None)
    aliases = await console.attempt("kms", "ListAliases", Limit=1000)
    by_key: dict[str, list[str]] = {}
    if not isinstance(aliases, ApiError):
        for alias in aliases.get("Aliases", []):
            if alias.get("TargetKeyId"):
                by_key.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    keys: list[dict[str, Any]] = []
    if not isinstance(listed, ApiError):
        described = await asyncio.gather(
            *(console.attempt("kms", "DescribeKey", KeyId=k["KeyId"]) for k in listed["Keys"])
        )
        for entry, meta in zip(listed["Keys"], described, strict=True):
            keys.append(
                {
                    "id": entry["KeyId"],
                    "aliases": by_key.get(entry["KeyId"], []),
                    "meta": None if isinstance(meta, ApiError) else meta["KeyMetadata"],
                }
            )
    return console.render(
        "keys.html",
        keys=keys,
        error=listed if isinstance(listed, ApiError) else None,
        next_marker=None if isinstance(listed, ApiError) else listed.get("NextMarker"),
        done=query.get("done"),
        errors={},
        form={},
    )


@action
async def create_key(console: Console, form: Form) -> Response:
    created = await console.attempt("kms", "CreateKey", Description=form.get("description") or None)
    if isinstance(created, ApiError):
        return await _keys_error(console, form, created)
    key_id = created["KeyMetadata"]["KeyId"]
    alias = form.get("alias").strip()
    if alias:
        named = await console.attempt(
            "kms", "CreateAlias", AliasName=_alias(alias), TargetKeyId=key_id
        )
        if isinstance(named, ApiError):
            return redirect(
                "/key", id=key_id, done=f"Key created; alias: {named.code}: {named.message}"
            )
    return redirect("/key", id=key_id, done="Key created.")


def _alias(name: str) -> str:
    return name if name.startswith("alias/") else f"alias/{name}"


async def _keys_error(console: Console, form: Form, error: ApiError) -> Response:
    return console.render(
        "keys.html",
        400,
        keys=[],
        error=None,
        next_marker=None,
        done=None,
        errors={"create": f"{error.code}: {error.message}"},
        form=form.as_dict(),
    )


async def _key_page(console: Console, key_id: str, errors: dict[str, str] | None = None,
                    status: int = 200) -> Response:  # fmt: skip
    described = await console.attempt("kms", "DescribeKey", KeyId=key_id)
    aliases = await console.attempt("kms", "ListAliases", KeyId=key_id)
    return console.render(
        "key.html",
        status,
        key_id=key_id,
        meta=None if isinstance(described, ApiError) else described["KeyMetadata"],
        error=described if isinstance(described, ApiError) else None,
        aliases=[] if isinstance(aliases, ApiError) else aliases.get("Aliases", []),
        errors=errors or {},
        done=console.request.query_params.get("done"),
    )


@page
async def key_detail(console: Console) -> Response:
    return await _key_page(console, console.request.query_params.get("id", ""))


async def _key_act(console: Console, form: Form, operation: str, done: str,
                   **params: Any) -> Response:  # fmt: skip
    key_id = form.get("id")
    result = await console.attempt("kms", operation, **params)
    if isinstance(result, ApiError):
        return await _key_page(
            console, key_id, {operation: f"{result.code}: {result.message}"}, 400
        )
    return redirect("/key", id=key_id, done=done)


@action
async def enable_key(console: Console, form: Form) -> Response:
    return await _key_act(console, form, "EnableKey", "Key enabled.", KeyId=form.get("id"))


@action
async def disable_key(console: Console, form: Form) -> Response:
    return await _key_act(console, form, "DisableKey", "Key disabled.", KeyId=form.get("id"))


@action
async def schedule_deletion(console: Console, form: Form) -> Response:
    days = form.get("pending_days").strip()
    return await _key_act(
        console,
        form,
        "ScheduleKeyDeletion",
        "Key deletion scheduled.",
        KeyId=form.get("id"),
        PendingWindowInDays=int(days) if days.isdigit() else None,
    )


@action
async def cancel_deletion(console: Console, form: Form) -> Response:
    return await _key_act(
        console, form, "CancelKeyDeletion", "Key deletion cancelled.", KeyId=form.get("id")
    )


@action
async def add_alias(console: Console, form: Form) -> Response:
    return await _key_act(
        console,
        form,
        "CreateAlias",
        "Alias created.",
        AliasName=_alias(form.get("alias").strip()),
        TargetKeyId=form.get("id"),
    )


@action
async def delete_alias(console: Console, form: Form) -> Response:
    return await _key_act(
        console, form, "DeleteAlias", "Alias deleted.", AliasName=form.get("alias")
    )
