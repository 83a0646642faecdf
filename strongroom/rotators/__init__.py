"""The built-in rotation functions: Lambda-format handlers that the function runtime runs
like any uploaded function. They import nothing of Strongroom.

Each built-in appears as a function that exists in every account
(``arn:aws:lambda:<region>:<account>:function:<name>``); the function service lists and
invokes them from :data:`BUILTINS`, running ``handler`` with this package's directory as the
function's code. They run with the role :data:`BUILTIN_ROLE_NAME` of the calling account,
which ``strongroom rotation enable`` creates when it is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CODE_DIRECTORY = Path(__file__).resolve().parent
BUILTIN_ROLE_NAME = "StrongroomBuiltInRotation"  # path /service-role/


@dataclass(frozen=True)
class BuiltinFunction:
    """A function shipped with Strongroom."""

    name: str  # the function name, e.g. "strongroom-postgresql-single-user"
    handler: str  # "module.function", relative to CODE_DIRECTORY, as Lambda's Handler
    description: str
    timeout_seconds: int = 30
    memory_mb: int = 256


# name -> function; filled in by the modules of this package that ship a rotator.
BUILTINS: dict[str, BuiltinFunction] = {}
