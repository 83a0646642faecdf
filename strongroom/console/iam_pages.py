"""IAM: users, groups, roles and managed policies (list, create, attach and detach
policies, group membership), a user's access keys and console password."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from starlette.responses import Response

from strongroom.console.backend import ApiError
from strongroom.console.web import Console, Form, action, page, redirect

KINDS = {"users": "User", "groups": "Group", "roles": "Role"}
DEFAULT_TRUST = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"AWS": "arn:aws:iam::ACCOUNT:root"}, "Action": "sts:AssumeRole"}]}'
)


def _says(error: ApiError) -> str:
    return f"{error.code}: {error.message}"


async def _iam_home(console: Console, errors: dict[str, str] | None = None,
                    form: dict[str, str] | None = None, status: int = 200,
                    tab: str | None = None) -> Response:  # fmt: skip
    query = console.request.query_params
    tab = tab or query.get("tab", "users")
    tab = tab if tab in (*KINDS, "policies") else "users"
    if tab == "policies":
        scope = "All" if query.get("scope") == "All" else "Local"
        listed = await console.attempt(
            "iam", "ListPolicies", Scope=scope, MaxItems=200, Marker=query.get("marker") or None
        )
        items = [] if isinstance(listed, ApiError) else listed.get("Policies", [])
    else:
        scope = ""
        operation = f"List{KINDS[tab]}s"
        listed = await console.attempt("iam", operation, MaxItems=200,
                                       Marker=query.get("marker") or None)  # fmt: skip
        items = [] if isinstance(listed, ApiError) else listed.get(f"{KINDS[tab]}s", [])
    return console.render(
        "iam.html",
        status,
        tab=tab,
        scope=scope,
        items=items,
        marker=None if isinstance(listed, ApiError) else listed.get("Marker"),
        error=listed if isinstance(listed, ApiError) else None,
        errors=errors or {},
        form=form or {},
        default_trust=DEFAULT_TRUST.replace("ACCOUNT", console.principal.account_id),
        done=query.get("done"),
    )


@page
async def iam_home(console: Console) -> Response:
    return await _iam_home(console)


@action
async def iam_create(console: Console, form: Form) -> Response:
    kind = form.get("kind")
    name = form.get("name").strip()
    params: dict[str, Any]
    if kind == "user":
        operation, params = "CreateUser", {"UserName": name}
    elif kind == "group":
        operation, params = "CreateGroup", {"GroupName": name}
    elif kind == "role":
        operation, params = (
            "CreateRole",
            {
                "RoleName": name,
                "AssumeRolePolicyDocument": form.get("document"),
                "Description": form.get("description") or None,
            },
        )
    else:
        operation, params = (
            "CreatePolicy",
            {
                "PolicyName": name,
                "PolicyDocument": form.get("document"),
                "Description": form.get("description") or None,
            },
        )
    result = await console.attempt("iam", operation, **params)
    if isinstance(result, ApiError):
        tab = "policies" if kind == "policy" else f"{kind}s"
        return await _iam_home(console, {kind: _says(result)}, form.as_dict(), 400, tab)
    if kind == "policy":
        return redirect("/iam/policy", arn=result["Policy"]["Arn"], done="Policy created.")
    return redirect(f"/iam/{kind}", name=name, done=f"{kind.capitalize()} created.")


async def _entity_page(console: Console, kind: str, name: str,
                       errors: dict[str, str] | None = None, status: int = 200,
                       new_key: dict[str, str] | None = None) -> Response:  # fmt: skip
    title = kind.capitalize()
    member = f"{title}Name"
    got = await console.attempt("iam", f"Get{title}", **{member: name})
    attached = await console.attempt("iam", f"ListAttached{title}Policies", **{member: name})
    policies = await console.attempt("iam", "ListPolicies", Scope="All", MaxItems=500)
    context: dict[str, Any] = {}
    if kind == "user":
        context["groups"] = await console.attempt("iam", "ListGroupsForUser", UserName=name)
        context["all_groups"] = await console.attempt("iam", "ListGroups", MaxItems=500)
        context["access_keys"] = await console.attempt("iam", "ListAccessKeys", UserName=name)
        context["login_profile"] = await console.attempt("iam", "GetLoginProfile", UserName=name)
    return console.render(
        "iam_entity.html",
        status,
        kind=kind,
        name=name,
        entity=None if isinstance(got, ApiError) else got.get(title),
        members=None if isinstance(got, ApiError) else got.get("Users"),
        error=got if isinstance(got, ApiError) else None,
        attached=[] if isinstance(attached, ApiError) else attached.get("AttachedPolicies", []),
        policies=[] if isinstance(policies, ApiError) else policies.get("Policies", []),
        errors=errors or {},
        new_key=new_key,
        done=console.request.query_params.get("done"),
        ApiError=ApiError,
        **context,
    )


def _entity(kind: str) -> Any:
    @page
    async def entity(console: Console) -> Response:
        return await _entity_page(
            console, kind, unquote(console.request.query_params.get("name", ""))
        )

    return entity


iam_user = _entity("user")
iam_group = _entity("group")
iam_role = _entity("role")


@action
async def iam_act(console: Console, form: Form) -> Response:
    """One IAM operation on an entity page (attach, detach, group membership, access
    keys, login profile): the form names it, from the allowed list below."""
    kind, name, what = form.get("kind"), form.get("name"), form.get("op")
    title = kind.capitalize()
    member = f"{title}Name"
    operations: dict[str, tuple[str, dict[str, Any]]] = {
        "attach": (f"Attach{title}Policy", {member: name, "PolicyArn": form.get("policy_arn")}),
        "detach": (f"Detach{title}Policy", {member: name, "PolicyArn": form.get("policy_arn")}),
        "add_to_group": ("AddUserToGroup", {"UserName": name, "GroupName": form.get("group")}),
        "remove_from_group": (
            "RemoveUserFromGroup",
            {"UserName": name, "GroupName": form.get("group")},
        ),
        "create_key": ("CreateAccessKey", {"UserName": name}),
        "deactivate_key": (
            "UpdateAccessKey",
            {"UserName": name, "AccessKeyId": form.get("key_id"), "Status": "Inactive"},
        ),
        "activate_key": (
            "UpdateAccessKey",
            {"UserName": name, "AccessKeyId": form.get("key_id"), "Status": "Active"},
        ),
        "delete_key": ("DeleteAccessKey", {"UserName": name, "AccessKeyId": form.get("key_id")}),
        "create_login": (
            "CreateLoginProfile",
            {
                "UserName": name,
                "Password": form.get("password"),
                "PasswordResetRequired": form.get("reset_required") == "1",
            },
        ),
        "delete_login": ("DeleteLoginProfile", {"UserName": name}),
    }
    if kind not in ("user", "group", "role") or what not in operations:
        return redirect("/iam")
    operation, params = operations[what]
    result = await console.attempt("iam", operation, **params)
    if isinstance(result, ApiError):
        return await _entity_page(console, kind, name, {what: _says(result)}, 400)
    if what == "create_key":
        # The secret access key is shown this once, as AWS's console does; never stored.
        key = result["AccessKey"]
        return await _entity_page(
            console,
            kind,
            name,
            new_key={"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]},
        )
    return redirect(f"/iam/{kind}", name=name, done=f"{operation} done.")


@page
async def iam_policy(console: Console) -> Response:
    arn = console.request.query_params.get("arn", "")
    got = await console.attempt("iam", "GetPolicy", PolicyArn=arn)
    document = None
    if not isinstance(got, ApiError):
        version = await console.attempt(
            "iam",
            "GetPolicyVersion",
            PolicyArn=arn,
            VersionId=got["Policy"].get("DefaultVersionId", "v1"),
        )
        if not isinstance(version, ApiError):
            document = unquote(str(version["PolicyVersion"].get("Document", "")))
    return console.render(
        "iam_policy.html",
        arn=arn,
        policy=None if isinstance(got, ApiError) else got["Policy"],
        error=got if isinstance(got, ApiError) else None,
        document=document,
        done=console.request.query_params.get("done"),
    )
