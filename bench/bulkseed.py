"""Bulk seeding of a stopped Strongroom data directory, in-process, with Strongroom's own
domain code: far faster than a million CreateSecret calls.

The first secret is made by ``SecretsManager.create_secret`` (or is one already created
through the API); every further secret is a copy of its rows with its own name, ARN,
version id and value, the value sealed by ``KeyService.seal_with`` exactly as
CreateSecret seals one (a fresh data key under aws/secretsmanager, the secret ARN and
version id as encryption context), many secrets per transaction. The copies carry the
template's LastAccessedDate, so, like the template after one read today, their first
read in a run is a plain read. Seeding is an operator-side fixture: it leaves no audit
records. A sample of the new secrets is read back through ``get_secret_value``.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select

from bench.secretdata import secret_name, secret_value
from strongroom.iam.credentials import admin_arn
from strongroom.keys.kms import KeyService
from strongroom.secrets import arns
from strongroom.server.deployment import DEV_ACCOUNT, Deployment, open_deployment
from strongroom.store import schema
from strongroom.types import Caller

BATCH = 20_000  # secrets per transaction
REGION = "us-east-1"


@dataclass(frozen=True)
class SeedReport:
    added: int
    seconds: float
    total: int  # secrets in the store afterwards

    @property
    def per_second(self) -> float:
        return self.added / self.seconds if self.seconds else 0.0


def _caller() -> Caller:
    return Caller(DEV_ACCOUNT, REGION, admin_arn(DEV_ACCOUNT))


def _count(deployment: Deployment) -> int:
    with deployment.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.secrets)).scalar_one())


def _remember_key_material(keys: KeyService) -> None:
    """``seal_with`` looks up and unwraps the KMS key's material for every value it seals;
    while seeding, the material cannot change, so remember it. This wraps a private
    method of KeyService: if it is renamed, seeding is only slower, never wrong."""
    original: Callable[..., Any] | None = getattr(keys, "_material", None)
    if original is None:
        return
    cache: dict[tuple[Any, ...], Any] = {}

    def material(conn: Connection, key_id: str, generation: int | None = None) -> Any:
        if (key_id, generation) not in cache:
            cache[key_id, generation] = original(conn, key_id, generation)
        return cache[key_id, generation]

    keys._material = material  # type: ignore[method-assign]


Row = dict[str, Any]
Template = tuple[Row, Row, list[Row]]  # a secret's row, its version's, its labels'


def _template(deployment: Deployment) -> Template:
    """The rows of the oldest secret: itself, its current version and its labels."""
    with deployment.store.read() as conn:
        secret = (
            conn.execute(select(schema.secrets).order_by(schema.secrets.c.id).limit(1))
            .one()
            ._asdict()
        )
        stages = [
            row._asdict()
            for row in conn.execute(
                select(schema.version_stages).where(
                    schema.version_stages.c.secret_id == secret["id"]
                )
            )
        ]
        version = (
            conn.execute(
                select(schema.secret_versions).where(
                    schema.secret_versions.c.secret_id == secret["id"]
                )
            )
            .one()
            ._asdict()
        )
    return secret, version, stages


def _add_batch(
    deployment: Deployment,
    conn: Connection,
    template: Template,
    indexes: range,
    next_id: int,
    rng: random.Random,
) -> dict[str, str]:
    """Insert the secrets ``indexes``; returns name -> value for the first few."""
    secret, version, stages = template
    key = deployment.keys.key_for_secret(conn, Caller(DEV_ACCOUNT, REGION), secret["kms_key_id"])
    secrets_rows, version_rows, stage_rows = [], [], []
    sample: dict[str, str] = {}
    for offset, index in enumerate(indexes):
        name = secret_name(index)
        arn = arns.secret_arn(REGION, DEV_ACCOUNT, name, arns.new_suffix(rng))
        version_id = str(uuid.uuid4())
        value = secret_value()
        sealed = deployment.keys.seal_with(
            conn, key, value.encode(), {"SecretARN": arn, "SecretVersionId": version_id}
        )
        secret_id = next_id + offset
        secrets_rows.append({**secret, "id": secret_id, "name": name, "arn": arn})
        version_rows.append(
            {**version, "secret_id": secret_id, "version_id": version_id, "ciphertext": sealed}
        )
        stage_rows += [{**s, "secret_id": secret_id, "version_id": version_id} for s in stages]
        if len(sample) < 3:
            sample[name] = value
    conn.execute(insert(schema.secrets), secrets_rows)
    conn.execute(insert(schema.secret_versions), version_rows)
    conn.execute(insert(schema.version_stages), stage_rows)
    return sample


def bulk_seed(data_dir: Path, total: int, batch: int = BATCH) -> SeedReport:
    """Grow the (stopped) deployment in ``data_dir`` to ``total`` secrets named
    ``secret_name(0 .. total-1)``; the existing ones must be exactly the first names."""
    deployment = open_deployment(data_dir)
    _remember_key_material(deployment.keys)
    try:
        started = time.perf_counter()
        before = have = _count(deployment)
        if have == 0:
            deployment.secrets.create_secret(
                _caller(),
                {
                    "Name": secret_name(0),
                    "SecretString": secret_value(),
                    "ClientRequestToken": str(uuid.uuid4()),
                },
            )
            have = 1
        template = _template(deployment)
        rng = random.Random()
        samples: dict[str, str] = {}
        for first in range(have, total, batch):
            with deployment.store.write() as conn:
                next_id = (
                    int(conn.execute(select(func.max(schema.secrets.c.id))).scalar_one() or 0) + 1
                )
                indexes = range(first, min(total, first + batch))
                samples.update(_add_batch(deployment, conn, template, indexes, next_id, rng))
        seconds = time.perf_counter() - started
        for name, value in list(samples.items())[:3]:
            read = deployment.secrets.get_secret_value(_caller(), {"SecretId": name})
            if read.get("SecretString") != value:
                raise RuntimeError(f"bulk-seeded secret {name} does not read back")
        after = _count(deployment)
        return SeedReport(added=after - before, seconds=seconds, total=after)
    finally:
        deployment.close()
