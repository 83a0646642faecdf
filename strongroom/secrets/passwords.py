"""GetRandomPassword.

Character types are uppercase, lowercase, digits and the 32 ASCII punctuation characters
the API reference lists for ``ExcludePunctuation`` (exactly ``string.punctuation``); a
space is admitted only with ``IncludeSpace`` and is never a required type. With
``RequireEachIncludedType`` (AWS's default) every type not switched off appears at least
once.

Refusals, all InvalidParameterException, with the texts AWS answers (quoted from real
deployments: CDK/CloudFormation users hit them through GenerateSecretString, which calls
this operation; the "too short" text is also moto's):

- a required type left empty by ``ExcludeCharacters``: "All characters of the desired type
  have been excluded." (with ``RequireEachIncludedType`` off the type is simply skipped);
- nothing left to choose from: "All characters have been excluded from selection.";
- fewer positions than required types: "Password length is too short based on the
  required types."
"""

from __future__ import annotations

import random
import secrets
import string

from strongroom.protocol.errors import ServiceError, validation_error

MIN_LENGTH = 1
MAX_LENGTH = 4096

_SYSTEM_RANDOM = secrets.SystemRandom()


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def generate_password(
    length: int = 32,
    exclude_characters: str = "",
    exclude_numbers: bool = False,
    exclude_punctuation: bool = False,
    exclude_uppercase: bool = False,
    exclude_lowercase: bool = False,
    include_space: bool = False,
    require_each_included_type: bool = True,
    rng: random.Random | None = None,
) -> str:
    """A random password; ``rng`` defaults to the OS CSPRNG and is injectable for tests."""
    # The model layer bounds PasswordLength already; this guard keeps a direct caller from
    # allocating an arbitrary amount, with the message the model check would give.
    if length < MIN_LENGTH:
        raise validation_error(
            f"1 validation error detected: Value '{length}' at 'passwordLength' failed to "
            f"satisfy constraint: Member must have value greater than or equal to {MIN_LENGTH}"
        )
    if length > MAX_LENGTH:
        raise validation_error(
            f"1 validation error detected: Value '{length}' at 'passwordLength' failed to "
            f"satisfy constraint: Member must have value less than or equal to {MAX_LENGTH}"
        )
    rng = rng or _SYSTEM_RANDOM
    excluded = set(exclude_characters)

    def kept(chars: str) -> str:
        return "".join(c for c in chars if c not in excluded)

    switched_off = {
        string.ascii_uppercase: exclude_uppercase,
        string.ascii_lowercase: exclude_lowercase,
        string.digits: exclude_numbers,
        string.punctuation: exclude_punctuation,
    }
    types = [kept(chars) for chars, off in switched_off.items() if not off]
    required = types if require_each_included_type else []
    if any(not chars for chars in required):
        raise _invalid("All characters of the desired type have been excluded.")
    pool = "".join(types) + kept(" " if include_space else "")
    if not pool:
        raise _invalid("All characters have been excluded from selection.")
    if len(required) > length:
        raise _invalid("Password length is too short based on the required types.")

    # One character of each required type, the rest from the whole pool, then shuffled so
    # the required ones land anywhere (a fixed place would make those positions guessable).
    chars = [rng.choice(chars) for chars in required]
    chars += [rng.choice(pool) for _ in range(length - len(required))]
    rng.shuffle(chars)
    return "".join(chars)
