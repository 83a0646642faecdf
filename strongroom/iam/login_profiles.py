"""Login profiles (console passwords): CreateLoginProfile, GetLoginProfile,
UpdateLoginProfile, DeleteLoginProfile, and checking a password against one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from strongroom.iam import passwords
from strongroom.iam import repository as repo
from strongroom.iam.base import IdentityBase
from strongroom.iam.common import (
    Output,
    Params,
    _already_exists,
    _no_such_entity,
    _validation_error,
)
from strongroom.iam.repository import LoginProfileRecord, UserRecord
from strongroom.iam.shapes import _login_profile_out
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.query_codec import modeled_error
from strongroom.types import Caller


class LoginProfiles(IdentityBase):
    @staticmethod
    def _new_password_hash(params: Params) -> str | None:
        password: str | None = params.get("Password")
        if password is None:
            return None
        passwords.check_policy(password)
        return passwords.hash_password(password)

    def create_login_profile(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        if params.get("Password") is None:
            raise _validation_error("Password is required to create a login profile.")
        # Hashing is slow on purpose: do it before the write lock is taken.
        password_hash = self._new_password_hash(params)
        assert password_hash is not None
        reset = bool(params.get("PasswordResetRequired"))
        max_session: int | None = params.get("MaxSigninSessionDuration")
        with self._write() as conn:
            user = self._user(conn, caller, name)
            if repo.login_profile(conn, user.id) is not None:
                raise _already_exists(f"Login Profile for user {user.name} already exists.")
            profile = LoginProfileRecord(user.id, password_hash, reset, max_session, self._now_ms())
            repo.insert_login_profile(conn, profile)
        return {"LoginProfile": _login_profile_out(user, profile)}

    def _profile(
        self, conn: Connection, caller: Caller, name: str
    ) -> tuple[UserRecord, LoginProfileRecord]:
        user = self._user(conn, caller, name)
        profile = repo.login_profile(conn, user.id)
        if profile is None:
            raise _no_such_entity(f"Login Profile for User {user.name} cannot be found.")
        return user, profile

    def get_login_profile(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        with self._store.read() as conn:
            user, profile = self._profile(conn, caller, name)
        return {"LoginProfile": _login_profile_out(user, profile)}

    def update_login_profile(self, caller: Caller, params: Params) -> Output:
        password_hash = self._new_password_hash(params)
        values: dict[str, Any] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if params.get("PasswordResetRequired") is not None:
            values["password_reset_required"] = bool(params["PasswordResetRequired"])
        if params.get("MaxSigninSessionDuration") is not None:
            values["max_signin_session_duration"] = int(params["MaxSigninSessionDuration"])
        if params.get("ResetMaxSigninSessionDuration"):
            values["max_signin_session_duration"] = None
        with self._write() as conn:
            user, _profile = self._profile(conn, caller, params["UserName"])
            if values:
                repo.update_login_profile(conn, user.id, **values)
        return {}

    def delete_login_profile(self, caller: Caller, params: Params) -> Output:
        name = self._user_name(caller, params)
        with self._write() as conn:
            user, _profile = self._profile(conn, caller, name)
            repo.delete_login_profile(conn, user.id)
        return {}

    def verify_password(self, account_id: str, user_name: str, password: str) -> bool:
        """Whether ``password`` is the console password of ``user_name``."""
        return self.check_sign_in(account_id, user_name, password).ok

    def check_sign_in(self, account_id: str, user_name: str, password: str) -> SignInCheck:
        """Check ``password`` against the console password of ``user_name``; a user without
        one (or no such user) costs the same time and fails. A match is recorded as the
        user's PasswordLastUsed. The user is named in the answer whenever it exists, so a
        failed attempt is audited under the user it was made for."""
        with self._store.read() as conn:
            user = repo.find_user(conn, account_id, user_name)
            profile = repo.login_profile(conn, user.id) if user is not None else None
        if user is None or profile is None:
            passwords.burn_time(password)
            return SignInCheck(False, user)
        if not passwords.verify_password(password, profile.password_hash):
            return SignInCheck(False, user)
        with self._store.write() as conn:
            repo.update_entity(conn, "user", user, password_last_used_ms=self._now_ms())
            if passwords.needs_rehash(profile.password_hash):  # made at an older, lower cost
                rehashed = passwords.hash_password(password)
                repo.update_login_profile(conn, user.id, password_hash=rehashed)
        return SignInCheck(
            True, user, profile.password_reset_required, profile.max_signin_session_duration
        )

    def change_password(self, caller: Caller, params: Params) -> Output:
        """ChangePassword: the calling IAM user changes its own console password, giving
        the current one; this also clears PasswordResetRequired."""
        principal = caller.principal
        if principal is None or principal.kind != "user" or ":user/" not in principal.arn:
            raise _invalid_user_type()
        name = principal.arn.rsplit("/", 1)[-1]
        with self._store.read() as conn:
            user, profile = self._profile(conn, caller, name)
        if not passwords.verify_password(str(params["OldPassword"]), profile.password_hash):
            raise _invalid_user_type("The old password is not correct.")
        new_password = str(params["NewPassword"])
        passwords.check_policy(new_password)
        password_hash = passwords.hash_password(new_password)
        with self._write() as conn:
            repo.update_login_profile(
                conn, user.id, password_hash=password_hash, password_reset_required=False
            )
        return {}


@dataclass(frozen=True)
class SignInCheck:
    ok: bool
    user: UserRecord | None
    reset_required: bool = False
    max_session_seconds: int | None = None


def _invalid_user_type(
    message: str = "Only IAM users can change their own password.",
) -> ServiceError:
    return modeled_error("iam", "InvalidUserType", message)
