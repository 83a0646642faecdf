"""Rows of the secrets domain: the only module that touches its tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)

from strongroom.secrets import rotation_state
from strongroom.secrets.labels import CURRENT
from strongroom.store.cache import Namespace, rows_changed
from strongroom.store.engine import SnapshotReader, cached, remember
from strongroom.store.prepared import PreparedSelect
from strongroom.store.schema import secret_versions, secrets, version_stages


@dataclass(frozen=True)
class SecretRecord:
    """A ``secrets`` row. Immutable: the row cache hands every reader the record it holds
    (no copy per read), and a write gets the changed record back (:func:`update_secret`)."""

    id: int
    account_id: str
    region: str
    name: str
    arn: str
    description: str | None
    kms_key_id: str | None
    secret_type: str | None
    tags: list[list[str]] | None
    resource_policy: str | None
    created_ms: int
    last_changed_ms: int
    last_accessed_ms: int | None
    deleted_ms: int | None
    deletion_ms: int | None
    rotation_enabled: bool | None
    rotation_lambda_arn: str | None
    rotation_rules: dict[str, Any] | None
    last_rotated_ms: int | None
    next_rotation_ms: int | None
    owning_service: str | None
    primary_region: str | None
    replicas: list[dict[str, Any]] | None

    @property
    def is_replica(self) -> bool:
        return self.primary_region is not None and self.primary_region != self.region

    @property
    def scheduled_for_deletion(self) -> bool:
        return self.deleted_ms is not None


_SECRET_FIELDS = [f.name for f in fields(SecretRecord)]


@dataclass(frozen=True)
class VersionRecord:
    version_id: str
    created_ms: int
    last_accessed_ms: int | None
    kms_key_id: str | None
    value_kind: str | None
    ciphertext: bytes | None
    # The value sealed under the secret's previous KMS key (kept by a key change until
    # the next one) and that key's KmsKeyId (None: the managed key).
    previous_kms_key_id: str | None = None
    previous_ciphertext: bytes | None = None


_VERSION_FIELDS = [f.name for f in fields(VersionRecord)]


class Staged(NamedTuple):
    """A secret's labels (read-only) and the version that holds AWSCURRENT, if any."""

    stages: Mapping[str, str]
    current: VersionRecord | None


def _secret(found: Mapping[Any, Any]) -> SecretRecord:
    """The record of a ``secrets`` row, by column name (a row's ``_mapping``, a
    :class:`PreparedSelect` result)."""
    return SecretRecord(**{name: found[name] for name in _SECRET_FIELDS})


# What GetSecretValue reads, cached per process (store/cache.py) for snapshot readers.
# Each entry is filed under its secret's id, the key every write below declares
# (rows_changed): a write to one secret drops only that secret's entries in other workers.
_BY_REFERENCE = Namespace(
    "secret", ("secrets",), remember_absent=False, row=lambda _key, record: record.id
)
_STAGES = Namespace("secret-stages", ("version_stages",), row=lambda secret_id, _value: secret_id)
_VERSION = Namespace("secret-version", ("secret_versions",), row=lambda key, _value: key[0])
# A secret's labels with its AWSCURRENT version (Staged): what a GetSecretValue reads after
# the secret, in one lookup instead of two. From both tables, filed under the secret's id.
_STAGED = Namespace(
    "secret-staged",
    ("version_stages", "secret_versions"),
    row=lambda secret_id, _value: secret_id,
)


# The statements of every secret write, built once: building a statement costs about as
# much as running it (the values go in as bind parameters).
_SELECT_BY_ARN = PreparedSelect(select(secrets).where(secrets.c.arn == bindparam("p_arn")))
_SELECT_BY_NAME = PreparedSelect(
    select(secrets).where(
        secrets.c.account_id == bindparam("p_account"),
        secrets.c.region == bindparam("p_region"),
        secrets.c.name == bindparam("p_name"),
    )
)
_SELECT_VERSION = PreparedSelect(
    select(secret_versions).where(
        secret_versions.c.secret_id == bindparam("p_secret"),
        secret_versions.c.version_id == bindparam("p_version"),
    )
)


def _with_labels_and_current(*where: Any) -> PreparedSelect:
    """A secret's row joined with its labels (a row each) and, on the AWSCURRENT row, that
    version: all a GetSecretValue reads, in one statement instead of three."""
    version_columns = [c for c in secret_versions.c if c.name != "secret_id"]
    current = and_(
        secret_versions.c.secret_id == version_stages.c.secret_id,
        secret_versions.c.version_id == version_stages.c.version_id,
        version_stages.c.stage == literal_column(f"'{CURRENT}'"),  # a constant, not a parameter
    )
    return PreparedSelect(
        select(
            secrets,
            version_stages.c.stage.label("label_stage"),
            version_stages.c.version_id.label("label_version"),
            *(c.label(f"current_{c.name}") for c in version_columns),
        )
        .select_from(
            secrets.outerjoin(version_stages, version_stages.c.secret_id == secrets.c.id).outerjoin(
                secret_versions, current
            )
        )
        .where(*where)
    )


_BUNDLE_BY_ARN = _with_labels_and_current(secrets.c.arn == bindparam("p_arn"))
_BUNDLE_BY_NAME = _with_labels_and_current(
    secrets.c.account_id == bindparam("p_account"),
    secrets.c.region == bindparam("p_region"),
    secrets.c.name == bindparam("p_name"),
)
_COUNT_VERSIONS = PreparedSelect(
    select(func.count()).where(secret_versions.c.secret_id == bindparam("p_secret"))
)
_INSERT_VERSION = insert(secret_versions)
_SELECT_STAGES = PreparedSelect(
    select(version_stages.c.stage, version_stages.c.version_id).where(
        version_stages.c.secret_id == bindparam("p_secret")
    )
)
_INSERT_STAGE = insert(version_stages)
_MOVE_STAGE = (
    update(version_stages)
    .where(
        version_stages.c.secret_id == bindparam("p_secret"),
        version_stages.c.stage == bindparam("p_stage"),
    )
    .values(version_id=bindparam("p_version"))
)
_UPDATE_SECRET = update(secrets).where(secrets.c.id == bindparam("p_id"))


def find_by_arn(conn: Connection, arn: str, *, for_update: bool = False) -> SecretRecord | None:
    # The parameters are built by the load, which a cache hit never runs.
    return cached(
        conn,
        _BY_REFERENCE,
        ("arn", arn),
        lambda: _load(conn, _BUNDLE_BY_ARN, _SELECT_BY_ARN, {"p_arn": arn}, for_update),
    )


def find_by_name(
    conn: Connection, account_id: str, region: str, name: str, *, for_update: bool = False
) -> SecretRecord | None:
    return cached(
        conn,
        _BY_REFERENCE,
        ("name", account_id, region, name),
        lambda: _load(
            conn,
            _BUNDLE_BY_NAME,
            _SELECT_BY_NAME,
            {"p_account": account_id, "p_region": region, "p_name": name},
            for_update,
        ),
    )


def _load(
    conn: Connection,
    bundle: PreparedSelect,
    plain: PreparedSelect,
    params: Mapping[str, Any],
    for_update: bool,
) -> SecretRecord | None:
    """A snapshot reader reads the secret with its labels and current version
    (``bundle``); a writer reads the row alone (``plain``)."""
    if isinstance(conn, SnapshotReader):
        return _load_bundle(conn, bundle, params)
    return _first(conn, plain, params, for_update)


def _load_bundle(
    conn: SnapshotReader, query: PreparedSelect, params: Mapping[str, Any]
) -> SecretRecord | None:
    """The secret, with its labels and current version handed to :func:`stages` and
    :func:`version` of this snapshot (and the row cache): a read that finds the secret
    almost always reads those next."""
    rows = query.rows(cast(Connection, conn), params)
    if not rows:
        return None
    found = [dict(zip(query.columns, row, strict=True)) for row in rows]
    record = _secret(found[0])
    labels = MappingProxyType(
        {row["label_stage"]: row["label_version"] for row in found if row["label_stage"]}
    )  # read-only, as _load_stages
    remember(cast(Connection, conn), _STAGES, record.id, labels)
    current = None
    for row in found:
        if row["label_stage"] == CURRENT and row["current_version_id"] is not None:
            current = VersionRecord(**{name: row[f"current_{name}"] for name in _VERSION_FIELDS})
            remember(cast(Connection, conn), _VERSION, (record.id, current.version_id), current)
    remember(cast(Connection, conn), _STAGED, record.id, Staged(labels, current))
    return record


def find_by_id(conn: Connection, secret_id: int) -> SecretRecord | None:
    row = conn.execute(select(secrets).where(secrets.c.id == secret_id)).first()
    return _secret(row._mapping) if row is not None else None


def _first(
    conn: Connection, query: PreparedSelect, params: Mapping[str, Any], for_update: bool
) -> SecretRecord | None:
    if for_update and conn.dialect.name != "sqlite":
        row = conn.execute(query.statement.with_for_update(), dict(params)).first()
        return _secret(row._mapping) if row is not None else None
    found = query.first(conn, params)
    return _secret(found) if found else None


def insert_secret(conn: Connection, **values: Any) -> SecretRecord:
    key = conn.execute(insert(secrets).values(**values)).inserted_primary_key
    assert key is not None
    record = find_by_id(conn, key[0])
    assert record is not None
    return record


def update_secret(conn: Connection, record: SecretRecord, **values: Any) -> SecretRecord:
    """Write ``values`` to the secret's row; the record as changed (``record`` stays as it
    was: it may be the row cache's)."""
    rows_changed(conn, "secrets", record.id)
    conn.execute(_UPDATE_SECRET, {"p_id": record.id, **values})
    return replace(record, **values)


def delete_secret(conn: Connection, secret_id: int) -> None:
    # Children first: the schema cascades, but not every SQLite connection enforces it.
    rotation_state.remove(conn, secret_id)
    rows_changed(conn, "version_stages", secret_id)
    conn.execute(delete(version_stages).where(version_stages.c.secret_id == secret_id))
    rows_changed(conn, "secret_versions", secret_id)
    conn.execute(delete(secret_versions).where(secret_versions.c.secret_id == secret_id))
    rows_changed(conn, "secrets", secret_id)
    conn.execute(delete(secrets).where(secrets.c.id == secret_id))


def expired(conn: Connection, now_ms: int) -> list[SecretRecord]:
    rows = conn.execute(
        select(secrets).where(secrets.c.deletion_ms.is_not(None), secrets.c.deletion_ms <= now_ms)
    )
    return [_secret(row._mapping) for row in rows]


def scan(
    conn: Connection,
    account_id: str,
    region: str,
    *,
    include_deleted: bool,
    sort_column: str,
    descending: bool,
    after: tuple[Any, int, str] | None,
    limit: int,
) -> list[SecretRecord]:
    """Secrets in keyset order ``(sort key, creation time, name)``, starting after
    ``after``: ties keep creation order, and the name (unique in an account and region)
    settles the rest. Not the row id: a position handed to a caller in a NextToken then
    says nothing about other accounts' secrets."""
    column = secrets.c[sort_column]
    key: Any = func.coalesce(column, 0) if sort_column == "last_accessed_ms" else column
    created, name = secrets.c.created_ms, secrets.c.name
    where = [secrets.c.account_id == account_id, secrets.c.region == region]
    if not include_deleted:
        where.append(secrets.c.deleted_ms.is_(None))
    if after is not None:
        value, last_created, last_name = after
        if descending:
            where.append(
                or_(
                    key < value,
                    and_(key == value, created < last_created),
                    and_(key == value, created == last_created, name < last_name),
                )
            )
        else:
            where.append(
                or_(
                    key > value,
                    and_(key == value, created > last_created),
                    and_(key == value, created == last_created, name > last_name),
                )
            )
    ordering = (key, created, name)
    order = tuple(c.desc() if descending else c.asc() for c in ordering)
    rows = conn.execute(select(secrets).where(*where).order_by(*order).limit(limit))
    return [_secret(row._mapping) for row in rows]


# Versions and stages ------------------------------------------------------------------


def versions(conn: Connection, secret_id: int) -> list[VersionRecord]:
    rows = conn.execute(
        select(secret_versions)
        .where(secret_versions.c.secret_id == secret_id)
        .order_by(secret_versions.c.created_ms.desc(), secret_versions.c.version_id)
    )
    return [_version(row._mapping) for row in rows]


def version(conn: Connection, secret_id: int, version_id: str) -> VersionRecord | None:
    return cached(
        conn, _VERSION, (secret_id, version_id), lambda: _load_version(conn, secret_id, version_id)
    )


def _load_version(conn: Connection, secret_id: int, version_id: str) -> VersionRecord | None:
    found = _SELECT_VERSION.first(conn, {"p_secret": secret_id, "p_version": version_id})
    return _version(found) if found else None


def _version(found: Mapping[Any, Any]) -> VersionRecord:
    """The record of a ``secret_versions`` row, by column name (as :func:`_secret`)."""
    return VersionRecord(**{name: found[name] for name in _VERSION_FIELDS})


def count_versions(conn: Connection, secret_id: int) -> int:
    # Every PutSecretValue counts, under the write lock: straight on the driver.
    ((count,),) = _COUNT_VERSIONS.rows(conn, {"p_secret": secret_id})
    return int(count)


def insert_version(conn: Connection, secret_id: int, record: VersionRecord) -> None:
    rows_changed(conn, "secret_versions", secret_id)
    conn.execute(
        _INSERT_VERSION,
        {
            "secret_id": secret_id,
            "version_id": record.version_id,
            "created_ms": record.created_ms,
            "last_accessed_ms": record.last_accessed_ms,
            "kms_key_id": record.kms_key_id,
            "value_kind": record.value_kind,
            "ciphertext": record.ciphertext,
            "previous_kms_key_id": record.previous_kms_key_id,
            "previous_ciphertext": record.previous_ciphertext,
        },
    )


def fill_version(
    conn: Connection,
    secret_id: int,
    version_id: str,
    value_kind: str,
    ciphertext: bytes,
    kms_key_id: str | None,
    previous: tuple[str | None, bytes] | None = None,
) -> None:
    """Give a version a new sealed value (a re-encryption under another key), and keep
    ``previous`` (the KmsKeyId and ciphertext it had) beside it."""
    rows_changed(conn, "secret_versions", secret_id)
    conn.execute(
        update(secret_versions)
        .where(secret_versions.c.secret_id == secret_id, secret_versions.c.version_id == version_id)
        .values(
            value_kind=value_kind,
            ciphertext=ciphertext,
            kms_key_id=kms_key_id,
            previous_kms_key_id=previous[0] if previous else None,
            previous_ciphertext=previous[1] if previous else None,
        )
    )


def delete_versions(conn: Connection, secret_id: int, version_ids: Iterable[str]) -> None:
    ids = list(version_ids)
    if ids:
        rows_changed(conn, "secret_versions", secret_id)
        conn.execute(
            delete(secret_versions).where(
                secret_versions.c.secret_id == secret_id, secret_versions.c.version_id.in_(ids)
            )
        )


def touch_version(conn: Connection, secret_id: int, version_id: str, day_ms: int) -> None:
    rows_changed(conn, "secret_versions", secret_id)
    conn.execute(
        update(secret_versions)
        .where(secret_versions.c.secret_id == secret_id, secret_versions.c.version_id == version_id)
        .values(last_accessed_ms=day_ms)
    )


def stages(conn: Connection, secret_id: int) -> dict[str, str]:
    """Stage -> version id; a copy, the caller may change it."""
    return dict(stages_view(conn, secret_id))


def stages_view(conn: Connection, secret_id: int) -> Mapping[str, str]:
    """Stage -> version id, read-only: the cached mapping itself, for a caller that only
    looks (GetSecretValue), without the copy :func:`stages` makes."""
    return cached(conn, _STAGES, secret_id, lambda: _load_stages(conn, secret_id))


def staged(conn: Connection, secret_id: int) -> Staged:
    """The secret's labels and its AWSCURRENT version, as :func:`stages_view` and
    :func:`version` would give them, in one cached lookup."""
    return cached(conn, _STAGED, secret_id, lambda: _load_staged(conn, secret_id))


def _load_staged(conn: Connection, secret_id: int) -> Staged:
    labels = stages_view(conn, secret_id)
    holder = labels.get(CURRENT)
    return Staged(labels, version(conn, secret_id, holder) if holder else None)


def _load_stages(conn: Connection, secret_id: int) -> Mapping[str, str]:
    # Read-only: the row cache hands this very mapping to every later reader.
    return MappingProxyType(dict(_SELECT_STAGES.rows(conn, {"p_secret": secret_id})))


def stages_of_many(conn: Connection, secret_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    result: dict[int, dict[str, str]] = {secret_id: {} for secret_id in secret_ids}
    if not secret_ids:
        return result
    rows = conn.execute(select(version_stages).where(version_stages.c.secret_id.in_(secret_ids)))
    for row in rows:
        result[row.secret_id][row.stage] = row.version_id
    return result


def replace_stages(
    conn: Connection, secret_id: int, old: Mapping[str, str], new: Mapping[str, str]
) -> None:
    """Write only the labels that changed."""
    gone = [stage for stage in old if stage not in new]
    if gone:
        rows_changed(conn, "version_stages", secret_id)
        conn.execute(
            delete(version_stages).where(
                version_stages.c.secret_id == secret_id, version_stages.c.stage.in_(gone)
            )
        )
    for stage, version_id in new.items():
        if stage not in old:
            rows_changed(conn, "version_stages", secret_id)
            conn.execute(
                _INSERT_STAGE, {"secret_id": secret_id, "stage": stage, "version_id": version_id}
            )
        elif old[stage] != version_id:
            rows_changed(conn, "version_stages", secret_id)
            conn.execute(
                _MOVE_STAGE, {"p_secret": secret_id, "p_stage": stage, "p_version": version_id}
            )
