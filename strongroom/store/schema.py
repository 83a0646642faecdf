# long module: the one relational schema, every table beside the others (as migrations see it)
"""The relational schema, in portable SQLAlchemy Core. SQLite is the database served today;
nothing here is SQLite-only, so that PostgreSQL (planned) can share it.

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

# Every audit writer (one open of a deployment, on any node), in the order they started:
# what `strongroom audit verify` checks the files against (audit/writers.py).
audit_writers = Table(
    "audit_writers",
    metadata,
    Column("ordinal", Integer, primary_key=True, autoincrement=False),
    Column("writer", String(64), nullable=False, unique=True),
    Column("node", String(255), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("previous_writer", String(64), nullable=True),
    Column("public_key", LargeBinary, nullable=False),  # raw Ed25519
    Column("fingerprint", String(64), nullable=False),
    Column("digest_interval_ms", BigInteger, nullable=False),
    Column("last_digest_sequence", Integer, nullable=True),
    Column("last_digest_hash", String(64), nullable=True),
    Column("last_digest_ms", BigInteger, nullable=True),
    Column("closed_ms", BigInteger, nullable=True),
    Column("retired_ms", BigInteger, nullable=True),  # retention removed its files
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
    # GetAccessKeyLastUsed; written at most once a minute per key (CredentialStore.note_use).
    Column("last_used_ms", BigInteger),
    Column("last_used_service", String(128)),
    Column("last_used_region", String(128)),
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

# The rotation of each secret that has rotation turned on: when the next one may start, and
# the one under way (its version, step, attempt and the worker's claim on it). A scheduler
# claims a due row in the same transaction as it changes its state (server/jobs.py's
# exactly-once rule); a claim whose lease ran out was abandoned.
secret_rotations = Table(
    "secret_rotations",
    metadata,
    Column("secret_id", Integer, ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("state", String(16), nullable=False),  # "scheduled" | "running"
    Column("token", String(64)),  # the AWSPENDING version of the rotation under way
    Column("due_ms", BigInteger),  # when the next attempt may start (state "scheduled")
    Column("window_end_ms", BigInteger),
    Column("step", String(16)),
    Column("attempt", Integer, nullable=False),
    Column("claim_id", String(32)),  # the digest of the claim's RotationToken, not the token
    Column("lease_until_ms", BigInteger),
    Column("last_error", String(256)),
    Column("kind", String(8)),  # "test": RotateImmediately=false's testSecret run; NULL: rotation
)
Index("ix_secret_rotations_due", secret_rotations.c.state, secret_rotations.c.due_ms)
Index("ix_secret_rotations_lease", secret_rotations.c.state, secret_rotations.c.lease_until_ms)

secret_versions = Table(
    "secret_versions",
    metadata,
    Column("secret_id", Integer, ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_accessed_ms", BigInteger),
    Column("kms_key_id", String(2048)),
    # "string" or "binary". Nullable as created by 0001; every version written has a value.
    Column("value_kind", String(8)),
    Column("ciphertext", LargeBinary),
    # After a KMS key change: the value as it was sealed under the previous key (its
    # KmsKeyId, None for the managed key), kept so the version still opens if the new
    # key cannot be used (0009).
    Column("previous_kms_key_id", String(2048)),
    Column("previous_ciphertext", LargeBinary),
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

# A grant lets its grantee principal use the key for the listed operations, without a key
# policy statement (KMS developer guide, "Grants in AWS KMS"); it lives with its key.
kms_grants = Table(
    "kms_grants",
    metadata,
    Column("grant_id", String(64), primary_key=True),
    Column(
        "key_id",
        String(36),
        ForeignKey("kms_keys.key_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("account_id", String(12), nullable=False),  # the key's account
    Column("region", String(128), nullable=False),
    Column("name", String(256)),
    # A user or role by its unique id (AIDA.../AROA..., migration 0013), another principal
    # (an account root, a role session) by its ARN.
    Column("grantee_principal", String(256), nullable=False),
    Column("retiring_principal", String(256)),
    Column("issuing_account", String(256), nullable=False),
    Column("operations", JSON, nullable=False),  # ["Decrypt", ...]
    Column("constraints", JSON),  # {"EncryptionContextSubset": {...}} | ... | NULL
    Column("created_ms", BigInteger, nullable=False),
)
Index("ix_kms_grants_key", kms_grants.c.key_id)
Index("ix_kms_grants_retiring", kms_grants.c.region, kms_grants.c.retiring_principal)

# IAM ---------------------------------------------------------------------------------
# Only strongroom/iam touches these tables. IAM names are unique per account ignoring
# case ("name_key" is the lower-cased name), and IAM is global: no region column.

iam_users = Table(
    "iam_users",
    metadata,
    Column("id", String(32), primary_key=True),  # AIDA...
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("name_key", String(64), nullable=False),
    Column("path", String(512), nullable=False),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("permissions_boundary", String(2048)),
    Column("tags", JSON),  # [[key, value], ...]
    Column("created_ms", BigInteger, nullable=False),
    Column("password_last_used_ms", BigInteger),
    UniqueConstraint("account_id", "name_key", name="uq_iam_users_name"),
)

iam_groups = Table(
    "iam_groups",
    metadata,
    Column("id", String(32), primary_key=True),  # AGPA...
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("name_key", String(128), nullable=False),
    Column("path", String(512), nullable=False),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("account_id", "name_key", name="uq_iam_groups_name"),
)

iam_group_members = Table(
    "iam_group_members",
    metadata,
    Column(
        "group_id", String(32), ForeignKey("iam_groups.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("user_id", String(32), ForeignKey("iam_users.id", ondelete="CASCADE"), primary_key=True),
    Column("added_ms", BigInteger, nullable=False),
)
Index("ix_iam_group_members_user", iam_group_members.c.user_id)

iam_roles = Table(
    "iam_roles",
    metadata,
    Column("id", String(32), primary_key=True),  # AROA...
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("name_key", String(64), nullable=False),
    Column("path", String(512), nullable=False),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("description", Text),
    Column("trust_policy", Text, nullable=False),
    Column("max_session_duration", Integer, nullable=False),
    Column("permissions_boundary", String(2048)),
    Column("tags", JSON),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_used_ms", BigInteger),
    Column("last_used_region", String(128)),
    UniqueConstraint("account_id", "name_key", name="uq_iam_roles_name"),
)

# Inline policies of users, groups and roles; principal_id is the entity's id.
iam_inline_policies = Table(
    "iam_inline_policies",
    metadata,
    Column("principal_id", String(32), primary_key=True),
    Column("policy_name", String(128), primary_key=True),
    Column("principal_kind", String(8), nullable=False),  # user | group | role
    Column("document", Text, nullable=False),
)

# Customer managed policies; the AWS managed ones live in strongroom/iam/managed_policies.py.
iam_policies = Table(
    "iam_policies",
    metadata,
    Column("id", String(32), primary_key=True),  # ANPA...
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("name_key", String(128), nullable=False),
    Column("path", String(512), nullable=False),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("description", Text),
    Column("default_version", String(32), nullable=False),
    Column("next_version", Integer, nullable=False),  # version ids are never reused
    Column("tags", JSON),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("account_id", "name_key", name="uq_iam_policies_name"),
)

iam_policy_versions = Table(
    "iam_policy_versions",
    metadata,
    Column(
        "policy_id", String(32), ForeignKey("iam_policies.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("version_id", String(32), primary_key=True),
    Column("document", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# Managed policies attached to users, groups and roles. The ARN may name an AWS managed
# policy, which has no row, hence no foreign key.
iam_attachments = Table(
    "iam_attachments",
    metadata,
    Column("principal_id", String(32), primary_key=True),
    Column("policy_arn", String(2048), primary_key=True),
    Column("principal_kind", String(8), nullable=False),
    Column("account_id", String(12), nullable=False),
    Column("attached_ms", BigInteger, nullable=False),
)
Index("ix_iam_attachments_policy", iam_attachments.c.account_id, iam_attachments.c.policy_arn)

iam_login_profiles = Table(
    "iam_login_profiles",
    metadata,
    Column("user_id", String(32), ForeignKey("iam_users.id", ondelete="CASCADE"), primary_key=True),
    Column("password_hash", String(256), nullable=False),  # scrypt, see iam/passwords.py
    Column("password_reset_required", Boolean, nullable=False),
    Column("max_signin_session_duration", Integer),
    Column("created_ms", BigInteger, nullable=False),
)

# One row counting IAM writes, so an authorizer can cache what it read and revalidate with
# a single cheap query (IdentityService.generation()).
# Bumped in every write transaction, per table written (store/cache.py): how a process
# knows which of its cached rows another process changed.
change_counters = Table(
    "change_counters",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("counter", BigInteger, nullable=False),
)

# The rows that write transactions declared changed (store/cache.py, rows_changed): a
# process drops only those rows' cached entries. Its sequence is also in change_counters.
row_changes = Table(
    "row_changes",
    metadata,
    Column("seq", Integer, primary_key=True),
    Column("table_name", String(64), nullable=False),
    Column("row_key", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

iam_generation = Table(
    "iam_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)

# STS -----------------------------------------------------------------------------------
# Temporary credentials (AssumeRole, GetSessionToken). Like a long-term key's, the secret
# is needed to recompute signatures, so it is sealed by the barrier (bound to the key id);
# the session token is only ever compared, so only its SHA-256 is kept.

sts_sessions = Table(
    "sts_sessions",
    metadata,
    Column("access_key_id", String(128), primary_key=True),  # ASIA...
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("kind", String(16), nullable=False),  # assumed-role | user | root
    Column("principal_arn", String(2048), nullable=False),  # the session ARN, or the user's
    Column("identity_arn", String(2048), nullable=False),  # the role's ARN, or the user's
    Column("role_id", String(32)),  # AROA... for a role session
    # The IAM user (AIDA...) a user's session (GetSessionToken, the console) or a
    # federated user's (GetFederationToken) belongs to: the session is that user's, not
    # its name's (iam/credentials.py). NULL for root's and role sessions, and for a session
    # migration 0013 could not bind (unusable).
    Column("user_id", String(32)),
    Column("session_name", String(64)),
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("token_hash", LargeBinary, nullable=False),
    Column("session_policies", JSON),  # [document, ...]: inline first, then managed
    Column("session_tags", JSON),  # [[key, value], ...]
    Column("transitive_tag_keys", JSON),  # [key, ...]
    Column("source_identity", String(256)),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    # When the session's MFA code was verified (aws:MultiFactorAuthAge counts from it);
    # NULL for a session obtained without MFA.
    Column("mfa_authenticated_ms", BigInteger),
)
Index("ix_sts_sessions_expires", sts_sessions.c.expires_ms)

# Virtual MFA devices (iam/mfa.py). The TOTP seed is sealed by the barrier, bound to the
# serial number; a device is assigned to at most one user (user_id) once enabled.
# last_step is the last TOTP time step accepted, so no code is accepted twice; drift is
# the device clock's offset in time steps, learned when it is enabled or resynchronized.
iam_mfa_devices = Table(
    "iam_mfa_devices",
    metadata,
    Column("serial_number", String(256), primary_key=True),  # arn:aws:iam::ACCT:mfa/...
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("name", String(226), nullable=False),
    Column("path", String(512), nullable=False),
    Column("seed_ciphertext", LargeBinary, nullable=False),
    Column("user_id", String(32), ForeignKey("iam_users.id")),
    Column("enabled_ms", BigInteger),
    Column("last_step", BigInteger),
    Column("drift", Integer, nullable=False),
    Column("tags", JSON),
    Column("created_ms", BigInteger, nullable=False),
)
Index("ix_iam_mfa_devices_user", iam_mfa_devices.c.user_id)

# Organizations ---------------------------------------------------------------------------

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(34), primary_key=True),  # o-...
    Column(
        "management_account_id",
        String(12),
        ForeignKey("accounts.account_id"),
        nullable=False,
        unique=True,
    ),
    Column("feature_set", String(32), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# The accounts of an organization, the management account included. An account belongs
# to at most one organization (the primary key).
organization_accounts = Table(
    "organization_accounts",
    metadata,
    Column("account_id", String(12), ForeignKey("accounts.account_id"), primary_key=True),
    Column("organization_id", String(34), ForeignKey("organizations.id"), nullable=False),
    Column("email", String(64)),  # NULL for the management account: not known here
    Column("email_key", String(64), unique=True),  # lower-cased: unique ignoring case
    Column("status", String(32), nullable=False),
    Column("joined_method", String(16), nullable=False),  # INVITED | CREATED
    Column("joined_ms", BigInteger, nullable=False),
    Column("tags", JSON),
)
Index(
    "ix_organization_accounts_org",
    organization_accounts.c.organization_id,
    organization_accounts.c.joined_ms,
)

create_account_requests = Table(
    "create_account_requests",
    metadata,
    Column("id", String(36), primary_key=True),  # car-...
    Column("organization_id", String(34), ForeignKey("organizations.id"), nullable=False),
    Column("account_name", String(50), nullable=False),
    Column("state", String(16), nullable=False),  # SUCCEEDED | FAILED
    Column("failure_reason", String(64)),
    Column("account_id", String(12)),
    Column("requested_ms", BigInteger, nullable=False),
    Column("completed_ms", BigInteger),
)

# Lambda-compatible functions (strongroom/functions) -----------------------------------------

# A function: its configuration, its code (a zip, AES-256-GCM under the function's own data
# key, which the root barrier seals, bound to the ARN) and its resource policy.
lambda_functions = Table(
    "lambda_functions",
    metadata,
    Column("arn", String(256), primary_key=True),  # arn:aws:lambda:REGION:ACCT:function:NAME
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("region", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("runtime", String(32), nullable=False),
    Column("role", String(2048), nullable=False),
    Column("handler", String(128), nullable=False),
    Column("description", Text, nullable=False),
    Column("timeout", Integer, nullable=False),
    Column("memory_size", Integer, nullable=False),
    Column("data_key", LargeBinary, nullable=False),  # root-sealed, bound to the ARN
    Column("environment", LargeBinary),  # sealed under data_key; None: no variables
    Column("code", LargeBinary, nullable=False),  # the zip, sealed under data_key
    Column("code_sha256", String(64), nullable=False),  # base64 SHA-256, as CodeSha256
    Column("code_size", BigInteger, nullable=False),
    Column("policy", Text),  # the resource policy (AddPermission), None when empty
    Column("tags", JSON),
    Column("revision_id", String(36), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("modified_ms", BigInteger, nullable=False),
    UniqueConstraint("account_id", "region", "name", name="uq_lambda_functions_name"),
)

# A function's log group (/aws/lambda/NAME, per account and Region): its own data key,
# root-sealed and bound to the group's ARN, and its retention. It outlives the function
# (as in AWS, deleting a function keeps its logs); DeleteLogGroup removes it.
lambda_log_groups = Table(
    "lambda_log_groups",
    metadata,
    Column("arn", String(512), primary_key=True),  # arn:aws:logs:REGION:ACCT:log-group:NAME
    Column("account_id", String(12), nullable=False),
    Column("region", String(64), nullable=False),
    Column("function_name", String(64), nullable=False),
    Column("data_key", LargeBinary, nullable=False),  # root-sealed, bound to the ARN
    Column("retention_days", Integer),  # None: never expire (no retention policy)
    Column("created_ms", BigInteger, nullable=False),
    Column("logged", BigInteger, nullable=False, server_default="0"),  # logs recorded so far
    UniqueConstraint("account_id", "region", "function_name", name="uq_lambda_log_groups_name"),
)

# One invocation's log (START ... END, REPORT): what the function wrote to stdout/stderr,
# AES-256-GCM under its log group's data key, bound to the group's ARN and the request id.
# An asynchronous invocation that Lambda retries writes one row per attempt, all with its
# request id (and in its one log stream): the attempt is part of the key.
lambda_invocations = Table(
    "lambda_invocations",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("attempt", Integer, primary_key=True, nullable=False, server_default="1"),
    Column("function_arn", String(256), nullable=False),
    Column("account_id", String(12), nullable=False),
    Column("region", String(64), nullable=False),
    Column("function_name", String(64), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("duration_ms", BigInteger, nullable=False),
    Column("outcome", String(32), nullable=False),  # ok, Unhandled, timeout, memory
    # The order logs were recorded in, within their group (lambda_log_groups.logged):
    # logs of the same time (a test clock, the same millisecond) read in that order.
    Column("sequence", BigInteger),
    # Plaintext only in rows an older version wrote, until the pass that seals them at
    # open (functions/log_groups.py seal_plaintext) empties it; always "" otherwise.
    Column("log", Text, nullable=False),
    Column("sealed", LargeBinary),  # the log, sealed; None only in such older rows
    Column("stored_bytes", BigInteger),  # the log's UTF-8 byte count (storedBytes)
)
Index(
    "ix_lambda_invocations_function",
    lambda_invocations.c.account_id,
    lambda_invocations.c.region,
    lambda_invocations.c.function_name,
    lambda_invocations.c.started_ms,
)

# A function's asynchronous invocation settings (PutFunctionEventInvokeConfig): None is
# Lambda's default (2 retries, 21600 seconds). Deleted with the function.
lambda_event_invoke_configs = Table(
    "lambda_event_invoke_configs",
    metadata,
    Column("function_arn", String(256), primary_key=True),
    Column("maximum_retry_attempts", Integer),
    Column("maximum_event_age_seconds", Integer),
    Column("modified_ms", BigInteger, nullable=False),
)

# The asynchronous invocation queue (Invoke with InvocationType=Event): each event until
# it succeeded, failed its last attempt or grew older than its maximum age. ``queued``: the
# next attempt may start at ``due_ms``; ``running``: a worker's ``claim_id`` holds it until
# ``lease_until_ms`` (a claim whose lease ran out was abandoned: another worker takes it).
# The payload is customer data: sealed under the event's own data key, itself root-sealed.
lambda_event_queue = Table(
    "lambda_event_queue",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("function_arn", String(256), nullable=False),
    Column("data_key", LargeBinary, nullable=False),  # root-sealed, bound to the request id
    Column("payload", LargeBinary, nullable=False),  # sealed under data_key
    Column("queued_ms", BigInteger, nullable=False),
    Column("due_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),  # attempts started so far
    Column("state", String(16), nullable=False),
    Column("claim_id", String(36)),
    Column("lease_until_ms", BigInteger),
)
Index("ix_lambda_event_queue_due", lambda_event_queue.c.state, lambda_event_queue.c.due_ms)

# The console's failed sign-ins (server/sign_in_failures.py): one row per failure per
# throttle key (a user or access key, a source address), so every worker and node counts
# them together and a restart keeps them. Only the key's SHA-256 and the time are kept (a
# user name typed may be a mistyped password); rows older than the window are pruned by
# each attempt, never to make room.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_digest", String(64), nullable=False),  # hex SHA-256 of the throttle key
    Column("failed_ms", BigInteger, nullable=False),
)
Index("ix_sign_in_failures_key", sign_in_failures.c.key_digest, sign_in_failures.c.failed_ms)
Index("ix_sign_in_failures_time", sign_in_failures.c.failed_ms)
