"""Everything the root barrier seals, gathered from the domains that seal it: the list a
rekey re-wraps (:func:`strongroom.keys.rekey.rekey`). Each domain declares its own sealed
columns next to the code that writes them; the values kept in the shared ``settings``
table are declared here, where the deployment that creates them is assembled."""

from __future__ import annotations

from strongroom.audit import signing
from strongroom.functions import repository as functions
from strongroom.iam import credentials, mfa
from strongroom.keys import rekey
from strongroom.keys.rekey import SealedColumn
from strongroom.server.deployment import TOKEN_KEY
from strongroom.store import schema

# The key that seals pagination tokens (server/deployment.py) and the key that signs
# audit digests (audit/signing.py), each bound to its setting's name.
SEALED_SETTINGS = SealedColumn(
    schema.settings,
    "value",
    lambda row: row.name.encode(),
    where=lambda: schema.settings.c.name.in_((TOKEN_KEY, signing.SETTING)),
)

ROOT_SEALED: tuple[SealedColumn, ...] = (
    *credentials.ROOT_SEALED,
    *mfa.ROOT_SEALED,
    SEALED_SETTINGS,
    rekey.KMS_MATERIAL,
    *functions.ROOT_SEALED,
)
