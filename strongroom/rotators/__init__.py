"""The built-in rotation functions: Lambda-format handlers that the function runtime runs
like any uploaded function. They import nothing of Strongroom.

Each built-in appears as a function that exists in every account
(``arn:aws:lambda:<region>:<account>:function:<name>``); the function service lists and
invokes them from :data:`BUILTINS`, running ``handler`` with this package's directory as the
function's code. They run with the role :data:`BUILTIN_ROLE_NAME` of the calling account,
which ``strongroom rotation enable`` creates when it is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    # The function's environment variables: the password rules (PASSWORD_LENGTH,
    # EXCLUDE_CHARACTERS, EXCLUDE_NUMBERS, EXCLUDE_PUNCTUATION, EXCLUDE_UPPERCASE,
    # EXCLUDE_LOWERCASE, REQUIRE_EACH_INCLUDED_TYPE) and timeouts (CONNECT_TIMEOUT,
    # STATEMENT_TIMEOUT, seconds), SSL_CA_FILE; the defaults are AWS's templates' own.
    environment: Mapping[str, str] = field(default_factory=dict)
    strategy: str = ""  # "single-user" | "alternating-users" | "" (no external system)


def _builtin(name: str, handler: str, description: str, strategy: str = "") -> BuiltinFunction:
    return BuiltinFunction(name, handler, description, strategy=strategy)


# name -> function. Declared here rather than by each module registering itself at import,
# so that listing them never imports a database driver.
BUILTINS: dict[str, BuiltinFunction] = {
    function.name: function
    for function in (
        _builtin(
            "strongroom-postgresql-single-user",
            "postgresql_rotation.single_user",
            "Rotates a PostgreSQL user's password as the user itself (AWS's single-user scheme).",
            "single-user",
        ),
        _builtin(
            "strongroom-postgresql-alternating-users",
            "postgresql_rotation.alternating_users",
            "Rotates between a PostgreSQL user and its _clone with the masterarn's master user.",
            "alternating-users",
        ),
        _builtin(
            "strongroom-mysql-single-user",
            "mysql_rotation.single_user",
            "Rotates a MySQL or MariaDB user's password as the user itself.",
            "single-user",
        ),
        _builtin(
            "strongroom-mysql-alternating-users",
            "mysql_rotation.alternating_users",
            "Rotates between a MySQL or MariaDB user and its _clone with the master user.",
            "alternating-users",
        ),
        _builtin(
            "strongroom-redis-single-user",
            "redis_rotation.single_user",
            "Rotates a Redis ACL user's password (ACL SETUSER; the masterarn's user sets it).",
            "single-user",
        ),
        _builtin(
            "strongroom-redis-alternating-users",
            "redis_rotation.alternating_users",
            "Rotates between a Redis ACL user and its _clone with the masterarn's user.",
            "alternating-users",
        ),
        _builtin(
            "strongroom-random-value",
            "random_rotation.rotate",
            "Replaces a random value (an API key, a token) with a new GetRandomPassword value.",
        ),
    )
}

# What `strongroom rotation enable` picks from: engine flag -> strategy -> function name.
BY_ENGINE: dict[str, dict[str, str]] = {
    "postgresql": {
        "single-user": "strongroom-postgresql-single-user",
        "alternating-users": "strongroom-postgresql-alternating-users",
    },
    "mysql": {
        "single-user": "strongroom-mysql-single-user",
        "alternating-users": "strongroom-mysql-alternating-users",
    },
    "redis": {
        "single-user": "strongroom-redis-single-user",
        "alternating-users": "strongroom-redis-alternating-users",
    },
    "random": {"single-user": "strongroom-random-value"},
}
