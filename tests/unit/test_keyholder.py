"""The keyholder and its workers' links, in process (the real server is in tests/e2e)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.keys import keyholder as keyholder_module
from strongroom.keys import providers
from strongroom.keys.channel import Connect, WorkerChannel, by_path
from strongroom.keys.envelope import Barrier, DecryptionError
from strongroom.keys.keyholder import (
    DataDirLock,
    Keyholder,
    KeyholderError,
    KeyholderLink,
    request,
    runtime_dir,
    socket_path,
)
from strongroom.keys.providers import ShamirChoice
from strongroom.keys.remote_barrier import KeyholderBarrier, VerificationRefused
from strongroom.store.engine import secure_directory


class Worker:
    """What a worker does with pushed states, recorded: unsealed, it seals and opens
    through the keyholder."""

    def __init__(self, connect: Connect, *, fail: bool = False) -> None:
        self.connect = connect
        self.barrier: KeyholderBarrier | None = None
        self.applied: list[str] = []
        self.lost = False
        self.fail = fail
        self.link = KeyholderLink(connect, self.unsealed, self.sealed, self.on_lost)

    async def unsealed(self) -> None:
        await asyncio.sleep(0.05)  # building a deployment takes a moment
        if self.fail:
            raise RuntimeError("cannot open the database")
        self.barrier = KeyholderBarrier(self.connect)
        self.applied.append("unsealed")

    async def sealed(self) -> None:
        if self.barrier is not None:
            self.barrier.close()
        self.barrier = None
        self.applied.append("sealed")

    def opens(self, protection: providers.Protection) -> bool:
        """Whether this worker opens what the root key sealed, and seals what it opens."""
        if self.barrier is None:
            return False
        sealed = Barrier(protection.root_key).seal(b"probe", b"aad")
        mine = self.barrier.seal(b"back", b"aad")
        return (
            self.barrier.open(sealed, b"aad") == b"probe"
            and Barrier(protection.root_key).open(mine, b"aad") == b"back"
        )

    async def on_lost(self) -> None:
        self.lost = True


def family(keyholder: Keyholder) -> Connect:
    """How a worker the keyholder spawned connects: over a channel of its own."""
    # A duplicate, as a spawned worker inherits it: the keyholder closes its own copy.
    return WorkerChannel(keyholder.worker_channel().dup()).connect


@pytest.fixture
def shamir_dir(tmp_path: Path) -> tuple[Path, providers.Protection]:
    data_dir = tmp_path / "d"
    secure_directory(data_dir)
    protection = providers.protect(ShamirChoice(3, 2))
    providers.install(data_dir, protection)
    return data_dir, protection


@pytest.fixture
def keyholder(shamir_dir: tuple[Path, providers.Protection]) -> Iterator[Keyholder]:
    data_dir, _ = shamir_dir
    config = providers.read_seal(data_dir)
    holder = Keyholder(data_dir, config, providers.unsealer_for(data_dir, config), None)
    holder.start()
    yield holder
    holder.stop()


def test_socket_is_private_and_removed_on_stop(
    shamir_dir: tuple[Path, providers.Protection], keyholder: Keyholder
) -> None:
    path = socket_path(shamir_dir[0])
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keyholder.stop()
    assert not path.exists()


def test_unseal_reaches_every_worker_before_it_is_answered(
    shamir_dir: tuple[Path, providers.Protection], keyholder: Keyholder
) -> None:
    data_dir, protection = shamir_dir
    path = by_path(socket_path(data_dir))  # status and unseal input: anyone of the user

    async def scenario() -> None:
        workers = [Worker(family(keyholder)) for _ in range(3)]
        for worker in workers:
            await worker.link.start()
        assert all(w.applied == ["sealed"] and w.barrier is None for w in workers)
        status = await request(path, {"op": "status"})
        assert status == {
            "ok": True,
            "sealed": True,
            "provider": "shamir",
            "progress": 0,
            "threshold": 2,
            "shares": 3,
            "workers": 3,
        }

        reply = await request(path, {"op": "unseal", "share": protection.shares[2]})
        assert (reply["ok"], reply["sealed"], reply["progress"]) == (True, True, 1)
        bad = await request(path, {"op": "unseal", "share": protection.shares[2]})
        assert not bad["ok"] and "already submitted" in bad["message"]
        assert bad["progress"] == 1
        reply = await request(path, {"op": "unseal", "share": protection.shares[0]})
        assert (reply["ok"], reply["sealed"], reply["progress"]) == (True, False, 0)
        # Answered only once every worker had applied it.
        assert all(w.opens(protection) for w in workers)
        again = await request(path, {"op": "unseal", "share": protection.shares[1]})
        assert again["ok"] and not again["sealed"]

        late = Worker(family(keyholder))  # a worker (re)started while unsealed serves at once
        await late.link.start()
        assert late.opens(protection)
        kept = workers[0].barrier
        assert kept is not None

        reply = await request(workers[1].connect, {"op": "seal"})  # a worker's, audited
        assert reply["sealed"]
        assert all(w.barrier is None for w in [*workers, late])
        with pytest.raises(KeyholderError):  # a barrier kept past the seal opens nothing
            kept.open(Barrier(protection.root_key).seal(b"probe", b"aad"), b"aad")
        for worker in [*workers, late]:
            await worker.link.close()

    asyncio.run(scenario())
    assert keyholder.sealed


def test_a_worker_that_fails_to_apply_does_not_block_the_others(
    shamir_dir: tuple[Path, providers.Protection], keyholder: Keyholder
) -> None:
    data_dir, protection = shamir_dir
    path = by_path(socket_path(data_dir))

    async def scenario() -> None:
        good, bad = Worker(family(keyholder)), Worker(family(keyholder), fail=True)
        await good.link.start()
        await bad.link.start()
        await request(path, {"op": "unseal", "share": protection.shares[0]})
        reply = await request(path, {"op": "unseal", "share": protection.shares[1]})
        assert not reply["sealed"]
        assert good.opens(protection) and bad.barrier is None
        await good.link.close()
        await bad.link.close()

    asyncio.run(scenario())


def test_reset_and_unknown_operations(
    shamir_dir: tuple[Path, providers.Protection], keyholder: Keyholder
) -> None:
    data_dir, protection = shamir_dir
    path = by_path(socket_path(data_dir))

    async def scenario() -> None:
        await request(path, {"op": "unseal", "share": protection.shares[0]})
        reply = await request(path, {"op": "unseal", "reset": True})
        assert reply["progress"] == 0
        unknown = await request(path, {"op": "give-me-the-key"})
        assert not unknown["ok"] and "key" not in unknown

    asyncio.run(scenario())


def test_workers_learn_when_the_keyholder_goes_away(
    shamir_dir: tuple[Path, providers.Protection], keyholder: Keyholder
) -> None:
    async def scenario() -> None:
        worker = Worker(family(keyholder))
        await worker.link.start()
        await asyncio.to_thread(keyholder.stop)
        for _ in range(100):
            if worker.lost:
                break
            await asyncio.sleep(0.05)
        assert worker.lost
        await worker.link.close()

    asyncio.run(scenario())


def test_one_keyholder_per_data_directory(
    shamir_dir: tuple[Path, providers.Protection], keyholder: Keyholder
) -> None:
    data_dir, _ = shamir_dir
    config = providers.read_seal(data_dir)
    second = Keyholder(data_dir, config, providers.unsealer_for(data_dir, config), None)
    with pytest.raises(KeyholderError, match="already serving"):
        second.start()
    assert keyholder.path.exists()  # the running one's socket is untouched


def test_a_stale_socket_is_replaced(shamir_dir: tuple[Path, providers.Protection]) -> None:
    data_dir, _ = shamir_dir
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(socket_path(data_dir)))
    stale.close()  # bound, never listening: what a killed server leaves
    config = providers.read_seal(data_dir)
    holder = Keyholder(data_dir, config, providers.unsealer_for(data_dir, config), None)
    holder.start()
    try:
        reply = asyncio.run(request(by_path(socket_path(data_dir)), {"op": "status"}))
        assert reply["sealed"]
    finally:
        holder.stop()


def test_a_data_directory_path_too_long_for_a_socket_still_serves(tmp_path: Path) -> None:
    data_dir = tmp_path / ("x" * 120)
    secure_directory(data_dir)
    providers.install(data_dir, providers.protect(providers.FileChoice()))
    config = providers.read_seal(data_dir)
    holder = Keyholder(data_dir, config, providers.unsealer_for(data_dir, config), None)
    holder.start()
    try:
        path = socket_path(data_dir)
        assert path.parent == runtime_dir()
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert path.stat().st_mode & 0o777 == 0o600
        reply = asyncio.run(request(by_path(path), {"op": "status"}))
        assert reply["provider"] == "file"
    finally:
        holder.stop()
    assert not socket_path(data_dir).exists()


def test_the_data_directory_lock_is_exclusive(tmp_path: Path) -> None:
    first, second = DataDirLock(tmp_path), DataDirLock(tmp_path)
    first.acquire()
    with pytest.raises(KeyholderError, match="in use"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_peer_credentials_are_read_from_the_socket() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert keyholder_module._peer_uid(left) == (os.getpid(), os.getuid())


def test_peers_of_another_user_are_refused(
    shamir_dir: tuple[Path, providers.Protection],
    keyholder: Keyholder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir, protection = shamir_dir
    path = socket_path(data_dir)
    asyncio.run(request(by_path(path), {"op": "unseal", "share": protection.shares[0]}))
    asyncio.run(request(by_path(path), {"op": "unseal", "share": protection.shares[1]}))
    assert not keyholder.sealed
    # As if the peer ran as another user (file permissions let it through).
    monkeypatch.setattr(keyholder_module, "_peer_uid", lambda _sock: (4242, os.getuid() + 1))
    for message in ({"op": "watch"}, {"op": "status"}, {"op": "seal"}):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(str(path))
            try:
                client.sendall(json.dumps(message).encode() + b"\n")
                answer = client.recv(4096)
            except (BrokenPipeError, ConnectionResetError):
                answer = b""  # closed before (or while) we spoke
            assert answer == b""  # closed without a word: no state, no key
    assert not keyholder.sealed  # and the seal request was not obeyed


def test_a_process_the_keyholder_did_not_start_gets_nothing_it_can_use(
    shamir_dir: tuple[Path, providers.Protection], keyholder: Keyholder
) -> None:
    data_dir, protection = shamir_dir
    path = socket_path(data_dir)
    asyncio.run(request(by_path(path), {"op": "unseal", "share": protection.shares[0]}))
    asyncio.run(request(by_path(path), {"op": "unseal", "share": protection.shares[1]}))
    assert not keyholder.sealed
    # The same user (even the keyholder's own process), but on the socket path: not over
    # a channel the keyholder handed to a worker it spawned.
    for message in ({"op": "watch"}, {"op": "barrier"}):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(str(path))
            try:
                client.sendall(json.dumps(message).encode() + b"\n")
                answer = client.recv(4096)
            except (BrokenPipeError, ConnectionResetError):
                answer = b""
            assert answer == b""  # no state, no barrier
    with pytest.raises(KeyholderError):
        KeyholderBarrier(by_path(path)).open(Barrier(protection.root_key).seal(b"v", b"a"), b"a")
    refused = asyncio.run(request(by_path(path), {"op": "seal"}))
    assert (refused["ok"], refused["code"]) == (False, "AccessDeniedException")
    assert not keyholder.sealed  # sealing goes through the audited HTTP endpoint
    status = asyncio.run(request(by_path(path), {"op": "status"}))
    assert status["ok"] and set(status) == {
        "ok",
        "sealed",
        "provider",
        "progress",
        "threshold",
        "shares",
        "workers",
    }


def test_the_barrier_refuses_what_the_root_key_did_not_seal(
    shamir_dir: tuple[Path, providers.Protection], keyholder: Keyholder
) -> None:
    data_dir, protection = shamir_dir
    path = by_path(socket_path(data_dir))
    asyncio.run(request(path, {"op": "unseal", "share": protection.shares[0]}))
    asyncio.run(request(path, {"op": "unseal", "share": protection.shares[1]}))
    barrier = KeyholderBarrier(family(keyholder))
    try:
        sealed = barrier.seal(b"value", b"row-1")
        assert barrier.open(sealed, b"row-1") == b"value"
        with pytest.raises(DecryptionError):
            barrier.open(sealed, b"row-2")  # moved to another row
        with pytest.raises(DecryptionError):
            barrier.open(
                Barrier(providers.protect(ShamirChoice(3, 2)).root_key).seal(b"v", b"a"), b"a"
            )
    finally:
        barrier.close()


def test_the_keyholder_is_not_dumpable(keyholder: Keyholder) -> None:
    import ctypes
    import ctypes.util
    import resource

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    assert libc.prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE
    assert resource.getrlimit(resource.RLIMIT_CORE) == (0, 0)


def test_a_data_directory_too_deep_for_a_socket_address_still_serves(tmp_path: Path) -> None:
    """A long data-directory path moves the socket to the user's private runtime
    directory instead of refusing to start."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(os.fsencode(deep / "keyholder.sock")) > 107
    path = socket_path(deep)
    assert path.parent == runtime_dir()
    assert len(os.fsencode(path)) <= 107
    assert socket_path(deep) == path  # the workers find the same socket
    assert socket_path(tmp_path) == tmp_path / "keyholder.sock"


def test_a_sealed_file_deployment_is_checked_over_a_verify_connection_without_its_key(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "d"
    secure_directory(data_dir)
    protection = providers.protect(providers.FileChoice())
    providers.install(data_dir, protection)
    config = providers.read_seal(data_dir)
    holder = Keyholder(data_dir, config, providers.unsealer_for(data_dir, config), None)
    holder.start()
    try:
        path, worker = socket_path(data_dir), family(holder)
        # What a worker sees on the verify connection: a yes, never the key.
        with worker() as raw:
            raw.settimeout(5)
            raw.sendall(b'{"op": "verify"}\n')
            handshake = raw.makefile("rb").readline()
        assert json.loads(handshake)["ok"] and "key" not in json.loads(handshake)
        assert protection.root_key.hex().encode() not in handshake
        assert base64.b64encode(protection.root_key) not in handshake

        barrier = KeyholderBarrier.verifying(worker)
        try:
            root = Barrier(protection.root_key)
            assert barrier.open(root.seal(b"probe", b"aad"), b"aad") == b"probe"
            assert root.open(barrier.seal(b"back", b"aad"), b"aad") == b"back"
        finally:
            barrier.close()
        assert holder.sealed  # checking is not unsealing
        with pytest.raises(KeyholderError):  # its key went with the connection
            barrier.open(Barrier(protection.root_key).seal(b"v", b"a"), b"a")

        # Another process of the user gets nothing from it, nor a key-fetching unseal.
        with pytest.raises(KeyholderError):
            KeyholderBarrier.verifying(by_path(path))
        refused = asyncio.run(request(by_path(path), {"op": "unseal"}))
        assert (refused["ok"], refused["code"]) == (False, "AccessDeniedException")
        assert holder.sealed
        assert asyncio.run(request(worker, {"op": "unseal"}))["sealed"] is False
    finally:
        holder.stop()


def test_a_share_deployment_has_no_key_to_verify_with(
    shamir_dir: tuple[Path, providers.Protection], keyholder: Keyholder
) -> None:
    with pytest.raises(VerificationRefused) as refused:
        KeyholderBarrier.verifying(family(keyholder))
    assert refused.value.reply["code"] == "InvalidRequestException"
    assert "key" not in refused.value.reply and keyholder.sealed


def test_a_channel_closes_when_its_worker_is_gone(keyholder: Keyholder) -> None:
    """A worker's exit (its end of the channel closed) is seen: the keyholder keeps no
    copy of the end it handed over once the worker used it."""
    channel = WorkerChannel(keyholder.worker_channel().dup())
    with channel.connect() as conn:
        conn.settimeout(5)
        conn.sendall(b'{"op": "status"}\n')
        assert json.loads(conn.makefile("rb").readline())["ok"]
    channel.close()
    for _ in range(100):
        if not keyholder._channels:
            break
        time.sleep(0.05)
    assert not keyholder._channels
