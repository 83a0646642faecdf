"""A KMS-compatible key service: symmetric keys, aliases, key policies, rotation,
deletion windows, grants and the cryptographic operations, one module per part: keys
(:mod:`.kms_keys`), rotation (:mod:`.kms_rotation`), aliases (:mod:`.kms_aliases`), key
policies (:mod:`.key_policies`), grants (:mod:`.kms_grants`), the cryptographic
operations (:mod:`.kms_crypto`) and
Secrets Manager's envelope encryption (:mod:`.secret_envelopes`), over the ciphertext
blob format (:mod:`.blobs`), the key material and its cache (:mod:`.material`), the
data-key cache (:mod:`.data_keys`), the
SQL (:mod:`.repository`) and what they share (:mod:`.kms_base`, :mod:`.kms_common`).

Key material never leaves these modules in the clear except as data keys handed to a
caller. Each generation of a key's material is sealed by the root barrier and bound to
the key id and generation; ciphertext blobs name the key and generation that made them,
and bind the encryption context as associated data.
"""

from __future__ import annotations

from strongroom.keys.blobs import canonical_context
from strongroom.keys.data_keys import DATA_KEY_LIMIT, DataKeys
from strongroom.keys.key_policies import KeyPolicies, default_key_policy, managed_key_policy
from strongroom.keys.kms_aliases import Aliases
from strongroom.keys.kms_common import (
    MAX_ON_DEMAND_ROTATIONS,
    SECRETS_MANAGER_ALIAS,
    SYMMETRIC,
    access_denied,
    disabled,
    invalid_ciphertext,
    invalid_state,
    not_found,
    unsupported,
)
from strongroom.keys.kms_crypto import CryptoOperations
from strongroom.keys.kms_grants import Grants
from strongroom.keys.kms_rotation import Rotation
from strongroom.keys.repository import KeyRecord
from strongroom.keys.secret_envelopes import SecretEnvelopes

# The old import path of these names, kept for the packages and tests that use it.
__all__ = [
    "DATA_KEY_LIMIT",
    "MAX_ON_DEMAND_ROTATIONS",
    "SECRETS_MANAGER_ALIAS",
    "SYMMETRIC",
    "DataKeys",
    "KeyRecord",
    "KeyService",
    "access_denied",
    "canonical_context",
    "default_key_policy",
    "disabled",
    "invalid_ciphertext",
    "invalid_state",
    "managed_key_policy",
    "not_found",
    "unsupported",
]


class KeyService(SecretEnvelopes, Rotation, Aliases, CryptoOperations, KeyPolicies, Grants):
    """The KMS service: every part's operations over one store, root barrier, clock and
    Marker codec."""
