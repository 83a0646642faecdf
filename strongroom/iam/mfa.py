"""IAM virtual MFA devices: TOTP seeds (RFC 6238), enrolment, and code verification for STS.

The operations follow the IAM API reference (CreateVirtualMFADevice, EnableMFADevice,
DeactivateMFADevice, DeleteVirtualMFADevice, ListMFADevices, ListVirtualMFADevices,
ResyncMFADevice) and "Configuring MFA-protected API access" (IAM User Guide):

- CreateVirtualMFADevice makes an unassigned device with a fresh random seed and answers,
  once, with the seed in Base32 and as a QR code of its ``otpauth://`` URI. The seed is
  sealed by the barrier (bound to the device's serial number), like every secret at rest,
  and never returned again.
- EnableMFADevice assigns the device to a user on two consecutive codes from it.
- STS (GetSessionToken, AssumeRole) verifies a code against the caller's own device. A
  code is accepted once: each device remembers the last time step it accepted, and only a
  later step is accepted after it (AWS refuses a code used before).

Codes are compared in constant time, every candidate time step computed whatever the
outcome. Decisions about behaviour AWS does not spell out are marked "Decision:" below.
"""

from __future__ import annotations

import hmac
import io
import secrets
import urllib.parse
from base64 import b32encode
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import segno
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from strongroom.clock import Clock, from_ms, now_ms
from strongroom.iam import repository as repo
from strongroom.iam.base import IdentityBase
from strongroom.iam.common import (
    _already_exists,
    _check_tag_quota,
    _delete_conflict,
    _limit_exceeded,
    _no_such_entity,
    _page,
    _tags_in,
    _tags_out,
)
from strongroom.iam.repository import UserRecord
from strongroom.iam.shapes import _user_out
from strongroom.keys.envelope import Barrier
from strongroom.keys.rekey import SealedColumn
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec
from strongroom.protocol.service import Handler, snake_case
from strongroom.store import schema
from strongroom.store.engine import Store
from strongroom.types import Caller

Params = Mapping[str, Any]
Output = dict[str, Any]

OPERATIONS = (
    "CreateVirtualMFADevice",
    "EnableMFADevice",
    "DeactivateMFADevice",
    "DeleteVirtualMFADevice",
    "ListMFADevices",
    "ListVirtualMFADevices",
    "ResyncMFADevice",
)

SEED_BYTES = 40  # 64 Base32 characters, the length of AWS's seeds
CODE_DIGITS = 6
TIME_STEP = 30  # seconds (RFC 6238's default, what authenticator apps use)
MAX_DEVICES_PER_USER = 8  # IAM quota "MFA devices in use per user"
# How far from the server's time step a code may be. Decision: a sign-in accepts the step
# before and after (clock skew, a code typed as it turns); enabling looks back three steps
# for the first of two consecutive codes (read one, wait for the next, send both);
# resynchronizing looks ten minutes either way and learns the device's drift.
SIGN_IN_WINDOW = 1
ENABLE_LOOKBACK = 3
RESYNC_WINDOW = 20
ISSUER = "Strongroom"

Verification = Literal["valid", "invalid", "unknown"]
"""A code's check for STS: accepted; wrong or used before; no such device for the user."""


def _invalid_code() -> ServiceError:
    return ServiceError(
        "InvalidAuthenticationCode", "Authentication code for device is not valid.", status=403
    )


def _device_not_found(serial: str) -> ServiceError:
    return _no_such_entity(f"VirtualMFADevice with serial number {serial} does not exist.")


@dataclass(frozen=True)
class _Device:
    serial_number: str
    account_id: str
    name: str
    path: str
    seed_ciphertext: bytes = field(repr=False)
    user_id: str | None
    enabled_ms: int | None
    last_step: int | None
    drift: int
    tags: list[list[str]] | None
    created_ms: int


def _aad(serial: str) -> bytes:
    return b"mfa-seed|" + serial.encode()


ROOT_SEALED = (
    SealedColumn(schema.iam_mfa_devices, "seed_ciphertext", lambda row: _aad(row.serial_number)),
)
"""What this module seals with the root barrier (gathered by strongroom.server.keyring for a
rekey to re-wrap): every device's TOTP seed, bound to its serial number."""


def serial_number(account_id: str, path: str, name: str) -> str:
    """A virtual device's serial number: its ARN, ``arn:aws:iam::ACCOUNT:mfa/PATH/NAME``."""
    return f"arn:aws:iam::{account_id}:mfa{path}{name}"


def qr_code_png(uri: str) -> bytes:
    """The PNG of a QR code holding ``uri``."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="png", scale=4)
    return out.getvalue()


def otpauth_uri(seed_base32: str, label: str) -> str:
    """The key URI authenticator apps read (the Google Authenticator "Key Uri Format")."""
    query = urllib.parse.urlencode({"secret": seed_base32, "issuer": ISSUER})
    return f"otpauth://totp/{urllib.parse.quote(f'{ISSUER}:{label}')}?{query}"


def _matching_step(seed: bytes, code: str, steps: range) -> int | None:
    """The latest step of ``steps`` whose code is ``code``. Every step's code is computed
    and compared in constant time, so the time taken tells nothing of which matched."""
    # RFC 6238 over SHA-1, what every authenticator app computes (not a collision use).
    totp = TOTP(seed, CODE_DIGITS, SHA1(), TIME_STEP)  # noqa: S303
    wanted = code.encode()
    found = None
    for step in steps:
        if hmac.compare_digest(totp.generate(step * TIME_STEP), wanted):
            found = step
    return found


class MfaDevices:
    """The virtual MFA devices of every account, and the IAM operations on them."""

    def __init__(self, store: Store, barrier: Barrier, clock: Clock, tokens: TokenCodec) -> None:
        self._store = store
        self._barrier = barrier
        self._clock = clock
        self._tokens = tokens  # signs Marker values, like IAM's other lists

    # Plumbing ---------------------------------------------------------------------------

    def _step(self) -> int:
        return int(self._clock.now().timestamp()) // TIME_STEP

    @staticmethod
    def _device(conn: Connection, account_id: str, serial: str) -> _Device | None:
        row = (
            conn.execute(
                select(schema.iam_mfa_devices).where(
                    schema.iam_mfa_devices.c.serial_number == serial,
                    schema.iam_mfa_devices.c.account_id == account_id,
                )
            )
            .mappings()
            .first()
        )
        return _Device(**row) if row is not None else None

    @staticmethod
    def _devices(conn: Connection, account_id: str, user_id: str | None = None) -> list[_Device]:
        table = schema.iam_mfa_devices
        query = select(table).where(table.c.account_id == account_id)
        if user_id is not None:
            query = query.where(table.c.user_id == user_id)
        rows = conn.execute(query.order_by(table.c.serial_number)).mappings()
        return [_Device(**row) for row in rows]

    def _seed(self, device: _Device) -> bytes:
        return self._barrier.open(device.seed_ciphertext, _aad(device.serial_number))

    def _user(self, conn: Connection, caller: Caller, params: Params) -> UserRecord:
        name = IdentityBase._user_name(caller, params)  # the caller's own when omitted
        user = repo.find_user(conn, caller.account_id, name)
        if user is None:
            raise _no_such_entity(f"The user with name {name} cannot be found.")
        return user

    @staticmethod
    def _set(conn: Connection, serial: str, **values: Any) -> None:
        conn.execute(
            update(schema.iam_mfa_devices)
            .where(schema.iam_mfa_devices.c.serial_number == serial)
            .values(**values)
        )

    # Operations -------------------------------------------------------------------------

    def create_virtual_mfa_device(self, caller: Caller, params: Params) -> Output:
        name: str = params["VirtualMFADeviceName"]
        path: str = params.get("Path") or "/"
        tags = _check_tag_quota(_tags_in(params.get("Tags")), "MFADevice")
        serial = serial_number(caller.account_id, path, name)
        raw = secrets.token_bytes(SEED_BYTES)
        seed = b32encode(raw)  # what the user types or scans; the TOTP key is ``raw``
        exists = _already_exists("MFADevice entity at the same path and name already exists.")
        with self._store.write() as conn:
            if self._device(conn, caller.account_id, serial) is not None:
                raise exists
            try:
                conn.execute(
                    insert(schema.iam_mfa_devices).values(
                        serial_number=serial,
                        account_id=caller.account_id,
                        name=name,
                        path=path,
                        seed_ciphertext=self._barrier.seal(raw, _aad(serial)),
                        drift=0,
                        tags=tags or None,
                        created_ms=now_ms(self._clock),
                    )
                )
            except IntegrityError:  # a concurrent create of the same serial number
                raise exists from None
        label = f"{name}@{caller.account_id}"
        device: Output = {
            "SerialNumber": serial,
            "Base32StringSeed": seed,
            "QRCodePNG": qr_code_png(otpauth_uri(seed.decode(), label)),
        }
        if tags:
            device["Tags"] = _tags_out(tags)
        return {"VirtualMFADevice": device}

    def enable_mfa_device(self, caller: Caller, params: Params) -> Output:
        serial: str = params["SerialNumber"]
        with self._store.write() as conn:
            user = self._user(conn, caller, params)
            device = self._device(conn, caller.account_id, serial)
            if device is None:
                raise _device_not_found(serial)
            if device.user_id is not None:
                raise _already_exists("MFA Device is already in use.")
            if len(self._devices(conn, caller.account_id, user.id)) >= MAX_DEVICES_PER_USER:
                raise _limit_exceeded(
                    f"Cannot exceed quota for MFADevicesPerUser: {MAX_DEVICES_PER_USER}"
                )
            now = self._step()
            second = self._consecutive(device, params, range(now - ENABLE_LOOKBACK, now + 1))
            self._set(
                conn,
                serial,
                user_id=user.id,
                enabled_ms=now_ms(self._clock),
                last_step=second,
                drift=0,
            )
        return {}

    def resync_mfa_device(self, caller: Caller, params: Params) -> Output:
        serial: str = params["SerialNumber"]
        with self._store.write() as conn:
            user = self._user(conn, caller, params)
            device = self._device(conn, caller.account_id, serial)
            if device is None or device.user_id != user.id:
                raise _device_not_found(serial)
            now = self._step()
            # A device whose clock fell behind shows steps before the last one accepted:
            # resynchronizing re-bases it, so only codes after these two count from now.
            second = self._consecutive(
                device, params, range(now - RESYNC_WINDOW, now + RESYNC_WINDOW), rebase=True
            )
            self._set(conn, serial, last_step=second, drift=second - now)
        return {}

    def _consecutive(
        self, device: _Device, params: Params, firsts: range, *, rebase: bool = False
    ) -> int:
        """The step of AuthenticationCode2, given that AuthenticationCode1 is the code of
        the step before it and that step is one of ``firsts``; unless ``rebase``, neither
        may be a step the device has accepted a code of (or an earlier one)."""
        seed = self._seed(device)
        first = _matching_step(seed, params["AuthenticationCode1"], firsts)
        after = range(firsts.start + 1, firsts.stop + 1)
        second = _matching_step(seed, params["AuthenticationCode2"], after)
        if first is None or second != first + 1:
            raise _invalid_code()
        if not rebase and device.last_step is not None and first <= device.last_step:
            raise _invalid_code()  # a code accepted before
        return second

    def deactivate_mfa_device(self, caller: Caller, params: Params) -> Output:
        serial: str = params["SerialNumber"]
        with self._store.write() as conn:
            user = self._user(conn, caller, params)
            device = self._device(conn, caller.account_id, serial)
            if device is None or device.user_id != user.id:
                raise _device_not_found(serial)
            # Decision: the device keeps its last accepted step, so a code it accepted
            # before stays spent if it is enabled again.
            self._set(conn, serial, user_id=None, enabled_ms=None, drift=0)
        return {}

    def delete_virtual_mfa_device(self, caller: Caller, params: Params) -> Output:
        serial: str = params["SerialNumber"]
        with self._store.write() as conn:
            device = self._device(conn, caller.account_id, serial)
            if device is None:
                raise _device_not_found(serial)
            if device.user_id is not None:
                raise _delete_conflict("MFA Device is still in use")
            conn.execute(
                delete(schema.iam_mfa_devices).where(
                    schema.iam_mfa_devices.c.serial_number == serial
                )
            )
        return {}

    def list_mfa_devices(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            user = self._user(conn, caller, params)
            devices = self._devices(conn, caller.account_id, user.id)
        page, extra = _page(
            self._tokens, "ListMFADevices", params, devices, lambda d: (d.serial_number,)
        )
        return {
            "MFADevices": [
                {
                    "UserName": user.name,
                    "SerialNumber": device.serial_number,
                    "EnableDate": from_ms(device.enabled_ms or device.created_ms),
                }
                for device in page
            ],
            **extra,
        }

    def list_virtual_mfa_devices(self, caller: Caller, params: Params) -> Output:
        status = params.get("AssignmentStatus") or "Any"
        with self._store.read() as conn:
            devices = [
                device
                for device in self._devices(conn, caller.account_id)
                if status == "Any" or (device.user_id is not None) == (status == "Assigned")
            ]
            page, extra = _page(
                self._tokens, "ListVirtualMFADevices", params, devices, lambda d: (d.serial_number,)
            )
            users = {
                user.id: user
                for user in repo.by_ids(conn, "user", {d.user_id for d in page if d.user_id})
            }
        out = []
        for device in page:
            item: Output = {"SerialNumber": device.serial_number}
            user = users.get(device.user_id or "")
            if user is not None and device.enabled_ms is not None:
                item["User"] = _user_out(user, full=False)
                item["EnableDate"] = from_ms(device.enabled_ms)
            if device.tags:
                item["Tags"] = _tags_out(device.tags)
            out.append(item)
        return {"VirtualMFADevices": out, **extra}

    # For STS ----------------------------------------------------------------------------

    def verify(self, account_id: str, user_arn: str, serial: str, code: str) -> Verification:
        """Check ``code`` from device ``serial``, which must be enabled for the IAM user
        ``user_arn``; a valid code is spent (never accepted again)."""
        with self._store.write() as conn:
            user_id = conn.execute(
                select(schema.iam_users.c.id).where(
                    schema.iam_users.c.arn == user_arn,
                    schema.iam_users.c.account_id == account_id,
                )
            ).scalar_one_or_none()
            device = self._device(conn, account_id, serial)
            if user_id is None or device is None or device.user_id != user_id:
                return "unknown"
            expected = self._step() + device.drift
            after = device.last_step if device.last_step is not None else expected - 100
            first = max(expected - SIGN_IN_WINDOW, after + 1)
            step = _matching_step(
                self._seed(device), code, range(first, expected + SIGN_IN_WINDOW + 1)
            )
            if step is None:
                return "invalid"
            self._set(conn, serial, last_step=step)
        return "valid"


def mfa_operations(devices: MfaDevices) -> dict[str, Handler]:
    """Operation name -> handler, for the IAM facade ("MFA" is one word to the methods)."""
    return {name: getattr(devices, snake_case(name.replace("MFA", "Mfa"))) for name in OPERATIONS}
