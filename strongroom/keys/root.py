"""The root key: a 256-bit key file created 0600 in the data directory."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT_KEY_FILE = "root.key"


def create_key_file(data_dir: Path) -> bytes:
    key = AESGCM.generate_key(bit_length=256)
    path = data_dir / ROOT_KEY_FILE
    # O_EXCL: never overwrite a key that may still protect data.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def load_key_file(data_dir: Path) -> bytes:
    path = data_dir / ROOT_KEY_FILE
    key = path.read_bytes()
    if len(key) != 32:
        raise ValueError(f"{path} is not a 256-bit key file")
    return key
