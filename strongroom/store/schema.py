"""The relational schema, in SQLAlchemy Core, shared by SQLite and PostgreSQL.

Changing a table here needs a migration under ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Times are stored as integer epoch milliseconds: portable, ordered, and exactly the
# precision AWS answers with.
settings = Table(
    "settings",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("principal_arn", String(2048), nullable=False),
    # The secret key is needed to recompute signatures, so it is kept sealed, not hashed.
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

secrets = Table(
    "secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(128), nullable=False),
    Column("name", String(512), nullable=False),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("description", Text),
    Column("kms_key_id", String(2048)),
    Column("secret_type", String(256)),
    Column("tags", JSON),  # list of [key, value] pairs in insertion order; NULL = never tagged
    Column("resource_policy", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_changed_ms", BigInteger, nullable=False),
    Column("last_accessed_ms", BigInteger),
    Column("deleted_ms", BigInteger),
    Column("deletion_ms", BigInteger),
    Column("rotation_enabled", Boolean),
    Column("rotation_lambda_arn", String(2048)),
    Column("rotation_rules", JSON),
    Column("last_rotated_ms", BigInteger),
    Column("next_rotation_ms", BigInteger),
    Column("owning_service", String(256)),
    # Replication: a primary lists its replicas here; a replica names its primary's region.
    Column("primary_region", String(128)),
    Column("replicas", JSON),  # [{"Region", "KmsKeyId", "Status", "StatusMessage"}]
    UniqueConstraint("account_id", "region", "name", name="uq_secrets_name"),
    # A purged secret's id is never handed to a new secret, so nothing keyed on it (audit,
    # caches) can attach to a stranger.
    sqlite_autoincrement=True,
)
Index("ix_secrets_created", secrets.c.account_id, secrets.c.region, secrets.c.created_ms)
Index("ix_secrets_deletion", secrets.c.deletion_ms)

secret_versions = Table(
    "secret_versions",
    metadata,
    Column("secret_id", Integer, ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_accessed_ms", BigInteger),
    Column("kms_key_id", String(2048)),
    # "string" or "binary"; NULL for a version created without a value (rotation placeholder).
    Column("value_kind", String(8)),
    Column("ciphertext", LargeBinary),
)
Index("ix_versions_created", secret_versions.c.secret_id, secret_versions.c.created_ms)

# One row per label: the primary key makes "a label is on at most one version" a
# constraint of the database, not just of the code.
version_stages = Table(
    "version_stages",
    metadata,
    Column("secret_id", Integer, ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("stage", String(256), primary_key=True),
    Column("version_id", String(64), nullable=False),
)

# KMS ---------------------------------------------------------------------------------

kms_keys = Table(
    "kms_keys",
    metadata,
    Column("key_id", String(36), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(128), nullable=False),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("key_manager", String(16), nullable=False),  # CUSTOMER | AWS
    Column("state", String(32), nullable=False),  # Enabled | Disabled | PendingDeletion
    Column("policy", Text, nullable=False),
    Column("tags", JSON),  # [[key, value], ...]
    Column("created_ms", BigInteger, nullable=False),
    Column("deletion_ms", BigInteger),
    Column("pending_window_days", Integer),
    Column("rotation_period_days", Integer),  # NULL = automatic rotation off
    Column("next_rotation_ms", BigInteger),
    Column("on_demand_rotation_ms", BigInteger),
)
Index("ix_kms_keys_account", kms_keys.c.account_id, kms_keys.c.region, kms_keys.c.created_ms)

# Every generation of a key's material is kept so old ciphertexts still decrypt after
# rotation; the newest generation encrypts. Material is sealed by the root key.
kms_key_material = Table(
    "kms_key_material",
    metadata,
    Column(
        "key_id", String(36), ForeignKey("kms_keys.key_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("generation", Integer, primary_key=True),
    Column("material_id", String(64), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("rotation_type", String(16)),  # AUTOMATIC | ON_DEMAND | NULL for the first
)

kms_aliases = Table(
    "kms_aliases",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(128), primary_key=True),
    Column("alias_name", String(256), primary_key=True),
    Column(
        "target_key_id",
        String(36),
        ForeignKey("kms_keys.key_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
