"""Re-encryption after a rekey: every secret version's data key re-wrapped under the
newest generation of its KMS key (keys/generations.py says why).

Offline (the server stopped), in batches of one transaction each, idempotent: a version
already on the newest generation is left alone, so an interrupted run is run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update

from strongroom.keys.envelope import Barrier
from strongroom.keys.generations import DataKeyRewrapper, RewrapError
from strongroom.secrets.service import SecretsManager
from strongroom.store import schema
from strongroom.store.engine import Store

BATCH = 200  # secret versions per transaction


class ReencryptError(Exception):
    """A version could not be re-wrapped; the batches before it are committed. Safe to
    show: names the version, never its value."""


@dataclass
class Reencryption:
    """Versions re-wrapped, and versions already on their key's newest generation."""

    rewrapped: int = 0
    current: int = 0


def sealed_versions(store: Store) -> int:
    """How many secret versions hold a value (what :func:`reencrypt` will visit)."""
    versions = schema.secret_versions
    with store.read() as conn:
        return int(
            conn.execute(
                select(func.count()).where(versions.c.ciphertext.is_not(None))
            ).scalar_one()
        )


def reencrypt(
    store: Store,
    barrier: Barrier,
    *,
    progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
) -> Reencryption:
    """Re-wrap every secret version's data key; ``progress`` hears the size of each
    committed batch."""
    versions, secrets = schema.secret_versions, schema.secrets
    outcome = Reencryption()
    after: tuple[int, str] | None = None
    while True:
        with store.write() as conn:
            query = (
                select(
                    versions.c.secret_id,
                    versions.c.version_id,
                    versions.c.ciphertext,
                    versions.c.previous_ciphertext,
                )
                .add_columns(secrets.c.arn)
                .join(secrets, secrets.c.id == versions.c.secret_id)
                .where(versions.c.ciphertext.is_not(None))
                .order_by(versions.c.secret_id, versions.c.version_id)
                .limit(batch)
            )
            if after is not None:
                query = query.where(
                    or_(
                        versions.c.secret_id > after[0],
                        and_(versions.c.secret_id == after[0], versions.c.version_id > after[1]),
                    )
                )
            rows = conn.execute(query).all()
            if not rows:
                return outcome
            rewrapper = DataKeyRewrapper(conn, barrier)
            for row in rows:
                context = SecretsManager.context(row.arn, row.version_id)
                # A version changed to another KMS key keeps its ciphertext under the
                # previous key too (secrets/lifecycle.py): both are re-wrapped.
                changed: dict[str, bytes] = {}
                for column in ("ciphertext", "previous_ciphertext"):
                    sealed = getattr(row, column)
                    if sealed is None:
                        continue
                    try:
                        rewrapped = rewrapper.rewrap(bytes(sealed), context)
                    except RewrapError as problem:
                        raise ReencryptError(
                            f"version {row.version_id} of {row.arn}: {problem}"
                        ) from None
                    if rewrapped is not None:
                        changed[column] = rewrapped
                if not changed:
                    outcome.current += 1
                    continue
                conn.execute(
                    update(versions)
                    .where(
                        versions.c.secret_id == row.secret_id,
                        versions.c.version_id == row.version_id,
                    )
                    .values(**changed)
                )
                outcome.rewrapped += 1
            after = (rows[-1].secret_id, rows[-1].version_id)
        if progress is not None:
            progress(len(rows))
