"""Rekey: a new root key, and everything the root barrier sealed re-wrapped under it.

The barrier seals only the keyring (Vault's model): access-key and STS session secrets,
the pagination token and audit signing keys, and KMS key material. Secret values are
sealed under KMS data keys, so a rekey never touches a secret ciphertext; instead every
KMS key gets a new material generation sealed only under the new root key, so the old
root key (with any copy of the database) opens no data key made after the rekey.
Re-wrapping the data keys of older values onto the new generations is a separate step
(``strongroom rekey --reencrypt`` / ``strongroom reencrypt``, secrets/reencrypt.py).

:data:`strongroom.server.keyring.ROOT_SEALED` is the one list of what the root barrier
seals, gathered from the domain that seals each value (a :class:`SealedColumn` declared
next to the code that writes it: this package does not know other domains' tables).
Anything new that calls ``Barrier.seal`` with the root barrier must be listed there, or a
rekey leaves it unreadable; the rekey refuses to commit if any listed value does not open.

A rekey is offline (the server stopped) and crash-safe:

1. the new seal file (and ``root.key`` for the file provider) is staged as ``*.new``;
2. one transaction re-wraps every listed value and records the new key id in the
   ``root-key-id`` setting;
3. the staged files are moved into place.

After a crash between 2 and 3 the database and the staged seal agree on the key id, so
:func:`finish_interrupted_rekey` (run by ``server`` and ``rekey``) completes the move;
after a crash before 2 it throws the staged files away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, insert, select, update

from strongroom.clock import Clock, SystemClock, now_ms
from strongroom.keys import providers
from strongroom.keys.envelope import Barrier, DecryptionError
from strongroom.keys.generations import REKEY, add_generation_to_keys
from strongroom.keys.material import material_aad
from strongroom.store import schema
from strongroom.store.engine import Store, sqlite_url

log = logging.getLogger("strongroom.rekey")

KEY_ID_SETTING = "root-key-id"
NEW_GENERATIONS = "kms_keys.new_generation"  # the count of keys given a new generation


@dataclass(frozen=True)
class SealedColumn:
    """A column whose values the root barrier sealed, with the associated data each
    value was sealed with (computed from its row)."""

    table: Table
    column: str
    aad: Callable[[Row[Any]], bytes]
    where: Callable[[], ColumnElement[bool]] | None = None

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"


KMS_MATERIAL = SealedColumn(
    schema.kms_key_material,
    "sealed",
    lambda row: material_aad(row.key_id, row.generation),
)
"""What this package seals with the root barrier: every generation of every KMS key's
material (strongroom.keys.kms). The other domains declare theirs next to the code that
seals them; :data:`strongroom.server.keyring.ROOT_SEALED` gathers them all."""


class RekeyError(Exception):
    """The rekey was refused or failed; nothing was changed. Safe to show."""


def sealed_rows(conn: Any, entry: SealedColumn) -> list[Row[Any]]:
    """The rows whose ``entry.column`` the root barrier sealed."""
    query = select(entry.table)
    if entry.where is not None:
        query = query.where(entry.where())
    return list(conn.execute(query).all())


def rewrap(conn: Any, old: Barrier, new: Barrier, sealed: Sequence[SealedColumn]) -> dict[str, int]:
    """Re-seal every ``sealed`` value from ``old`` to ``new`` in ``conn``'s transaction; the
    count per column. Raises :class:`RekeyError` if one does not open."""
    counts: dict[str, int] = {}
    for entry in sealed:
        table = entry.table
        keys = list(table.primary_key.columns)
        rows = sealed_rows(conn, entry)
        for row in rows:
            aad = entry.aad(row)
            try:
                plaintext = old.open(getattr(row, entry.column), aad)
            except DecryptionError:
                ident = ", ".join(f"{c.name}={getattr(row, c.name)!r}" for c in keys)
                raise RekeyError(
                    f"{entry.name} ({ident}) does not open under the current root key; "
                    "nothing was changed"
                ) from None
            match = [c == getattr(row, c.name) for c in keys]
            conn.execute(
                update(table).where(*match).values({entry.column: new.seal(plaintext, aad)})
            )
        counts[entry.name] = len(rows)
    return counts


def _set_key_id(conn: Any, key_id: str) -> None:
    setting = schema.settings
    found = conn.execute(select(setting.c.name).where(setting.c.name == KEY_ID_SETTING)).first()
    if found is None:
        conn.execute(insert(setting).values(name=KEY_ID_SETTING, value=key_id.encode()))
    else:
        conn.execute(
            update(setting).where(setting.c.name == KEY_ID_SETTING).values(value=key_id.encode())
        )


def _recorded_key_id(store: Store) -> str | None:
    setting = schema.settings
    with store.read() as conn:
        value = conn.execute(
            select(setting.c.value).where(setting.c.name == KEY_ID_SETTING)
        ).scalar_one_or_none()
    return bytes(value).decode() if value is not None else None


def finish_interrupted_rekey(data_dir: Path) -> str | None:
    """Complete or undo a rekey that stopped between its commit and its file moves.
    Returns what was done ("completed" / "rolled back") or None if nothing was pending."""
    if not providers.has_staged(data_dir):
        return None
    try:
        staged = providers.read_seal(data_dir, staged=True)
    except providers.SealError:
        providers.discard_staged(data_dir)  # a torn staged file: the commit never happened
        return "rolled back"
    store = Store(sqlite_url(data_dir))
    try:
        recorded = _recorded_key_id(store)
    finally:
        store.dispose()
    if recorded == staged.key_id:
        providers.promote_staged(data_dir)
        log.warning("completed an interrupted rekey of %s", data_dir)
        return "completed"
    providers.discard_staged(data_dir)
    log.warning("discarded the staged files of an interrupted rekey of %s", data_dir)
    return "rolled back"


def rekey(
    data_dir: Path,
    old_key: bytes,
    protection: providers.Protection,
    sealed: Sequence[SealedColumn],
    *,
    before_commit: Callable[[providers.Protection, dict[str, int]], None] | None = None,
    clock: Clock | None = None,
) -> dict[str, int]:
    """Re-wrap everything ``sealed`` lists under ``protection.root_key``, give every KMS
    key a new material generation sealed only under it (counted as
    :data:`NEW_GENERATIONS`), and install ``protection``.

    ``before_commit`` runs after every value was re-wrapped and before the commit: the
    place to show new Shamir shares, so they are never lost with the key in force.
    """
    now = now_ms(clock or SystemClock())
    old, new = Barrier(old_key), Barrier(protection.root_key)
    providers.install(data_dir, protection, staged=True)
    store = Store(sqlite_url(data_dir))
    committed = False
    try:
        store.migrate()
        with store.write() as conn:
            # Overwrite freed pages, so the old wrapping does not linger in the file.
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
            counts = rewrap(conn, old, new, sealed)
            counts[NEW_GENERATIONS] = add_generation_to_keys(conn, new, now, REKEY)
            _set_key_id(conn, protection.seal.key_id)
            if before_commit is not None:
                before_commit(protection, counts)
        committed = True
        providers.promote_staged(data_dir)
        _compact(store)
    except BaseException:
        if not committed:
            providers.discard_staged(data_dir)
        raise
    finally:
        store.dispose()
    return counts


def _compact(store: Store) -> None:
    """Rewrite the database and empty the WAL, dropping old page images."""
    if store.dialect != "sqlite":
        return
    try:
        raw = store.engine.raw_connection()  # autocommit: VACUUM cannot run in a transaction
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()
    except Exception:
        log.warning("could not compact the database after the rekey", exc_info=True)
