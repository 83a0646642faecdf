"""Micro-benchmark of the policy engine: evaluations per second for typical requests.

    .venv/bin/python bench/policy_eval.py [--seconds 1.0]

Each scenario is a GetSecretValue (or kms:Decrypt) with the policies a real request would
carry: two identity policies, a secret resource policy or KMS key policy, sometimes a
permissions boundary and a session policy, and a dozen condition keys. Policies come
from text through ``load_policy`` (cached), as the authorizer will get them. "request +
evaluate" includes building the RequestContext, which every request does once.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from strongroom.policy.evaluate import (
    PolicySet,
    RequestContext,
    access_denied_message,
    evaluate,
    load_policy,
)

ACCOUNT = "111122223333"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:MyApp/DBCredentials-AbCdEf"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/AppReader/i-0123456789abcdef0"


def text(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


USER_POLICY = text(
    {
        "Sid": "ReadAppSecrets",
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:MyApp/*",
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
    },
    {
        "Sid": "OwnHome",
        "Effect": "Allow",
        "Action": "secretsmanager:*",
        "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:home/${{aws:username}}/*",
    },
    {"Sid": "List", "Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"},
)
GROUP_POLICY = text(
    {
        "Sid": "NoDeletes",
        "Effect": "Deny",
        "Action": ["secretsmanager:DeleteSecret", "secretsmanager:PutResourcePolicy"],
        "Resource": "*",
    },
    {
        "Sid": "TeamSecrets",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"},
            "ForAllValues:StringLike": {"aws:TagKeys": ["team", "env*"]},
        },
    },
)
RESOURCE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Readers",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/AppReader"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            },
            {
                "Sid": "OnlyFromTheVpc",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:*",
                "Resource": "*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}},
            },
        ],
    }
)
BOUNDARY = text(
    {"Effect": "Allow", "Action": ["secretsmanager:*", "kms:Decrypt"], "Resource": "*"},
    {"Effect": "Deny", "Action": "iam:*", "Resource": "*"},
)
SESSION_POLICY = text(
    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET}
)
KEY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EnableIamPolicies",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "AllowUseViaSecretsManager",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
                        "kms:CallerAccount": ACCOUNT,
                    }
                },
            },
        ],
    }
)


def context(principal: str) -> dict[str, tuple[str, ...]]:
    return {
        "aws:username": ("alice",) if principal == ALICE else (),
        "aws:userid": ("AIDAEXAMPLEALICE0001",),
        "aws:PrincipalTag/team": ("payments",),
        "aws:ResourceTag/team": ("payments",),
        "aws:TagKeys": ("team", "env"),
        "aws:SourceIp": ("10.1.2.3",),
        "aws:SecureTransport": ("true",),
        "aws:CurrentTime": ("2025-06-01T12:00:00Z",),
        "aws:EpochTime": ("1748779200",),
        "secretsmanager:SecretId": ("MyApp/DBCredentials",),
        "secretsmanager:VersionStage": ("AWSCURRENT",),
        "kms:ViaService": ("secretsmanager.us-east-1.amazonaws.com",),
        "kms:CallerAccount": (ACCOUNT,),
    }


def scenarios() -> dict[str, tuple[Callable[[], RequestContext], PolicySet, bool]]:
    user = PolicySet(
        identity=[load_policy(USER_POLICY, "identity"), load_policy(GROUP_POLICY, "identity")],
        resource=load_policy(RESOURCE_POLICY, "resource"),
    )
    role = PolicySet(
        identity=[load_policy(USER_POLICY, "identity")],
        resource=load_policy(RESOURCE_POLICY, "resource"),
        permissions_boundary=load_policy(BOUNDARY, "identity"),
        session_policies=[load_policy(SESSION_POLICY, "identity")],
    )
    key = PolicySet(
        identity=[load_policy(USER_POLICY, "identity")],
        resource=load_policy(KEY_POLICY, "resource"),
        permissions_boundary=load_policy(BOUNDARY, "identity"),
    )
    get = "secretsmanager:GetSecretValue"
    return {
        "user GetSecretValue (allowed)": (
            lambda: RequestContext(ALICE, ACCOUNT, get, SECRET, ACCOUNT, context(ALICE)),
            user,
            False,
        ),
        "user DeleteSecret (explicit deny)": (
            lambda: RequestContext(
                ALICE, ACCOUNT, "secretsmanager:DeleteSecret", SECRET, ACCOUNT, context(ALICE)
            ),
            user,
            False,
        ),
        "role session + boundary + session policy": (
            lambda: RequestContext(SESSION, ACCOUNT, get, SECRET, ACCOUNT, context(SESSION)),
            role,
            False,
        ),
        "kms:Decrypt under a key policy": (
            lambda: RequestContext(ALICE, ACCOUNT, "kms:Decrypt", KEY, ACCOUNT, context(ALICE)),
            key,
            True,
        ),
    }


def rate(run: Callable[[], object], seconds: float, rounds: int = 3) -> float:
    """Calls per CPU-second, best of ``rounds``: CPU time, not wall time, so that other
    processes on a busy machine do not count against the engine."""
    best = 0.0
    for _ in range(rounds):
        count, started = 0, time.process_time()
        deadline = started + seconds / rounds
        while True:
            for _ in range(200):
                run()
            count += 200
            now = time.process_time()
            if now >= deadline:
                break
        best = max(best, count / (now - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    seconds = parser.parse_args().seconds

    print(f"{'scenario':44} {'evaluate':>14} {'request + evaluate':>22}")
    for name, (make, policies, key_policy) in scenarios().items():
        request = make()
        decision = evaluate(request, policies, key_policy=key_policy)
        only = rate(
            lambda r=request, p=policies, k=key_policy: evaluate(r, p, key_policy=k), seconds
        )
        both = rate(
            lambda m=make, p=policies, k=key_policy: evaluate(m(), p, key_policy=k), seconds
        )
        print(
            f"{name:44} {only:>9,.0f}/s {1e6 / only:4.1f}us {both:>15,.0f}/s {1e6 / both:4.1f}us"
            f"   -> {decision.reason}"
        )
        if not decision.allowed:
            print(f"{'':44} {access_denied_message(request, decision)}")

    policy_text = USER_POLICY
    cached = rate(lambda: load_policy(policy_text, "identity"), seconds)
    print(f"{'load_policy (cached text)':44} {cached:>9,.0f}/s {1e6 / cached:4.1f}us")


if __name__ == "__main__":
    main()
