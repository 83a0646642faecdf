"""A worker's barrier: every seal and open is done by the keyholder (keys/keyholder.py
describes the barrier connection), so the root key never enters the worker."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
from typing import Any

from strongroom.keys.channel import Connect
from strongroom.keys.envelope import Barrier, DecryptionError
from strongroom.keys.keyholder import LINE_LIMIT, REQUEST_TIMEOUT, KeyholderError


class VerificationRefused(KeyholderError):
    """The keyholder would not load the key to check an operator's request (a share or
    passphrase deployment has none; the key file or HSM could not be read)."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(str(reply.get("message") or "the keyholder refused"))
        self.reply = reply


class KeyholderBarrier(Barrier):
    """A worker's barrier: every seal and open is done by the keyholder, over one
    connection (reopened once if the keyholder dropped it). The root key never enters
    this process. Thread-safe: one request at a time."""

    def __init__(self, connect: Connect) -> None:  # no key: deliberately not Barrier.__init__
        self._connect_to = connect
        self._op = "barrier"
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._file: Any = None

    @classmethod
    def verifying(cls, connect: Connect) -> KeyholderBarrier:
        """A barrier over a *verify* connection (keys/keyholder.py): usable while a file or
        PKCS#11 deployment is sealed, for as long as this one connection lasts (it is not
        reopened); the keyholder drops the key it loaded for it on :meth:`close`. Raises
        :class:`VerificationRefused` when the keyholder will not load it."""
        barrier = cls(connect)
        barrier._op = "verify"
        try:
            barrier._connect()
            assert barrier._file is not None
            answer = barrier._file.readline(LINE_LIMIT)
        except OSError as problem:
            barrier.close()
            raise KeyholderError(f"cannot reach the keyholder: {problem}") from None
        reply = json.loads(answer) if answer else None
        if not isinstance(reply, dict) or not reply.get("ok"):
            barrier.close()
            raise VerificationRefused(reply if isinstance(reply, dict) else {})
        return barrier

    def __repr__(self) -> str:
        return f"KeyholderBarrier({self._connect_to!r}, {self._op})"

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        return self._call("seal", plaintext, associated_data)

    def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        return self._call("open", sealed, associated_data)

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    def _call(self, op: str, data: bytes, aad: bytes) -> bytes:
        line = json.dumps(
            {
                "op": op,
                "data": base64.b64encode(data).decode("ascii"),
                "aad": base64.b64encode(aad).decode("ascii"),
            }
        ).encode()
        with self._lock:
            reply = self._exchange(line + b"\n")
        if reply.get("ok"):
            return base64.b64decode(reply["data"])
        if reply.get("code") == "DecryptionError":
            raise DecryptionError
        raise KeyholderError(f"the keyholder refused to {op}: {reply.get('code')}")

    def _exchange(self, line: bytes) -> dict[str, Any]:
        for attempt in (1, 2):
            try:
                if self._file is None:
                    if self._op == "verify":
                        break  # its key went with the connection: no new one
                    self._connect()
                assert self._sock is not None and self._file is not None
                self._sock.sendall(line)
                answer = self._file.readline(LINE_LIMIT)
                if answer:
                    reply = json.loads(answer)
                    if isinstance(reply, dict):
                        return reply
            except OSError:
                pass
            self._disconnect()  # dropped (a seal, a restart): try a fresh connection once
            if attempt == 2:
                break
        raise KeyholderError("the keyholder did not answer (sealed?)")

    def _connect(self) -> None:
        sock = self._connect_to()
        sock.settimeout(REQUEST_TIMEOUT)
        try:
            sock.sendall(json.dumps({"op": self._op}).encode() + b"\n")
        except OSError:
            sock.close()
            raise
        self._sock, self._file = sock, sock.makefile("rb")

    def _disconnect(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = self._file = None
