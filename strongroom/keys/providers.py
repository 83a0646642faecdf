# long module: the four root-key providers share seal.json's format and checks; the PKCS#11
# session at the bottom can move out once SealError has its own module.
"""Root-key providers: how the root key is kept at rest and how it comes back.

The root key is always 32 random bytes. The seal protects only it (the barrier's
keyring, as in Vault); everything else is sealed by the barrier under it. A provider
decides who can bring the key back:

``file``        ``root.key`` (0600) in the data directory: anyone who can read the
                directory, including the server at boot, unattended.
``passphrase``  the key wrapped (AES-256-GCM) under scrypt(passphrase, random salt).
``shamir``      the key split into N shares, any K of which rebuild it; the server
                starts sealed until K shares are submitted.
``pkcs11``      the key wrapped by an AES key that never leaves a PKCS#11 token (HSM).

``seal.json`` in the data directory names the provider and holds its parameters and
wrapped key, never key material in the clear, plus ``key_check``: an AES-GCM blob made
with the root key itself, so a wrong key (from a wrong share set, a swapped key file,
...) is recognised before it is used. ``key_id`` names the root key (not secret); it
changes on every rekey.

Error messages here are shown to operators: they never hold a key, a passphrase, a PIN
or a share.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from strongroom.keys import shamir
from strongroom.keys.root import (
    ROOT_KEY_BYTES,
    ROOT_KEY_FILE,
    load_key_file,
    new_root_key,
    sync_directory,
    write_private_file,
)

SEAL_FILE = "seal.json"
STAGED_SUFFIX = ".new"  # a rekey writes seal.json.new / root.key.new before it commits
PROVIDERS = ("file", "passphrase", "shamir", "pkcs11")
PASSPHRASE_ENV = "STRONGROOM_PASSPHRASE"  # noqa: S105 - the name of a variable
PIN_ENV = "STRONGROOM_PKCS11_PIN"
MIN_PASSPHRASE = 8

# scrypt work factor: 2^17 x 8 x 128 B = 128 MiB and about a second per try (OWASP's
# recommendation). Stored in seal.json so it can be raised later.
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1

_FORMAT = 1
_NONCE = 12
_CHECK_PLAINTEXT = b"strongroom root key check"


class SealError(Exception):
    """The root key could not be protected or recovered. The message is safe to show."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class WrongCredential(SealError):
    """A passphrase, PIN or set of shares did not recover this deployment's root key."""


class BadUnsealInput(SealError):
    """A submitted share or passphrase was refused; it was not counted."""


# --- seal.json ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealConfig:
    """What ``seal.json`` says: the provider, its parameters, and the key check."""

    provider: str
    key_id: str
    key_check: str | None  # base64(nonce + AES-GCM(root key, constant)); None for legacy
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> int:
        return int(self.params["threshold"]) if self.provider == "shamir" else 1

    @property
    def shares(self) -> int | None:
        return int(self.params["shares"]) if self.provider == "shamir" else None

    def to_json(self) -> bytes:
        document = {
            "format": _FORMAT,
            "provider": self.provider,
            "key_id": self.key_id,
            "key_check": self.key_check,
            **self.params,
        }
        return json.dumps(document, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes, source: str) -> SealConfig:
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise SealError(f"{source} is not valid JSON") from None
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise SealError(f"{source} is not a Strongroom seal file this version can read")
        provider = document.pop("provider", None)
        key_id = document.pop("key_id", None)
        key_check = document.pop("key_check", None)
        document.pop("format")
        if provider not in PROVIDERS:
            raise SealError(f"{source} names an unknown root-key provider")
        if not isinstance(key_id, str) or not isinstance(key_check, str):
            raise SealError(f"{source} lacks its key_id or key_check")
        config = cls(provider, key_id, key_check, document)
        _check_params(config, source)
        return config


def _check_params(config: SealConfig, source: str) -> None:
    required = {
        "file": (),
        "passphrase": ("kdf", "nonce", "wrapped_key"),
        "shamir": ("shares", "threshold", "share_set"),
        "pkcs11": ("module", "token_label", "key_label", "mechanism", "nonce", "wrapped_key"),
    }[config.provider]
    missing = [name for name in required if name not in config.params]
    if missing:
        raise SealError(f"{source} lacks {', '.join(missing)} for the {config.provider} provider")


def seal_path(data_dir: Path, *, staged: bool = False) -> Path:
    return data_dir / (SEAL_FILE + (STAGED_SUFFIX if staged else ""))


def has_root_key(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds a root key (a seal file, or a bare legacy key file)."""
    return seal_path(data_dir).exists() or (data_dir / ROOT_KEY_FILE).exists()


def read_seal(data_dir: Path, *, staged: bool = False) -> SealConfig:
    path = seal_path(data_dir, staged=staged)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if not staged and (data_dir / ROOT_KEY_FILE).exists():
            # A data directory from before seal.json: a key file, nothing to check it by.
            return SealConfig("file", "legacy", None)
        raise SealError(
            f"{data_dir} has no {SEAL_FILE}: it is not a Strongroom data directory"
        ) from None
    return SealConfig.from_json(raw, str(path))


def verify_root_key(config: SealConfig, key: bytes) -> None:
    """Raise :class:`WrongCredential` unless ``key`` is the root key ``config`` describes."""
    if len(key) != ROOT_KEY_BYTES:
        raise WrongCredential("the recovered root key has the wrong length")
    if config.key_check is None:
        return
    blob = _b64decode(config.key_check, "key_check")
    try:
        plaintext = AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], _check_aad(config.key_id))
    except InvalidTag:
        raise WrongCredential("the recovered key is not this deployment's root key") from None
    if plaintext != _CHECK_PLAINTEXT:
        raise WrongCredential("the recovered key is not this deployment's root key")


def _key_check(key: bytes, key_id: str) -> str:
    nonce = os.urandom(_NONCE)
    return _b64(nonce + AESGCM(key).encrypt(nonce, _CHECK_PLAINTEXT, _check_aad(key_id)))


def _check_aad(key_id: str) -> bytes:
    return b"strongroom-root-key-check|" + key_id.encode()


def _wrap_aad(provider: str, key_id: str) -> bytes:
    return f"strongroom-root-key|{provider}|{key_id}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: Any, name: str) -> bytes:
    if not isinstance(text, str):
        raise SealError(f"{SEAL_FILE}: {name} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SealError(f"{SEAL_FILE}: {name} is not valid base64") from None


# --- choosing and protecting a new root key --------------------------------------------------


@dataclass(frozen=True)
class FileChoice:
    name: str = field(default="file", init=False)


@dataclass(frozen=True)
class PassphraseChoice:
    passphrase: str = field(repr=False)
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P
    name: str = field(default="passphrase", init=False)


@dataclass(frozen=True)
class ShamirChoice:
    shares: int
    threshold: int
    name: str = field(default="shamir", init=False)


@dataclass(frozen=True)
class Pkcs11Choice:
    module: str
    token_label: str
    key_label: str
    pin: str = field(repr=False)
    name: str = field(default="pkcs11", init=False)


ProviderChoice = FileChoice | PassphraseChoice | ShamirChoice | Pkcs11Choice


@dataclass(frozen=True)
class Protection:
    """A root key and what keeps it: written to the data directory by :func:`install`."""

    root_key: bytes = field(repr=False)
    seal: SealConfig
    key_file: bytes | None = field(default=None, repr=False)
    shares: tuple[str, ...] = field(default=(), repr=False)  # shown once, never stored
    notes: tuple[str, ...] = ()  # e.g. "generated a new AES key in the token"


def check_choice(choice: ProviderChoice) -> None:
    """Raise :class:`SealError` for a choice that cannot work (before anything is made)."""
    if isinstance(choice, PassphraseChoice):
        if len(normalize_passphrase(choice.passphrase)) < MIN_PASSPHRASE:
            raise SealError(f"the passphrase must be at least {MIN_PASSPHRASE} characters long")
        _check_scrypt(choice.n, choice.r, choice.p)
    elif isinstance(choice, ShamirChoice):
        if not 1 <= choice.threshold <= choice.shares <= shamir.MAX_SHARES:
            raise SealError(
                f"need 1 <= threshold <= shares <= {shamir.MAX_SHARES} "
                f"(got {choice.shares} shares, threshold {choice.threshold})"
            )
        if choice.threshold == 1 and choice.shares > 1:
            raise SealError(
                "a threshold of 1 with several shares makes every share the root key; "
                "use --threshold 2 or more"
            )
    elif isinstance(choice, Pkcs11Choice):
        if not (choice.module and choice.token_label and choice.key_label):
            raise SealError(
                "pkcs11 needs --pkcs11-module, --pkcs11-token-label and --pkcs11-key-label"
            )
        if not choice.pin:
            raise SealError(f"pkcs11 needs the token's user PIN in {PIN_ENV}")


def protect(choice: ProviderChoice, root_key: bytes | None = None) -> Protection:
    """Protect ``root_key`` (a fresh one by default) the way ``choice`` says."""
    check_choice(choice)
    key = root_key if root_key is not None else new_root_key()
    if len(key) != ROOT_KEY_BYTES:
        raise ValueError("the root key must be 32 bytes")
    key_id = os.urandom(8).hex()
    check = _key_check(key, key_id)
    if isinstance(choice, FileChoice):
        return Protection(key, SealConfig("file", key_id, check), key_file=key)
    if isinstance(choice, PassphraseChoice):
        salt = os.urandom(16)
        kek = _scrypt(choice.passphrase, salt, choice.n, choice.r, choice.p)
        nonce = os.urandom(_NONCE)
        wrapped = AESGCM(kek).encrypt(nonce, key, _wrap_aad("passphrase", key_id))
        params: dict[str, Any] = {
            "kdf": {
                "name": "scrypt",
                "n": choice.n,
                "r": choice.r,
                "p": choice.p,
                "salt": _b64(salt),
            },
            "nonce": _b64(nonce),
            "wrapped_key": _b64(wrapped),
        }
        return Protection(key, SealConfig("passphrase", key_id, check, params))
    if isinstance(choice, ShamirChoice):
        set_id = shamir.new_set_id()
        shares = tuple(
            shamir.encode_share(share, set_id)
            for share in shamir.split(key, choice.shares, choice.threshold)
        )
        shamir_params: dict[str, Any] = {
            "shares": choice.shares,
            "threshold": choice.threshold,
            "share_set": set_id,
        }
        seal = SealConfig("shamir", key_id, check, shamir_params)
        return Protection(key, seal, shares=shares)
    nonce = os.urandom(_NONCE)
    with _Pkcs11(choice.module, choice.token_label, choice.pin, rw=True) as token:
        created = token.ensure_key(choice.key_label)
        wrapped = token.encrypt(choice.key_label, nonce, key, _wrap_aad("pkcs11", key_id))
    pkcs11_params: dict[str, Any] = {
        "module": os.path.abspath(choice.module),
        "token_label": choice.token_label,
        "key_label": choice.key_label,
        "mechanism": "AES_GCM",
        "nonce": _b64(nonce),
        "wrapped_key": _b64(wrapped),
    }
    notes = (
        (f"generated a new AES-256 key {choice.key_label!r} in token {choice.token_label!r}",)
        if created
        else ()
    )
    return Protection(key, SealConfig("pkcs11", key_id, check, pkcs11_params), notes=notes)


def install(data_dir: Path, protection: Protection, *, staged: bool = False) -> None:
    """Write the seal file (and ``root.key`` for the file provider), 0600, atomically.

    Not staged (``init``): never over an existing seal or key. Staged (``rekey``): the
    ``.new`` files that :func:`promote_staged` moves into place after the commit.
    """
    suffix = STAGED_SUFFIX if staged else ""
    if not staged and has_root_key(data_dir):
        raise FileExistsError(f"{data_dir} already holds a root key")
    if protection.key_file is not None:
        write_private_file(data_dir / (ROOT_KEY_FILE + suffix), protection.key_file, replace=staged)
    write_private_file(
        seal_path(data_dir, staged=staged), protection.seal.to_json(), replace=staged
    )


def promote_staged(data_dir: Path) -> None:
    """Move a rekey's staged files into place. Safe to repeat after a crash."""
    staged = read_seal(data_dir, staged=True)
    staged_key = data_dir / (ROOT_KEY_FILE + STAGED_SUFFIX)
    key_file = data_dir / ROOT_KEY_FILE
    if staged.provider == "file":
        if staged_key.exists():
            os.replace(staged_key, key_file)
    else:
        key_file.unlink(missing_ok=True)  # the old key must not outlive the rekey
        staged_key.unlink(missing_ok=True)
    os.replace(seal_path(data_dir, staged=True), seal_path(data_dir))
    sync_directory(data_dir)


def discard_staged(data_dir: Path) -> None:
    (data_dir / (ROOT_KEY_FILE + STAGED_SUFFIX)).unlink(missing_ok=True)
    seal_path(data_dir, staged=True).unlink(missing_ok=True)
    sync_directory(data_dir)


def has_staged(data_dir: Path) -> bool:
    return seal_path(data_dir, staged=True).exists()


# --- recovering the root key -----------------------------------------------------------------


def unseal_file(data_dir: Path, config: SealConfig) -> bytes:
    try:
        key = load_key_file(data_dir)
    except FileNotFoundError:
        raise SealError(f"{data_dir / ROOT_KEY_FILE} is missing") from None
    except ValueError:
        raise SealError(f"{data_dir / ROOT_KEY_FILE} is not a 256-bit key file") from None
    try:
        verify_root_key(config, key)
    except WrongCredential:
        raise WrongCredential(
            f"{data_dir / ROOT_KEY_FILE} does not hold this deployment's root key"
        ) from None
    return key


def unseal_passphrase(config: SealConfig, passphrase: str) -> bytes:
    kdf = config.params["kdf"]
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise SealError(f"{SEAL_FILE}: unsupported key derivation")
    n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
    _check_scrypt(n, r, p)
    kek = _scrypt(passphrase, _b64decode(kdf["salt"], "salt"), n, r, p)
    nonce = _b64decode(config.params["nonce"], "nonce")
    wrapped = _b64decode(config.params["wrapped_key"], "wrapped_key")
    try:
        key = AESGCM(kek).decrypt(nonce, wrapped, _wrap_aad("passphrase", config.key_id))
    except InvalidTag:
        raise WrongCredential("wrong passphrase") from None
    verify_root_key(config, key)
    return key


def unseal_pkcs11(config: SealConfig, pin: str) -> bytes:
    params = config.params
    if params["mechanism"] != "AES_GCM":
        raise SealError(f"{SEAL_FILE}: unsupported PKCS#11 mechanism")
    with _Pkcs11(str(params["module"]), str(params["token_label"]), pin) as token:
        key = token.decrypt(
            str(params["key_label"]),
            _b64decode(params["nonce"], "nonce"),
            _b64decode(params["wrapped_key"], "wrapped_key"),
            _wrap_aad("pkcs11", config.key_id),
        )
    verify_root_key(config, key)
    return key


def unseal_shares(config: SealConfig, texts: Sequence[str]) -> bytes:
    """The root key from K share texts (offline use: ``rekey``)."""
    collector = ShamirUnsealer(config)
    key: bytes | None = None
    for text in texts:
        key = collector.submit({"share": text})
    if key is None:
        raise WrongCredential(
            f"{collector.progress} of the {collector.threshold} shares needed were given"
        )
    return key


def unseal_unattended(data_dir: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The root key without asking anyone: the key file, the HSM (PIN from the
    environment) or a passphrase from the environment. Shamir always needs people."""
    environ = os.environ if environ is None else environ
    config = read_seal(data_dir)
    if config.provider == "file":
        return unseal_file(data_dir, config)
    if config.provider == "pkcs11":
        return unseal_pkcs11(config, _required(environ, PIN_ENV, "the token's user PIN"))
    if config.provider == "passphrase":
        return unseal_passphrase(config, _required(environ, PASSPHRASE_ENV, "the passphrase"))
    raise SealError("a shamir-sealed deployment needs its unseal shares (strongroom unseal)")


def _required(environ: Mapping[str, str], name: str, what: str) -> str:
    value = environ.get(name)
    if not value:
        raise SealError(f"set {name} to {what}")
    return value


def normalize_passphrase(passphrase: str) -> str:
    # The same passphrase typed on another keyboard or OS must give the same key.
    return unicodedata.normalize("NFC", passphrase)


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    secret = normalize_passphrase(passphrase).encode("utf-8", "surrogatepass")
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(secret)


def _check_scrypt(n: int, r: int, p: int) -> None:
    # Bounds keep a tampered seal.json from asking for absurd memory or time.
    if n < 2**14 or n > 2**22 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise SealError("scrypt parameters out of range (n a power of two 2^14..2^22)")


# --- unsealing a running server ---------------------------------------------------------------


class Unsealer(Protocol):
    """Turns what operators submit into the root key (used by the keyholder)."""

    provider: str

    @property
    def threshold(self) -> int: ...

    @property
    def progress(self) -> int: ...

    def submit(self, request: Mapping[str, Any]) -> bytes | None:
        """Count one submission; the root key once enough arrived. Raises
        :class:`BadUnsealInput` for a refused one (not counted)."""

    def reset(self) -> None: ...


class ShamirUnsealer:
    provider = "shamir"

    def __init__(self, config: SealConfig) -> None:
        self._config = config
        self._set_id = str(config.params["share_set"])
        self._shares: dict[int, shamir.Share] = {}

    def __repr__(self) -> str:
        return f"ShamirUnsealer(progress={self.progress}, threshold={self.threshold})"

    @property
    def threshold(self) -> int:
        return self._config.threshold

    @property
    def progress(self) -> int:
        return len(self._shares)

    def submit(self, request: Mapping[str, Any]) -> bytes | None:
        text = request.get("share")
        if not isinstance(text, str) or not text.strip():
            raise BadUnsealInput(
                "this server is sealed with Shamir shares: submit one with "
                '{"share": "srs1-..."} (strongroom unseal does)'
            )
        try:
            set_id, share = shamir.decode_share(text)
        except shamir.ShareError as problem:
            raise BadUnsealInput(str(problem)) from None
        if set_id != self._set_id:
            raise BadUnsealInput(
                "this share belongs to another share set (an older root key, before a "
                "rekey, or another deployment); it was not counted"
            )
        if share.index in self._shares:
            raise BadUnsealInput(f"share {share.index} was already submitted; it was not counted")
        self._shares[share.index] = share
        if len(self._shares) < self.threshold:
            return None
        try:
            key = shamir.combine(list(self._shares.values()))
            verify_root_key(self._config, key)
        except (shamir.ShareError, WrongCredential):
            self.reset()
            raise BadUnsealInput(
                "the shares did not rebuild this deployment's root key; progress was reset"
            ) from None
        self.reset()
        return key

    def reset(self) -> None:
        self._shares.clear()


class PassphraseUnsealer:
    provider = "passphrase"
    threshold = 1
    progress = 0

    def __init__(self, config: SealConfig) -> None:
        self._config = config

    def __repr__(self) -> str:
        return "PassphraseUnsealer()"

    def submit(self, request: Mapping[str, Any]) -> bytes | None:
        passphrase = request.get("passphrase")
        if not isinstance(passphrase, str) or not passphrase:
            raise BadUnsealInput(
                'this server is sealed with a passphrase: submit {"passphrase": "..."} '
                "(strongroom unseal asks for it)"
            )
        try:
            return unseal_passphrase(self._config, passphrase)
        except WrongCredential:
            raise BadUnsealInput("wrong passphrase") from None

    def reset(self) -> None:
        return None


class AutoUnsealer:
    """``file`` and ``pkcs11``: the keyholder fetches the key again by itself."""

    threshold = 1
    progress = 0

    def __init__(self, provider: str, load: Callable[[], bytes]) -> None:
        self.provider = provider
        self._load = load

    def __repr__(self) -> str:
        return f"AutoUnsealer({self.provider!r})"

    def submit(self, request: Mapping[str, Any]) -> bytes | None:
        if request.get("share") or request.get("passphrase"):
            raise BadUnsealInput(
                f"this server uses the {self.provider} provider: it unseals by itself; "
                "submit an empty request"
            )
        try:
            return self._load()
        except SealError as problem:
            raise BadUnsealInput(str(problem)) from None

    def reset(self) -> None:
        return None


def unsealer_for(data_dir: Path, config: SealConfig, *, pin: str | None = None) -> Unsealer:
    if config.provider == "shamir":
        return ShamirUnsealer(config)
    if config.provider == "passphrase":
        return PassphraseUnsealer(config)
    if config.provider == "pkcs11":
        if not pin:
            raise SealError(f"set {PIN_ENV} to the token's user PIN")
        held_pin = pin
        return AutoUnsealer("pkcs11", lambda: unseal_pkcs11(config, held_pin))
    return AutoUnsealer("file", lambda: unseal_file(data_dir, config))


# --- PKCS#11 -----------------------------------------------------------------------------------


class _Pkcs11:
    """A logged-in session on one token, with errors turned into :class:`SealError`."""

    def __init__(self, module: str, token_label: str, pin: str, *, rw: bool = False) -> None:
        self._module = module
        self._token_label = token_label
        self._pin = pin
        self._rw = rw
        self._session: Any = None

    def __repr__(self) -> str:
        return f"_Pkcs11({self._module!r}, {self._token_label!r})"

    def __enter__(self) -> _Pkcs11:
        try:
            import pkcs11
            from pkcs11 import exceptions as errors
        except ImportError:
            raise SealError(
                "the pkcs11 provider needs python-pkcs11: pip install 'strongroom[pkcs11]'"
            ) from None
        try:
            library = pkcs11.lib(self._module)
        except (pkcs11.PKCS11Error, OSError):
            raise SealError(f"cannot load the PKCS#11 module {self._module}") from None
        try:
            token = library.get_token(token_label=self._token_label)
        except errors.NoSuchToken:
            raise SealError(
                f"no PKCS#11 token labelled {self._token_label!r} in {self._module}"
            ) from None
        except errors.MultipleTokensReturned:
            raise SealError(f"several PKCS#11 tokens are labelled {self._token_label!r}") from None
        try:
            self._session = token.open(user_pin=self._pin, rw=self._rw)
        except (errors.PinIncorrect, errors.PinInvalid, errors.PinLenRange):
            raise WrongCredential(
                f"token {self._token_label!r} refused the PIN (from {PIN_ENV})"
            ) from None
        except errors.PinLocked:
            raise SealError(f"token {self._token_label!r} has locked its PIN") from None
        except errors.PKCS11Error as problem:
            raise SealError(
                f"cannot log in to token {self._token_label!r}: {type(problem).__name__}"
            ) from None
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _key(self, label: str) -> Any:
        from pkcs11 import KeyType, ObjectClass
        from pkcs11 import exceptions as errors

        try:
            return self._session.get_key(
                object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label
            )
        except errors.NoSuchKey:
            return None
        except errors.MultipleObjectsReturned:
            raise SealError(f"several AES keys in the token are labelled {label!r}") from None

    def ensure_key(self, label: str) -> bool:
        """Make sure an AES key ``label`` exists in the token; True if it was created."""
        from pkcs11 import Attribute, KeyType
        from pkcs11 import exceptions as errors

        if self._key(label) is not None:
            return False
        try:
            self._session.generate_key(
                KeyType.AES,
                256,
                label=label,
                store=True,
                template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.ENCRYPT: True,
                    Attribute.DECRYPT: True,
                },
            )
        except errors.PKCS11Error as problem:
            raise SealError(
                f"cannot create AES key {label!r} in the token: {type(problem).__name__}"
            ) from None
        return True

    def encrypt(self, label: str, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11 import exceptions as errors
        from pkcs11.mechanisms import GCMParams

        key = self._key(label)
        if key is None:
            raise SealError(f"no AES key labelled {label!r} in the token")
        try:
            return bytes(
                key.encrypt(
                    data, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)
                )
            )
        except errors.PKCS11Error as problem:
            raise SealError(
                f"the token could not wrap the root key: {type(problem).__name__}"
            ) from None

    def decrypt(self, label: str, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11 import exceptions as errors
        from pkcs11.mechanisms import GCMParams

        key = self._key(label)
        if key is None:
            raise SealError(
                f"no AES key labelled {label!r} in token {self._token_label!r}: "
                "is this the right token?"
            )
        try:
            return bytes(
                key.decrypt(
                    data, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)
                )
            )
        except errors.PKCS11Error:
            raise WrongCredential(
                f"the token's key {label!r} did not unwrap the root key "
                "(another key with the same label, or a tampered seal.json)"
            ) from None
