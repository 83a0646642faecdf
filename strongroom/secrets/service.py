"""Secrets Manager's domain logic over the store, one module per noun: values
(:mod:`.values`: GetSecretValue, BatchGetSecretValue, PutSecretValue), versions and staging
labels (:mod:`.versions`), rotation (:mod:`.rotation`: RotateSecret, CancelRotateSecret
and the state the scheduler claims; schedules in :mod:`.schedules`), listing
(:mod:`.listing`), replication (:mod:`.replication`) and a secret's life, tags and
resource policies (:mod:`.lifecycle`); sealing values with KMS is in :mod:`.encryption`,
what they share in :mod:`.base` and :mod:`.common`.

Every public method is one operation: it takes the caller and the parsed input members
(model names) and returns the output members. Checks come before writes and each write
operation is one transaction, so a refused request changes nothing.
"""

from __future__ import annotations

from strongroom.secrets.common import MANAGED_KEY, MAX_VERSIONS, not_found
from strongroom.secrets.lifecycle import SecretLifecycle
from strongroom.secrets.rotation import SecretRotation
from strongroom.secrets.values import SecretValues

# The old import path of these names, kept for the packages and tests that use it.
__all__ = ["MANAGED_KEY", "MAX_VERSIONS", "SecretsManager", "not_found"]


class SecretsManager(SecretValues, SecretLifecycle, SecretRotation):
    """The Secrets Manager service: every noun's operations over one store, KMS service,
    clock and NextToken codec."""
