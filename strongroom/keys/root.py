"""The root key file (the ``file`` provider's ``root.key``, 0600) and the careful file
writes every root-key provider uses: private, durable and atomic."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT_KEY_FILE = "root.key"
ROOT_KEY_BYTES = 32


def new_root_key() -> bytes:
    """A fresh 256-bit root key."""
    return AESGCM.generate_key(bit_length=256)


def create_key_file(data_dir: Path) -> bytes:
    """A new root key, written to ``root.key`` (never over an existing one)."""
    key = new_root_key()
    write_private_file(data_dir / ROOT_KEY_FILE, key, replace=False)
    return key


def load_key_file(data_dir: Path) -> bytes:
    path = data_dir / ROOT_KEY_FILE
    key = path.read_bytes()
    if len(key) != ROOT_KEY_BYTES:
        raise ValueError(f"{path} is not a 256-bit key file")
    return key


def write_private_file(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to ``path`` as the owner's alone (0600), all or nothing.

    The bytes go to a temporary file in the same directory, are synced, then moved into
    place (``rename``, or ``link`` when ``replace`` is false so an existing file is never
    overwritten, raising :class:`FileExistsError`), and the directory is synced.
    """
    directory = path.parent
    temporary = directory / f".{path.name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # whatever the umask was
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    sync_directory(directory)


def sync_directory(directory: Path) -> None:
    """Make renames and unlinks in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
