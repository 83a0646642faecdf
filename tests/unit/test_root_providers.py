"""Root-key providers (file, passphrase, shamir, pkcs11), seal.json, and rekey."""

from __future__ import annotations

import base64
import json
import os
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from strongroom.iam.mfa import MfaDevices
from strongroom.keys import providers, rekey, shamir
from strongroom.keys.envelope import Barrier, DecryptionError
from strongroom.keys.providers import (
    BadUnsealInput,
    FileChoice,
    PassphraseChoice,
    Pkcs11Choice,
    SealError,
    ShamirChoice,
    WrongCredential,
)
from strongroom.keys.root import ROOT_KEY_FILE, write_private_file
from strongroom.server.deployment import initialize, is_initialized, open_deployment, token_codec
from strongroom.server.keyring import ROOT_SEALED
from strongroom.store.engine import Store, secure_directory, sqlite_url
from strongroom.types import Caller
from tests.softhsm import SoftHsmToken, make_token

FAST_SCRYPT = 2**14  # the minimum the provider accepts; production uses 2^17
PASSPHRASE = "correct horse battery staple"
CALLER = Caller("000000000000", "us-east-1", "arn:aws:iam::000000000000:user/admin")


def fast_passphrase(passphrase: str = PASSPHRASE) -> PassphraseChoice:
    return PassphraseChoice(passphrase, n=FAST_SCRYPT)


def renderings(key: bytes) -> list[bytes]:
    """Ways a key could leak into a file."""
    return [
        key,
        key.hex().encode(),
        key.hex().upper().encode(),
        base64.b64encode(key),
        base64.urlsafe_b64encode(key).rstrip(b"="),
    ]


def assert_private(data_dir: Path) -> None:
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for path in data_dir.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"


def assert_no_key_in(data_dir: Path, key: bytes, *, except_key_file: bool = False) -> None:
    for path in data_dir.rglob("*"):
        if path.is_dir() or (except_key_file and path.name == ROOT_KEY_FILE):
            continue
        content = path.read_bytes()
        for form in renderings(key):
            assert form not in content, f"root key found in {path.name}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    secure_directory(directory)
    return directory


@pytest.fixture(scope="session")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    # python-pkcs11 loads the module once per process, and SoftHSM reads SOFTHSM2_CONF
    # when it is loaded: one token for this process's tests, a key label per test.
    token = make_token(tmp_path_factory.mktemp("softhsm"))
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    yield token
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def pkcs11_choice(token: SoftHsmToken, key_label: str) -> Pkcs11Choice:
    return Pkcs11Choice(token.module, token.label, key_label, token.pin)


# --- file ---------------------------------------------------------------------------------------


def test_file_provider_writes_a_private_key_file_and_a_seal_without_the_key(
    data_dir: Path,
) -> None:
    protection = providers.protect(FileChoice())
    providers.install(data_dir, protection)
    assert (data_dir / ROOT_KEY_FILE).read_bytes() == protection.root_key
    config = providers.read_seal(data_dir)
    assert (config.provider, config.key_id) == ("file", protection.seal.key_id)
    assert providers.unseal_file(data_dir, config) == protection.root_key
    assert_no_key_in(data_dir, protection.root_key, except_key_file=True)
    assert_private(data_dir)


def test_a_swapped_key_file_is_recognised(data_dir: Path) -> None:
    providers.install(data_dir, providers.protect(FileChoice()))
    (data_dir / ROOT_KEY_FILE).write_bytes(os.urandom(32))
    with pytest.raises(WrongCredential, match="does not hold this deployment's root key"):
        providers.unseal_file(data_dir, providers.read_seal(data_dir))
    (data_dir / ROOT_KEY_FILE).write_bytes(b"short")
    with pytest.raises(SealError, match="not a 256-bit key file"):
        providers.unseal_file(data_dir, providers.read_seal(data_dir))


def test_a_data_directory_from_before_seal_json_reads_as_the_file_provider(
    data_dir: Path,
) -> None:
    key = os.urandom(32)
    write_private_file(data_dir / ROOT_KEY_FILE, key)
    assert providers.has_root_key(data_dir)
    assert providers.unseal_unattended(data_dir) == key


def test_install_never_overwrites_a_root_key(data_dir: Path) -> None:
    first = providers.protect(FileChoice())
    providers.install(data_dir, first)
    with pytest.raises(FileExistsError):
        providers.install(data_dir, providers.protect(fast_passphrase()))
    assert (data_dir / ROOT_KEY_FILE).read_bytes() == first.root_key


# --- passphrase ---------------------------------------------------------------------------------


def test_passphrase_round_trip_and_nothing_in_the_clear(data_dir: Path) -> None:
    protection = providers.protect(fast_passphrase())
    providers.install(data_dir, protection)
    assert not (data_dir / ROOT_KEY_FILE).exists()
    config = providers.read_seal(data_dir)
    document = json.loads((data_dir / providers.SEAL_FILE).read_text())
    assert document["provider"] == "passphrase"
    assert document["kdf"]["name"] == "scrypt" and document["kdf"]["n"] == FAST_SCRYPT
    assert providers.unseal_passphrase(config, PASSPHRASE) == protection.root_key
    assert_no_key_in(data_dir, protection.root_key)
    assert PASSPHRASE.encode() not in (data_dir / providers.SEAL_FILE).read_bytes()
    assert_private(data_dir)


def test_a_wrong_passphrase_is_detected(data_dir: Path) -> None:
    providers.install(data_dir, providers.protect(fast_passphrase()))
    config = providers.read_seal(data_dir)
    for wrong in ("correct horse battery stapler", "", PASSPHRASE.upper()):
        with pytest.raises(WrongCredential, match="wrong passphrase") as raised:
            providers.unseal_passphrase(config, wrong)
        assert PASSPHRASE not in repr(raised.value)


def test_the_passphrase_is_unicode_normalised() -> None:
    composed = unicodedata.normalize("NFC", "pässwörd-élan")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    protection = providers.protect(fast_passphrase(composed))
    assert providers.unseal_passphrase(protection.seal, decomposed) == protection.root_key


def test_a_tampered_passphrase_seal_does_not_open(data_dir: Path) -> None:
    protection = providers.protect(fast_passphrase())
    params = dict(protection.seal.params)
    wrapped = bytearray(base64.b64decode(params["wrapped_key"]))
    wrapped[3] ^= 1
    params["wrapped_key"] = base64.b64encode(bytes(wrapped)).decode()
    tampered = providers.SealConfig(
        "passphrase", protection.seal.key_id, protection.seal.key_check, params
    )
    with pytest.raises(WrongCredential):
        providers.unseal_passphrase(tampered, PASSPHRASE)


def test_passphrase_and_scrypt_limits() -> None:
    with pytest.raises(SealError, match="at least 8"):
        providers.protect(PassphraseChoice("short"))
    for n, r, p in [(2**10, 8, 1), (3 * 2**14, 8, 1), (2**23, 8, 1), (2**14, 0, 1), (2**14, 8, 99)]:
        with pytest.raises(SealError, match="scrypt"):
            providers.protect(PassphraseChoice(PASSPHRASE, n=n, r=r, p=p))


def test_the_default_work_factor_is_strong() -> None:
    choice = PassphraseChoice(PASSPHRASE)
    assert (choice.n, choice.r, choice.p) == (2**17, 8, 1)


# --- shamir -------------------------------------------------------------------------------------


def test_shamir_any_threshold_of_the_shares_unseal(data_dir: Path) -> None:
    protection = providers.protect(ShamirChoice(5, 3))
    providers.install(data_dir, protection)
    config = providers.read_seal(data_dir)
    assert (config.shares, config.threshold) == (5, 3)
    assert len(protection.shares) == 5
    shares = protection.shares
    for chosen in ([0, 1, 2], [4, 2, 0], [1, 3, 4]):
        assert providers.unseal_shares(config, [shares[i] for i in chosen]) == protection.root_key
    with pytest.raises(WrongCredential, match="2 of the 3"):
        providers.unseal_shares(config, shares[:2])
    for share in shares:
        assert share.encode() not in (data_dir / providers.SEAL_FILE).read_bytes()
    assert_no_key_in(data_dir, protection.root_key)
    assert_private(data_dir)


def test_shamir_unsealer_counts_only_good_distinct_shares() -> None:
    protection = providers.protect(ShamirChoice(5, 3))
    unsealer = providers.ShamirUnsealer(protection.seal)
    shares = protection.shares
    assert unsealer.submit({"share": shares[0]}) is None
    assert unsealer.progress == 1
    refused = [
        ({"share": shares[0]}, "already submitted"),
        ({"share": shares[1][:-1] + ("0" if shares[1][-1] != "0" else "1")}, "checksum"),
        ({"share": "not a share"}, "not a Strongroom unseal share"),
        ({"share": providers.protect(ShamirChoice(5, 3)).shares[1]}, "another share set"),
        ({}, "sealed with Shamir shares"),
        ({"passphrase": PASSPHRASE}, "sealed with Shamir shares"),
    ]
    for request, message in refused:
        with pytest.raises(BadUnsealInput, match=message) as raised:
            unsealer.submit(request)
        for share in shares:
            assert share not in str(raised.value)
        assert unsealer.progress == 1
    assert unsealer.submit({"share": shares[3]}) is None
    assert unsealer.submit({"share": shares[4]}) == protection.root_key
    assert unsealer.progress == 0  # forgotten once used
    assert shares[0] not in repr(unsealer)


def test_shamir_a_forged_share_is_refused_on_submission_and_named() -> None:
    protection = providers.protect(ShamirChoice(3, 2))
    set_id = protection.seal.params["share_set"]
    # Shares that decode fine (recomputed checksums) and carry the right set id, but split
    # another key.
    forged = [shamir.encode_share(s, set_id) for s in shamir.split(os.urandom(32), 3, 2)]
    unsealer = providers.ShamirUnsealer(protection.seal)
    assert unsealer.submit({"share": protection.shares[0]}) is None
    with pytest.raises(BadUnsealInput, match="share 2 is not the share 2 of this share set"):
        unsealer.submit({"share": forged[1]})
    assert unsealer.progress == 1  # the genuine share still counts
    assert unsealer.submit({"share": protection.shares[2]}) == protection.root_key
    stored = json.loads(protection.seal.to_json())
    assert set(stored["commitments"]) == {"1", "2", "3"}
    for share in protection.shares:
        assert share.split("-")[3] not in json.dumps(stored)  # no share value in seal.json


def test_shamir_a_wrong_reconstruction_is_detected_and_resets_progress() -> None:
    protection = providers.protect(ShamirChoice(3, 2))
    set_id = protection.seal.params["share_set"]
    # Shares that decode fine and carry the right set id, but split another key, under a
    # seal file from before share commitments existed: caught only at K.
    forged = [shamir.encode_share(s, set_id) for s in shamir.split(os.urandom(32), 3, 2)]
    params = {k: v for k, v in protection.seal.params.items() if k != "commitments"}
    older = providers.SealConfig(
        "shamir", protection.seal.key_id, protection.seal.key_check, params
    )
    unsealer = providers.ShamirUnsealer(older)
    assert unsealer.submit({"share": forged[0]}) is None
    with pytest.raises(BadUnsealInput, match="did not rebuild"):
        unsealer.submit({"share": protection.shares[1]})
    assert unsealer.progress == 0
    assert unsealer.submit({"share": protection.shares[0]}) is None
    assert unsealer.submit({"share": protection.shares[2]}) == protection.root_key


def test_shamir_reset() -> None:
    protection = providers.protect(ShamirChoice(3, 2))
    unsealer = providers.ShamirUnsealer(protection.seal)
    unsealer.submit({"share": protection.shares[0]})
    unsealer.reset()
    assert unsealer.progress == 0


def test_shamir_choices_are_checked() -> None:
    for shares, threshold in [(3, 4), (0, 1), (256, 3), (3, 1)]:
        with pytest.raises(SealError):
            providers.protect(ShamirChoice(shares, threshold))
    assert len(providers.protect(ShamirChoice(1, 1)).shares) == 1


def test_unattended_unseal_knows_who_can_start_alone(data_dir: Path) -> None:
    protection = providers.protect(fast_passphrase())
    providers.install(data_dir, protection)
    with pytest.raises(SealError, match="STRONGROOM_PASSPHRASE"):
        providers.unseal_unattended(data_dir, environ={})
    key = providers.unseal_unattended(data_dir, environ={"STRONGROOM_PASSPHRASE": PASSPHRASE})
    assert key == protection.root_key
    other = data_dir.parent / "shamir"
    secure_directory(other)
    providers.install(other, providers.protect(ShamirChoice(3, 2)))
    with pytest.raises(SealError, match="unseal shares"):
        providers.unseal_unattended(other, environ={})


# --- seal.json ----------------------------------------------------------------------------------


def test_a_broken_seal_file_is_reported_clearly(data_dir: Path) -> None:
    with pytest.raises(SealError, match="not a Strongroom data directory"):
        providers.read_seal(data_dir)
    path = data_dir / providers.SEAL_FILE
    for content, message in [
        (b"{", "not valid JSON"),
        (b'{"format": 9}', "this version can read"),
        (b'{"format": 1, "provider": "rot13", "key_id": "x", "key_check": "x"}', "unknown"),
        (b'{"format": 1, "provider": "shamir", "key_id": "x", "key_check": "x"}', "lacks"),
    ]:
        path.write_bytes(content)
        with pytest.raises(SealError, match=message):
            providers.read_seal(data_dir)


def test_reprs_hold_no_secrets() -> None:
    for protection in (
        providers.protect(FileChoice()),
        providers.protect(fast_passphrase()),
        providers.protect(ShamirChoice(3, 2)),
    ):
        text = repr(protection)
        for form in renderings(protection.root_key):
            assert form.decode("latin-1") not in text
        for share in protection.shares:
            assert share not in text
    assert PASSPHRASE not in repr(fast_passphrase())
    assert "s3cret-pin" not in repr(Pkcs11Choice("/lib.so", "token", "key", "s3cret-pin"))


# --- pkcs11 -------------------------------------------------------------------------------------


def test_pkcs11_round_trip_with_a_key_that_never_leaves_the_token(
    hsm: SoftHsmToken, data_dir: Path
) -> None:
    protection = providers.protect(pkcs11_choice(hsm, "round-trip"))
    assert protection.notes and "generated a new AES-256 key" in protection.notes[0]
    providers.install(data_dir, protection)
    config = providers.read_seal(data_dir)
    assert config.params["token_label"] == hsm.label
    assert providers.unseal_pkcs11(config, hsm.pin, hsm.env) == protection.root_key
    assert_no_key_in(data_dir, protection.root_key)
    assert_private(data_dir)

    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    token = pkcs11.lib(hsm.module).get_token(token_label=hsm.label)
    with token.open(user_pin=hsm.pin) as session:
        key = session.get_key(object_class=ObjectClass.SECRET_KEY, label="round-trip")
        assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
        assert key[Attribute.TOKEN]  # persistent, not a session object


def test_pkcs11_reuses_an_existing_wrapping_key(hsm: SoftHsmToken) -> None:
    first = providers.protect(pkcs11_choice(hsm, "reused"))
    second = providers.protect(pkcs11_choice(hsm, "reused"))
    assert first.notes and not second.notes
    assert providers.unseal_pkcs11(first.seal, hsm.pin, hsm.env) == first.root_key
    assert providers.unseal_pkcs11(second.seal, hsm.pin, hsm.env) == second.root_key


def test_pkcs11_refusals_are_clear(hsm: SoftHsmToken) -> None:
    protection = providers.protect(pkcs11_choice(hsm, "refusals"))
    with pytest.raises(WrongCredential, match="refused the PIN") as raised:
        providers.unseal_pkcs11(protection.seal, "00000000", hsm.env)
    assert hsm.pin not in str(raised.value)
    with pytest.raises(SealError, match="no PKCS#11 token labelled"):
        providers.protect(Pkcs11Choice(hsm.module, "no-such-token", "k", hsm.pin))
    with pytest.raises(SealError, match="cannot load the PKCS#11 module"):
        providers.protect(Pkcs11Choice("/nonexistent/libnothing.so", hsm.label, "k", hsm.pin))
    # A seal that names another key in the token: that key cannot unwrap it.
    providers.protect(pkcs11_choice(hsm, "another"))
    params = {**protection.seal.params, "key_label": "another"}
    moved = providers.SealConfig(
        "pkcs11", protection.seal.key_id, protection.seal.key_check, params
    )
    with pytest.raises(WrongCredential, match="did not unwrap"):
        providers.unseal_pkcs11(moved, hsm.pin, hsm.env)
    missing = providers.SealConfig(
        "pkcs11",
        protection.seal.key_id,
        protection.seal.key_check,
        {**protection.seal.params, "key_label": "missing"},
    )
    with pytest.raises(SealError, match="no AES key labelled"):
        providers.unseal_pkcs11(missing, hsm.pin, hsm.env)


def test_the_pkcs11_library_comes_from_the_operator_not_the_data_directory(
    hsm: SoftHsmToken, tmp_path: Path
) -> None:
    protection = providers.protect(pkcs11_choice(hsm, "pinned"))
    # Whoever can write seal.json points it at a library of their own (here a copy).
    shim = tmp_path / "shim" / "libshim.so"
    shim.parent.mkdir()
    shim.write_bytes(Path(hsm.module).read_bytes())
    tampered = providers.SealConfig(
        "pkcs11",
        protection.seal.key_id,
        protection.seal.key_check,
        {**protection.seal.params, "module": str(shim)},
    )
    with pytest.raises(SealError, match=r"names the PKCS#11 library .*refusing to load it"):
        providers.unseal_pkcs11(tampered, hsm.pin, hsm.env)
    with pytest.raises(SealError, match="set STRONGROOM_PKCS11_MODULE"):
        providers.unseal_pkcs11(protection.seal, hsm.pin, {"STRONGROOM_PKCS11_PIN": hsm.pin})
    # Even when the operator names it, a library someone other than root can change is
    # refused: one not owned by root, one others may write, one in a directory others may.
    shimmed = {**hsm.env, "STRONGROOM_PKCS11_MODULE": str(shim)}
    os.chown(shim, 4242, 4242)
    with pytest.raises(SealError, match="must be owned by root"):
        providers.unseal_pkcs11(tampered, hsm.pin, shimmed)
    os.chown(shim, 0, 0)
    shim.chmod(0o666)
    with pytest.raises(SealError, match="must be owned by root"):
        providers.unseal_pkcs11(tampered, hsm.pin, shimmed)
    shim.chmod(0o644)
    shim.parent.chmod(0o777)
    with pytest.raises(SealError, match="library's directory"):
        providers.unseal_pkcs11(tampered, hsm.pin, shimmed)
    with pytest.raises(SealError, match="must be owned by root"):
        providers.protect(Pkcs11Choice(str(shim), hsm.label, "k", hsm.pin))
    assert providers.unseal_pkcs11(protection.seal, hsm.pin, hsm.env) == protection.root_key


# --- rekey --------------------------------------------------------------------------------------


def sealed_rows(data_dir: Path) -> list[tuple[rekey.SealedColumn, bytes, bytes]]:
    store = Store(sqlite_url(data_dir))
    rows = []
    try:
        with store.read() as conn:
            for entry in ROOT_SEALED:
                query = select(entry.table)
                if entry.where is not None:
                    query = query.where(entry.where())
                for row in conn.execute(query):
                    rows.append((entry, bytes(getattr(row, entry.column)), entry.aad(row)))
    finally:
        store.dispose()
    return rows


def secret_ciphertexts(data_dir: Path) -> list[bytes]:
    from strongroom.store import schema

    store = Store(sqlite_url(data_dir))
    try:
        with store.read() as conn:
            return [
                bytes(v)
                for v in conn.execute(select(schema.secret_versions.c.ciphertext)).scalars()
                if v is not None
            ]
    finally:
        store.dispose()


@pytest.fixture
def deployment_dir(tmp_path: Path) -> Path:
    """A dev deployment with a secret (and so the aws/secretsmanager KMS key) in it."""
    directory = tmp_path / "deployment"
    initialize(directory, dev=True)
    deployment = open_deployment(directory)
    try:
        deployment.secrets.create_secret(
            CALLER,
            {"Name": "app/db", "SecretString": "hunter2-rekey", "ClientRequestToken": "a" * 32},
        )
        tokens = token_codec(deployment.store, deployment.barrier)
        devices = MfaDevices(deployment.store, deployment.barrier, deployment.clock, tokens)
        devices.create_virtual_mfa_device(CALLER, {"VirtualMFADeviceName": "phone"})
    finally:
        deployment.close()
    return directory


def test_the_registry_lists_every_root_sealed_value(deployment_dir: Path) -> None:
    old_key = providers.unseal_unattended(deployment_dir)
    barrier = Barrier(old_key)
    rows = sealed_rows(deployment_dir)
    names = {entry.name for entry, _, _ in rows}
    assert {
        "access_keys.secret_ciphertext",
        "settings.value",
        "kms_key_material.sealed",
        "iam_mfa_devices.seed_ciphertext",
    } <= names
    for _entry, sealed, aad in rows:
        barrier.open(sealed, aad)  # each opens with the aad the registry computes


def test_rekey_rewraps_the_keyring_and_leaves_secret_ciphertexts_alone(
    deployment_dir: Path,
) -> None:
    old_key = providers.unseal_unattended(deployment_dir)
    before = secret_ciphertexts(deployment_dir)
    old_rows = sealed_rows(deployment_dir)
    protection = providers.protect(fast_passphrase())
    shown: list[dict[str, int]] = []
    counts = rekey.rekey(
        deployment_dir,
        old_key,
        protection,
        ROOT_SEALED,
        before_commit=lambda _p, c: shown.append(dict(c)),
    )
    assert shown == [counts] and counts["access_keys.secret_ciphertext"] == 1
    assert counts["iam_mfa_devices.seed_ciphertext"] == 1
    assert secret_ciphertexts(deployment_dir) == before
    assert not (deployment_dir / ROOT_KEY_FILE).exists()  # the old key file is gone
    assert not providers.has_staged(deployment_dir)
    assert providers.read_seal(deployment_dir).provider == "passphrase"
    everything = sealed_rows(deployment_dir)
    old_aads = {aad for _, _, aad in old_rows}
    new_rows = [row for row in everything if row[2] in old_aads]
    added = [aad for _, _, aad in everything if aad not in old_aads]
    # and one new material generation per KMS key, which the old key cannot open either
    assert len(added) == counts[rekey.NEW_GENERATIONS] >= 1
    assert all(aad.startswith(b"kms-material|") for aad in added)
    old = Barrier(old_key)
    for sealed, aad in [(sealed, aad) for _, sealed, aad in everything]:
        with pytest.raises(DecryptionError):
            old.open(sealed, aad)
    for (_entry, sealed, _aad), (_, previous, _) in zip(new_rows, old_rows, strict=True):
        assert sealed != previous
    new_key = providers.unseal_passphrase(providers.read_seal(deployment_dir), PASSPHRASE)
    deployment = open_deployment(deployment_dir, root_key=new_key)
    try:
        value = deployment.secrets.get_secret_value(CALLER, {"SecretId": "app/db"})
        assert value["SecretString"] == "hunter2-rekey"
        assert deployment.credentials.lookup("test") is not None
    finally:
        deployment.close()
    assert_private(deployment_dir)


def test_rekey_refuses_a_value_that_does_not_open_and_changes_nothing(
    deployment_dir: Path,
) -> None:
    old_key = providers.unseal_unattended(deployment_dir)
    seal_before = (deployment_dir / providers.SEAL_FILE).read_bytes()
    before = sealed_rows(deployment_dir)
    with pytest.raises(rekey.RekeyError, match="does not open"):
        rekey.rekey(deployment_dir, os.urandom(32), providers.protect(FileChoice()), ROOT_SEALED)
    assert (deployment_dir / providers.SEAL_FILE).read_bytes() == seal_before
    assert (deployment_dir / ROOT_KEY_FILE).read_bytes() == old_key
    assert not providers.has_staged(deployment_dir)
    assert [row[1] for row in sealed_rows(deployment_dir)] == [row[1] for row in before]


def test_an_interrupted_rekey_is_completed_after_the_commit(
    deployment_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key = providers.unseal_unattended(deployment_dir)
    protection = providers.protect(FileChoice())

    def crash(_data_dir: Path) -> None:
        raise KeyboardInterrupt  # the process dies between the commit and the renames

    monkeypatch.setattr(providers, "promote_staged", crash)
    with pytest.raises(KeyboardInterrupt):
        rekey.rekey(deployment_dir, old_key, protection, ROOT_SEALED)
    monkeypatch.undo()
    assert providers.has_staged(deployment_dir)
    assert (deployment_dir / ROOT_KEY_FILE).read_bytes() == old_key  # not yet moved
    assert rekey.finish_interrupted_rekey(deployment_dir) == "completed"
    assert providers.unseal_unattended(deployment_dir) == protection.root_key
    open_deployment(deployment_dir).close()
    assert rekey.finish_interrupted_rekey(deployment_dir) is None


def test_an_interrupted_rekey_is_undone_before_the_commit(
    deployment_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key = providers.unseal_unattended(deployment_dir)
    protection = providers.protect(fast_passphrase())
    providers.install(deployment_dir, protection, staged=True)  # staged, never committed
    assert rekey.finish_interrupted_rekey(deployment_dir) == "rolled back"
    assert not providers.has_staged(deployment_dir)
    assert providers.unseal_unattended(deployment_dir) == old_key
    assert is_initialized(deployment_dir)


def test_promoting_is_safe_to_repeat_after_a_crash_midway(data_dir: Path) -> None:
    providers.install(data_dir, providers.protect(FileChoice()))
    new = providers.protect(FileChoice())
    providers.install(data_dir, new, staged=True)
    # Crash after root.key.new was moved but before seal.json.new was.
    os.replace(data_dir / (ROOT_KEY_FILE + ".new"), data_dir / ROOT_KEY_FILE)
    providers.promote_staged(data_dir)
    assert (data_dir / ROOT_KEY_FILE).read_bytes() == new.root_key
    assert providers.unseal_unattended(data_dir) == new.root_key


def test_a_live_sts_session_still_signs_after_a_rekey(deployment_dir: Path) -> None:
    """IAM declares the sessions it sealed with the root barrier, so a rekey re-wraps them
    too: temporary credentials issued before it keep working after it."""
    from strongroom.iam.credentials import SessionGrant
    from strongroom.store import schema

    deployment = open_deployment(deployment_dir)
    try:
        with deployment.store.read() as conn:
            admin_id = conn.execute(
                select(schema.iam_users.c.id).where(schema.iam_users.c.arn == CALLER.principal_arn)
            ).scalar_one()
        grant = SessionGrant(
            account_id="000000000000",
            kind="user",
            principal_arn=CALLER.principal_arn,
            identity_arn=CALLER.principal_arn,
            duration_seconds=3600,
            user_id=admin_id,  # the user the session belongs to
        )
        with deployment.store.write() as conn:
            issued = deployment.credentials.create_session(conn, grant)
    finally:
        deployment.close()
    old_key = providers.unseal_unattended(deployment_dir)
    counts = rekey.rekey(deployment_dir, old_key, providers.protect(FileChoice()), ROOT_SEALED)
    assert counts["sts_sessions.secret_ciphertext"] == 1
    deployment = open_deployment(deployment_dir)
    try:
        found = deployment.credentials.lookup(issued.access_key_id)
        assert found is not None and found.secret_access_key == issued.secret_access_key
    finally:
        deployment.close()
