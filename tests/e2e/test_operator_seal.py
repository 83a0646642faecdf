"""Seal and unseal are deployment-wide operator actions: only principals of the
deployment's management account whose policies allow ``strongroom:Seal`` /
``strongroom:Unseal`` on ``arn:aws:strongroom::<account>:deployment`` may take them (a
file or PKCS#11 unseal included), and every attempt is audited. Real servers, the CLI as
an operator types it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.audit import audit, audit_records
from tests.e2e.test_enforcement import Deployment as Enforced
from tests.e2e.test_enforcement import member_account_iam
from tests.e2e.test_seal import health, init, run
from tests.server import ServerProcess

DEPLOYMENT = "arn:aws:strongroom::000000000000:deployment"
DEV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def keys(created: dict[str, str]) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": created["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": created["SecretAccessKey"],
        "AWS_DEFAULT_REGION": "us-east-1",
        **({"AWS_SESSION_TOKEN": created["SessionToken"]} if "SessionToken" in created else {}),
    }


def user_with(iam: Any, name: str, statements: list[dict[str, Any]]) -> dict[str, str]:
    iam.create_user(UserName=name)
    if statements:
        document = json.dumps({"Version": "2012-10-17", "Statement": statements})
        iam.put_user_policy(UserName=name, PolicyName="operator", PolicyDocument=document)
    return dict(iam.create_access_key(UserName=name)["AccessKey"])


def operator_events(data_dir: Path, name: str) -> list[dict[str, Any]]:
    return [
        r
        for r in audit_records(data_dir)
        if r.get("eventSource") == "strongroom" and r.get("eventName") == name
    ]


def outcomes(records: list[dict[str, Any]]) -> list[str]:
    return sorted(str(r.get("errorCode")) for r in records)


def unsigned_unseal(url: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{url}/_strongroom/unseal", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read())


@pytest.fixture
def dev(new_server: Callable[..., ServerProcess], tmp_path: Path) -> tuple[ServerProcess, Path]:
    """A dev server over a data directory: a key-file root key, account 000000000000."""
    data_dir = tmp_path / "data"
    return new_server("--dev", "--data-dir", str(data_dir)), data_dir


def test_a_key_file_server_unseals_only_for_an_authorized_operator(
    dev: tuple[ServerProcess, Path],
) -> None:
    server, data_dir = dev
    url = server.url
    run("seal", "--url", url, env=DEV)
    assert health(url) == (503, {"sealed": True})

    # No credentials: refused (it used to answer {"sealed": false}), audited.
    status, reply = unsigned_unseal(url)
    assert (status, reply["__type"]) == (400, "MissingAuthenticationTokenException")
    assert health(url) == (503, {"sealed": True})

    forged = run(
        "unseal", "--url", url, check=False, env={**DEV, "AWS_SECRET_ACCESS_KEY": "not-it"}
    )
    assert forged.returncode != 0 and "signature" in forged.stderr
    assert "Unsealed" not in forged.stdout
    assert health(url) == (503, {"sealed": True})

    # Seal with wrong credentials on the sealed server: an error, not "Sealed.".
    wrong = run("seal", "--url", url, check=False, env={**DEV, "AWS_SECRET_ACCESS_KEY": "x"})
    assert wrong.returncode != 0 and "signature" in wrong.stderr
    assert "Sealed" not in wrong.stdout
    again = run("seal", "--url", url, env=DEV)
    assert "already sealed" in again.stdout

    unsealed = run("unseal", "--url", url, env=DEV)
    assert "Unsealed" in unsealed.stdout
    assert health(url)[0] == 200

    # Each worker writes its own audit file, so records of different workers are compared
    # as outcomes, not in file order.
    unseals = operator_events(data_dir, "Unseal")
    assert outcomes(unseals) == outcomes(
        [
            {"errorCode": "MissingAuthenticationTokenException"},
            {"errorCode": "InvalidSignatureException"},
            {},
        ]
    )
    (allowed,) = [r for r in unseals if r.get("errorCode") is None]
    assert allowed["userIdentity"]["arn"] == "arn:aws:iam::000000000000:user/admin"
    seals = operator_events(data_dir, "Seal")
    assert outcomes(seals) == outcomes([{}, {"errorCode": "InvalidSignatureException"}, {}])
    server.stop()
    verified = audit("verify", "--data-dir", str(data_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_only_the_management_accounts_permitted_principals_may_seal(
    dev: tuple[ServerProcess, Path],
) -> None:
    server, data_dir = dev
    url = server.url
    iam = server.client("iam")
    nobody = user_with(iam, "no-permission", [])
    sealer = user_with(
        iam, "sealer", [{"Effect": "Allow", "Action": "strongroom:Seal", "Resource": DEPLOYMENT}]
    )
    # An administrator of another account of the organization: allowed everything there.
    _account, member_iam = member_account_iam(Enforced(server, data_dir), "tenant")
    tenant_admin = user_with(
        member_iam, "tenant-admin", [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    )

    for refused, why in ((nobody, "no identity-based policy"), (tenant_admin, "management")):
        attempt = run("seal", "--url", url, check=False, env=keys(refused))
        assert attempt.returncode != 0, attempt.stdout
        assert "AccessDenied" in attempt.stderr or "not authorized" in attempt.stderr
        assert why in attempt.stderr
        assert health(url)[0] == 200

    run("seal", "--url", url, env=keys(sealer))
    assert health(url) == (503, {"sealed": True})
    # strongroom:Seal is not strongroom:Unseal.
    denied = run("unseal", "--url", url, check=False, env=keys(sealer))
    assert denied.returncode != 0 and "strongroom:Unseal" in denied.stderr
    assert health(url) == (503, {"sealed": True})
    run("unseal", "--url", url, env=DEV)
    assert health(url)[0] == 200

    seals = operator_events(data_dir, "Seal")
    assert outcomes(seals) == outcomes(
        [{"errorCode": "AccessDeniedException"}, {"errorCode": "AccessDeniedException"}, {}]
    )
    (allowed,) = [r for r in seals if r.get("errorCode") is None]
    assert allowed["userIdentity"]["arn"].endswith(":user/sealer")
    assert outcomes(operator_events(data_dir, "Unseal")) == outcomes(
        [{"errorCode": "AccessDeniedException"}, {}]
    )


def test_seal_of_a_sealed_shamir_server_cannot_claim_success(
    tmp_path: Path, new_server: Callable[..., ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    created = init(data_dir, "--root-key", "shamir", "--shares", "3", "--threshold", "2")
    server = ServerProcess(["--data-dir", str(data_dir)], tmp_path / "shamir.log")
    server.start(ready_status=503)
    try:
        env = {
            "AWS_ACCESS_KEY_ID": created["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": "wrong",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        attempt = run("seal", "--url", server.url, check=False, env=env)
        assert attempt.returncode != 0
        assert "Sealed" not in attempt.stdout
        assert "cannot be checked until it is unsealed" in attempt.stderr
    finally:
        server.stop()
