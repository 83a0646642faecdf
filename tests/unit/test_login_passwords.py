"""Console password hashes: today's scrypt cost (OWASP's minimum, N=2^17), a floor and a
ceiling on what a stored hash may name, and a re-hash at the next sign-in of a hash made
at the earlier, lower cost."""

from __future__ import annotations

import os

from sqlalchemy import select, update

from strongroom.iam import passwords
from strongroom.iam.credentials import admin_arn
from strongroom.iam.service import IdentityService
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.store import schema
from strongroom.types import Caller

PASSWORD = "Corr3ct-Horse-Battery"
ADMIN = Caller(DEV_ACCOUNT, "us-east-1", admin_arn(DEV_ACCOUNT))


def made_with(password: str, log2_n: int, r: int = 8, p: int = 1) -> str:
    """A hash as an older version (or someone writing to the database) would store it."""
    salt = os.urandom(passwords.SALT_BYTES)
    key = passwords._kdf(salt, log2_n, r, p).derive(password.encode())
    return "$".join(
        ("scrypt", str(log2_n), str(r), str(p), passwords._b64(salt), passwords._b64(key))
    )


def test_new_hashes_use_today_s_cost_and_verify() -> None:
    encoded = passwords.hash_password(PASSWORD)
    assert encoded.startswith("scrypt$17$8$1$")
    assert passwords.verify_password(PASSWORD, encoded)
    assert not passwords.verify_password(PASSWORD + "!", encoded)
    assert not passwords.needs_rehash(encoded)


def test_a_hash_naming_parameters_below_the_floor_or_above_the_ceiling_never_matches() -> None:
    floor_breakers = (
        made_with(PASSWORD, 1),  # N = 2
        made_with(PASSWORD, 14),
        made_with(PASSWORD, 15, r=1),
    )
    for weak in floor_breakers:
        assert not passwords.verify_password(PASSWORD, weak)
        assert passwords.needs_rehash(weak)
    # Too costly to compute (2^30 * 8 * 128 bytes): refused before any work.
    huge = made_with(PASSWORD, 15).replace("scrypt$15$", "scrypt$30$")
    assert not passwords.verify_password(PASSWORD, huge)
    assert not passwords.verify_password(PASSWORD, "md5$whatever")


def test_an_older_hash_still_signs_in_and_is_rehashed_at_today_s_cost(
    deployment: Deployment,
) -> None:
    iam = IdentityService(deployment.store, deployment.barrier, deployment.clock)
    iam.create_user(ADMIN, {"UserName": "carol"})
    iam.create_login_profile(ADMIN, {"UserName": "carol", "Password": PASSWORD})
    profiles = schema.iam_login_profiles
    older = made_with(PASSWORD, 15)
    assert passwords.verify_password(PASSWORD, older) and passwords.needs_rehash(older)
    with deployment.store.write() as conn:
        conn.execute(update(profiles).values(password_hash=older))

    def stored() -> str:
        with deployment.store.read() as conn:
            value: str = conn.execute(select(profiles.c.password_hash)).scalar_one()
        return value

    assert iam.verify_password(DEV_ACCOUNT, "carol", PASSWORD + "x") is False
    assert stored() == older  # a wrong password changes nothing
    assert iam.verify_password(DEV_ACCOUNT, "carol", PASSWORD) is True
    rehashed = stored()
    assert rehashed != older and rehashed.startswith("scrypt$17$8$1$")
    assert iam.verify_password(DEV_ACCOUNT, "carol", PASSWORD) is True
    assert stored() == rehashed  # once is enough
