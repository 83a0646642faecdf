""" "Store a new secret": secret type (database credentials or other), a key/value or
plaintext editor, the KMS key, name, description, tags, resource policy, replication and
optional rotation; a review page with sample code; then CreateSecret (and the rest) as the
signed-in user. The form carries its state from step to step; nothing is kept server-side."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from strongroom.console.backend import ApiError
from strongroom.console.samples import sample_code
from strongroom.console.secret_pages import (
    replicas_from,
    rotation_functions,
    rotation_rules,
    value_from,
)
from strongroom.console.web import Console, Form, action, page, redirect, tags_from

ENGINES = ("mysql", "postgres", "mariadb", "oracle", "sqlserver", "redshift", "db2")
DEFAULT_PORTS = {"mysql": "3306", "mariadb": "3306", "postgres": "5432", "oracle": "1521",
                 "sqlserver": "1433", "redshift": "5439", "db2": "50000"}  # fmt: skip


async def _keys(console: Console) -> list[dict[str, str]]:
    """The account's KMS keys by alias, for the encryption key choice (empty if the user
    may not list them: the default key is then the only choice)."""
    aliases = await console.attempt("kms", "ListAliases", Limit=100)
    if isinstance(aliases, ApiError):
        return []
    return [
        {"id": a["AliasName"], "label": a["AliasName"]}
        for a in aliases.get("Aliases", [])
        if a.get("TargetKeyId") and a["AliasName"] != "alias/aws/secretsmanager"
    ]


def _database_value(form: Form) -> str:
    fields = {
        "engine": form.get("db_engine"),
        "host": form.get("db_host"),
        "username": form.get("db_username"),
        "password": form.get("db_password"),
        "dbname": form.get("db_name"),
        "port": form.get("db_port"),
    }
    value: dict[str, Any] = {k: v for k, v in fields.items() if v.strip()}
    if "port" in value and value["port"].isdigit():
        value["port"] = int(value["port"])
    return json.dumps(value)


def _value(form: Form) -> str:
    return _database_value(form) if form.get("secret_type") == "database" else value_from(form)


def _rows(form: Form, key: str, value: str) -> list[tuple[str, str]]:
    rows = list(zip(form.getlist(key), form.getlist(value), strict=False))
    return rows or [("", "")]


def _context(
    console: Console, form: Form, keys: list[dict[str, str]], functions: list[str]
) -> dict[str, Any]:
    values = form.as_dict()
    values.setdefault("secret_type", "database")
    values.setdefault("editor", "keyvalue")
    values.setdefault("db_engine", "mysql")
    return {
        "form": values,
        "kv_rows": _rows(form, "kv_key", "kv_value"),
        "tag_list": _rows(form, "tag_key", "tag_value"),
        "replica_rows": _rows(form, "replica_region", "replica_key"),
        "keys": keys,
        "functions": functions,
        "engines": ENGINES,
        "default_ports": DEFAULT_PORTS,
    }


@page
async def new_secret(console: Console) -> Response:
    return console.render(
        "new_secret.html",
        step="edit",
        errors={},
        **_context(console, Form(), await _keys(console), await rotation_functions(console)),
    )


def _check(form: Form) -> dict[str, str]:
    """What the form lacks before review (AWS checks the rest when the secret is stored)."""
    errors: dict[str, str] = {}
    if not form.get("name").strip():
        errors["name"] = "Enter a name for the secret."
    if form.get("secret_type") == "database" and not form.get("db_username").strip():
        errors["db_username"] = "Enter the user name of the database credentials."
    if form.get("editor") == "plaintext" and form.get("secret_type") != "database":
        if not form.get("plaintext"):
            errors["value"] = "Enter the secret value."
    elif form.get("secret_type") != "database" and not any(
        k.strip() for k in form.getlist("kv_key")
    ):
        errors["value"] = "Enter at least one key and value."
    if form.get("policy").strip():
        try:
            json.loads(form.get("policy"))
        except ValueError as error:
            errors["policy"] = f"The resource policy is not valid JSON: {error}"
    if form.get("rotation") == "1" and not (
        form.get("rotation_days").strip() or form.get("schedule_expression").strip()
    ):
        errors["rotation"] = "Choose a rotation schedule."
    return errors


@action
async def new_secret_step(console: Console, form: Form) -> Response:
    keys = await _keys(console)
    functions = await rotation_functions(console)
    step = form.get("step")
    errors = _check(form) if step in ("review", "store") else {}
    if step == "review" and not errors:
        return console.render(
            "new_secret.html",
            step="review",
            errors={},
            samples=sample_code(form.get("name").strip(), console.backend.region),
            tags=tags_from(form),
            **_context(console, form, keys, functions),
        )
    if step != "store" or errors:
        return console.render(
            "new_secret.html",
            400 if errors else 200,
            step="edit",
            errors=errors,
            **_context(console, form, keys, functions),
        )
    return await _store(console, form, keys, functions)


async def _store(
    console: Console, form: Form, keys: list[dict[str, str]], functions: list[str]
) -> Response:
    name = form.get("name").strip()
    replicas = replicas_from(form)
    created = await console.attempt(
        "secretsmanager",
        "CreateSecret",
        Name=name,
        Description=form.get("description") or None,
        KmsKeyId=form.get("kms_key_id") or None,
        SecretString=_value(form),
        Tags=tags_from(form) or None,
        AddReplicaRegions=replicas or None,
    )
    if isinstance(created, ApiError):
        field = {
            "ResourceExistsException": "name",
            "InvalidParameterException": "name" if "name" in created.message.lower() else "form",
        }.get(created.code, "form")
        return console.render(
            "new_secret.html",
            400,
            step="edit",
            errors={field: f"{created.code}: {created.message}"},
            **_context(console, form, keys, functions),
        )
    # The secret exists now: later steps that fail are reported on its page.
    problems: list[str] = []
    if form.get("policy").strip():
        put = await console.attempt(
            "secretsmanager",
            "PutResourcePolicy",
            SecretId=created["ARN"],
            ResourcePolicy=form.get("policy"),
            BlockPublicPolicy=True,
        )
        if isinstance(put, ApiError):
            problems.append(f"Resource policy: {put.code}: {put.message}")
    if form.get("rotation") == "1":
        rotated = await console.attempt(
            "secretsmanager",
            "RotateSecret",
            SecretId=created["ARN"],
            RotationLambdaARN=form.get("rotation_function").strip() or None,
            RotationRules=rotation_rules(form),
            RotateImmediately=form.get("rotate_now") == "1",
        )
        if isinstance(rotated, ApiError):
            problems.append(f"Rotation: {rotated.code}: {rotated.message}")
    done = "Secret stored." + (" " + " ".join(problems) if problems else "")
    return redirect("/secret", id=name, done=done)
