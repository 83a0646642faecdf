"""Seeding through each target's own API: boto3 for Secrets Manager (Strongroom, moto),
HTTP with X-Vault-Token for OpenBao's KV v2."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import orjson
from botocore.config import Config

from bench.secretdata import secret_value

THREADS = 4  # concurrent seeding calls; modest, so seeding never trips a server's limits


def secrets_manager_client(url: str) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - the dev server's documented credential
        config=Config(max_pool_connections=THREADS * 2, retries={"max_attempts": 5}),
    )


def _each(names: Sequence[str], call: Callable[[str], object]) -> float:
    """Call ``call`` for every name on a few threads; the seconds it took."""
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(call, names):
            pass
    return time.perf_counter() - started


def seed_secrets_manager(url: str, names: Sequence[str]) -> float:
    client = secrets_manager_client(url)
    return _each(names, lambda name: client.create_secret(Name=name, SecretString=secret_value()))


def read_each(url: str, names: Sequence[str]) -> float:
    """One GetSecretValue of every secret: a secret's first read of the day records its
    LastAccessedDate (a write), so after this the runs measure steady-state reads."""
    client = secrets_manager_client(url)
    return _each(names, lambda name: client.get_secret_value(SecretId=name))


def seed_kv(url: str, token: str, names: Sequence[str]) -> float:
    def put(name: str) -> None:
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{url}/v1/secret/data/{name}",
            data=orjson.dumps({"data": {"value": secret_value()}}),
            headers={"X-Vault-Token": token, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()

    return _each(names, put)
