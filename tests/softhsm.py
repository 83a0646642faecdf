"""A SoftHSM2 token for the PKCS#11 root-key tests, made in a temporary directory.

SoftHSM2 comes from Debian (``apt-get install softhsm2``; ``.ci/run`` installs it). Tests
skip with the reason when it is missing on a developer machine, and fail in CI
(``CI=true``), where it must be there.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)


@dataclass(frozen=True)
class SoftHsmToken:
    conf: Path
    module: str
    label: str
    pin: str = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to use the token (the PIN and the library as Strongroom
        reads them)."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "STRONGROOM_PKCS11_PIN": self.pin,
            "STRONGROOM_PKCS11_MODULE": self.module,
        }


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the PKCS#11 tests (.ci/run installs softhsm2)")
    pytest.skip(f"{reason} (apt-get install -y softhsm2 to run the PKCS#11 tests)")


def softhsm_module() -> str:
    """The SoftHSM2 PKCS#11 library, or skip (fail in CI) when it is not installed."""
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        _unavailable("python-pkcs11 is not installed")
    util = shutil.which("softhsm2-util")
    module = next((path for path in MODULE_CANDIDATES if os.path.exists(path)), None)
    if util is None or module is None:
        _unavailable("softhsm2 is not installed")
    assert module is not None
    return module


def make_token(directory: Path, label: str = "strongroom-test") -> SoftHsmToken:
    """A fresh, initialised SoftHSM2 token whose state lives in ``directory``."""
    module = softhsm_module()
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    pin = secrets.token_hex(4)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            secrets.token_hex(4),
        ],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
    )
    return SoftHsmToken(conf, module, label, pin)
