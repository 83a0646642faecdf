# long module: one specification (Signature Version 4: header, query and presigned forms) kept in
# one place so it can be checked against AWS's text.
"""Server-side AWS Signature Version 4 verification.

Pure logic over a framework-independent :class:`HttpRequest`: :func:`parse_credential`
reads who claims to have signed (Authorization header or presigned query string), the
caller looks the access key up, and :func:`verify` recomputes the signature exactly as
the AWS SDKs do (botocore's ``SigV4Auth`` is the reference) and checks the clock.

Conventions the HTTP adapter must follow:

- ``path`` and ``query`` are the raw request target as sent, percent-encoding intact,
  and every ``str`` field holds the wire bytes decoded as latin-1 (the ASGI/Starlette
  convention, lossless). Text that cannot be latin-1 is taken as UTF-8.
- Route on the same path the signature covers: like AWS, the canonical URI removes
  dot segments and repeated slashes, so ``/a/../b`` and ``/b`` verify alike.
- Read query parameters with form decoding (``+`` is a space, as Starlette does): the
  canonical query string is computed from those decoded values.

Error codes and texts are AWS's (JSON-protocol services answer ``InvalidSignatureException``
where Query services say ``SignatureDoesNotMatch``). Messages echo only request fields that
are not secret, clipped, and never the secret access key, a session token or any part of
an Authorization value that is not an AWS4 parameter.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

from strongroom.protocol.errors import (
    ServiceError,
    incomplete_signature,
    invalid_signature,
    missing_authentication,
)

__all__ = [
    "HttpRequest",
    "SigV4Credential",
    "SigningKeyCache",
    "parse_credential",
    "received",
    "verify",
]

_ALGORITHM = "AWS4-HMAC-SHA256"
_TERMINATOR = "aws4_request"
_MAX_SKEW = timedelta(minutes=15)
_MAX_EXPIRES = 604800  # a week: the longest AWS lets a presigned request live
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_EXPIRES = re.compile(r"-?[0-9]{1,12}")
# botocore's validate_region_name (a DNS label), minus the empty string. The region ends up
# in ARNs, so it must never carry ':' or '/'.
_REGION = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")
# An Authorization scheme word we may echo back ("Bearer", "AWS4-ECDSA-P256-SHA256").
_SCHEME = re.compile(r"[A-Za-z0-9-]{1,40}")

_HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
_CONTENT_SHA256_MISMATCH = (
    "The provided 'x-amz-content-sha256' header does not match what was computed."
)


@dataclass(frozen=True)
class HttpRequest:
    """What the server saw, framework-independent (see the module docstring).

    Like the request itself, ``headers`` must not change once the request is made: what
    :func:`parse_credential` reads of it is remembered for :func:`verify`.
    """

    method: str
    path: str
    query: str
    # Headers carry session tokens and the body carries secret values: keep both out of reprs.
    headers: Sequence[tuple[str, str]] = field(repr=False)
    body: bytes = field(repr=False)
    # What parse_credential read, for verify (and a repeated parse_credential) to reuse: set
    # here only, never by a caller; not in __init__, equality or the repr, and
    # dataclasses.replace starts its copy without it.
    _read: _Read | None = field(default=None, init=False, repr=False, compare=False)


def received(
    method: str, path: str, query: str, headers: Sequence[tuple[str, str]], body: bytes
) -> HttpRequest:
    """``HttpRequest(method, path, query, headers, body)``, as the HTTP adapter makes one per
    request: the same object, without the frozen __init__'s object.__setattr__ per field
    (five calls, as many as the rest of the adapter makes); the unit tests hold the two
    alike. ``_read`` is the class's None until parse_credential sets it, as after __init__."""
    request = object.__new__(HttpRequest)
    request.__dict__.update(method=method, path=path, query=query, headers=headers, body=body)
    return request


@dataclass(frozen=True)
class SigV4Credential:
    """The signer's claim, parsed from the Authorization header or a presigned query."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    security_token: str | None = field(repr=False)
    presigned: bool
    expires: int | None


def parse_credential(request: HttpRequest) -> SigV4Credential:
    """Read the SigV4 authentication parameters of ``request``, or raise the AWS error."""
    read = _read_of(request)
    if read.credential is not None:
        return read.credential  # parsed before: the same request parses the same way
    headers = read.headers
    query = _query_pairs(request.query) if request.query else []
    authorization = _first(headers.get("authorization"))
    algorithm = _query_param(query, "X-Amz-Algorithm") if query else None
    if authorization is not None and algorithm is not None:
        raise invalid_signature()  # AWS: header or query string, never both
    if authorization is not None:
        credential = _from_authorization_header(authorization, headers)
    elif algorithm is not None:
        credential = _from_query(algorithm, query)
    else:
        raise missing_authentication()
    read.credential = credential
    return credential


def verify(
    request: HttpRequest,
    credential: SigV4Credential,
    secret_access_key: str,
    now: datetime,
    *,
    cache: SigningKeyCache | None = None,
    service: str | None = None,
    allow_unsigned_payload: bool = False,
) -> None:
    """Accept ``request`` as signed by ``credential`` with ``secret_access_key``, or raise.

    The access key id is not part of what is signed: it is bound by the caller passing the
    secret of ``credential.access_key_id`` (and checking ``credential.security_token`` for
    temporary credentials).

    ``service``, when given, is the signing name the endpoint answers for; a scope for any
    other service is refused. ``UNSIGNED-PAYLOAD`` leaves the body unauthenticated, so it
    is refused unless ``allow_unsigned_payload`` (no service Strongroom speaks needs it).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC).replace(microsecond=0)
    signed_at = _parse_amz_date(credential.amz_date)
    _check_clock(credential, signed_at, now)
    if credential.date != credential.amz_date[:8]:
        raise invalid_signature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{_clip(credential.date)}' != '{credential.amz_date[:8]}', "
            f"from '{credential.amz_date}'."
        )
    if service is not None and credential.service != service:
        raise invalid_signature(f"Credential should be scoped to correct service: '{service}'.")

    headers = _read_of(request).headers
    body_hash = hashlib.sha256(request.body).hexdigest()
    payload_hash = _payload_hash(headers, body_hash, allow_unsigned_payload)
    canonical_request = _canonical_request(request, credential, headers, payload_hash)
    date, region, service_name = credential.date, credential.region, credential.service
    string_to_sign = _utf8(
        f"{_ALGORITHM}\n{credential.amz_date}\n{date}/{region}/{service_name}/{_TERMINATOR}\n"
        f"{hashlib.sha256(canonical_request).hexdigest()}"
    )
    if cache is not None:
        signer = cache._signer(secret_access_key, date, region, service_name)
        expected = signer.hexdigest(string_to_sign)
    else:
        key = _derive_signing_key(secret_access_key, date, region, service_name)
        expected = hmac.new(key, string_to_sign, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), _utf8(credential.signature)):
        raise invalid_signature()
    # The signature covers the header's value, not the body: check the body matches it.
    if payload_hash != _UNSIGNED_PAYLOAD and payload_hash.lower() != body_hash:
        raise invalid_signature(_CONTENT_SHA256_MISMATCH)


class SigningKeyCache:
    """Derived signing keys per (secret, date, region, service), LRU-bounded, thread-safe.

    Entries are keyed by a keyed hash (BLAKE2s, a MAC) of the secret under a per-cache
    random salt, so neither the secret nor an offline-guessable hash of it is held, and the
    repr shows sizes only.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._salt = secrets.token_bytes(32)
        self._keys: OrderedDict[tuple[bytes, str, str, str], _Signer] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def signing_key(self, secret_access_key: str, date: str, region: str, service: str) -> bytes:
        return self._signer(secret_access_key, date, region, service).key

    def _signer(self, secret_access_key: str, date: str, region: str, service: str) -> _Signer:
        fingerprint = hashlib.blake2s(_utf8(secret_access_key), key=self._salt).digest()
        entry = (fingerprint, date, region, service)
        with self._lock:
            signer = self._keys.get(entry)
            if signer is not None:
                self._keys.move_to_end(entry)
                self._hits += 1
                return signer
            self._misses += 1
        # Derive outside the lock; a concurrent miss derives the same bytes, harmlessly.
        signer = _Signer(_derive_signing_key(secret_access_key, date, region, service))
        with self._lock:
            self._keys[entry] = signer
            self._keys.move_to_end(entry)
            while len(self._keys) > self._maxsize:
                self._keys.popitem(last=False)
        return signer

    @property
    def hits(self) -> int:
        return self._hits

    @property
    def misses(self) -> int:
        return self._misses

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"SigningKeyCache(size={len(self)}, maxsize={self._maxsize})"


class _Signer:
    """HMAC-SHA256 under one signing key, its keyed state built once (``hmac``'s own
    ``copy``): per message, a copy instead of a new HMAC object. The state is as sensitive as
    the key itself and, like it, never shown: the repr is the class name."""

    __slots__ = ("_keyed", "key")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._keyed = hmac.new(key, digestmod="sha256")

    def hexdigest(self, message: bytes) -> str:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "_Signer()"


class _Read:
    """What parsing read of one request (see ``HttpRequest._read``)."""

    __slots__ = ("credential", "headers", "source")

    def __init__(self, source: Sequence[tuple[str, str]], headers: dict[str, list[str]]) -> None:
        self.source = source
        self.headers = headers
        self.credential: SigV4Credential | None = None


def _read_of(request: HttpRequest) -> _Read:
    read = request._read
    # The identity check keeps a request whose headers were swapped (object.__setattr__)
    # from reusing what was read of the old ones.
    if read is not None and read.source is request.headers:
        return read
    read = _Read(request.headers, _header_map(request.headers))
    object.__setattr__(request, "_read", read)
    return read


# --- parsing -------------------------------------------------------------------------------


def _from_authorization_header(
    authorization: str, headers: dict[str, list[str]]
) -> SigV4Credential:
    words = authorization.split(None, 1)  # the scheme, then its parameters
    scheme = words[0] if words else ""
    rest = words[1] if len(words) > 1 else ""
    if scheme != _ALGORITHM:
        # Echo the scheme word only: a bare token (no scheme) could be someone's credential.
        shown = scheme if rest and _SCHEME.fullmatch(scheme) else ""
        raise incomplete_signature(f"Unsupported AWS 'algorithm': '{shown}'.")

    params: dict[str, str] = {}
    # AWS accepts commas and/or whitespace between the AWS4 parameters. With each comma made
    # a space, str.split() (whitespace as the regex [\s,]+ has it) yields the items between.
    for item in rest.replace(",", " ").split():
        name, equals, value = item.partition("=")
        if not equals:
            raise incomplete_signature(
                f"'{_clip(item)}' not a valid key=value pair (missing equal-sign) "
                "in Authorization header."
            )
        params[name] = value  # AWS: a repeated parameter's last value wins

    amz_date = _first(headers.get("x-amz-date"))
    http_date = _first(headers.get("date"))
    complete = "Credential" in params and "Signature" in params and "SignedHeaders" in params
    if not complete or (amz_date is None and http_date is None):
        missing = [
            f"Authorization header requires '{name}' parameter."
            for name in ("Credential", "Signature", "SignedHeaders")
            if name not in params
        ]
        if amz_date is None and http_date is None:
            missing.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header."
            )
        raise incomplete_signature(" ".join(missing) + f" Authorization={_ALGORITHM}")

    signed_headers = _signed_headers(params["SignedHeaders"])
    if amz_date is not None:
        amz_date = _checked_amz_date(amz_date)
    else:
        assert http_date is not None
        amz_date = _amz_date_from_http_date(http_date)
    return _credential(
        params["Credential"],
        signed_headers=signed_headers,
        signature=params["Signature"],
        amz_date=amz_date,
        security_token=_first(headers.get("x-amz-security-token")),
        presigned=False,
        expires=None,
    )


def _from_query(algorithm: str, query: list[tuple[bytes, bytes]]) -> SigV4Credential:
    if algorithm != _ALGORITHM:
        raise missing_authentication()  # what AWS answers for an unknown X-Amz-Algorithm
    values = {
        name: _query_param(query, name)
        for name in ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date")
    }
    missing = [
        f"AWS query-string parameters must include '{name}'."
        for name, value in values.items()
        if value is None
    ]
    if missing:
        raise incomplete_signature(" ".join(missing) + " Re-examine the query-string parameters.")
    credential, signature, signed_headers, amz_date = values.values()
    assert credential is not None and signature is not None
    assert signed_headers is not None and amz_date is not None

    parsed_headers = _signed_headers(signed_headers)
    amz_date = _checked_amz_date(amz_date)
    return _credential(
        credential,
        signed_headers=parsed_headers,
        signature=signature,
        amz_date=amz_date,
        security_token=_query_param(query, "X-Amz-Security-Token"),
        presigned=True,
        expires=_expires(_query_param(query, "X-Amz-Expires")),
    )


def _signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if "host" not in names and "host" not in (name.lower() for name in names):
        raise invalid_signature(_HOST_NOT_SIGNED)
    return names


def _credential(
    value: str,
    *,
    signed_headers: tuple[str, ...],
    signature: str,
    amz_date: str,
    security_token: str | None,
    presigned: bool,
    expires: int | None,
) -> SigV4Credential:
    parts = value.split("/")
    if len(parts) != 5:
        raise incomplete_signature(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{_clip(value)}'"
        )
    access_key_id, date, region, service, terminator = parts
    if terminator != _TERMINATOR:
        raise invalid_signature(
            "Credential should be scoped with a valid terminator: "
            f"'{_TERMINATOR}', not '{_clip(terminator)}'."
        )
    if not _REGION.fullmatch(region):
        raise invalid_signature(
            f"Credential should be scoped to a valid region, not '{_clip(region)}'."
        )
    # What SigV4Credential(...) makes, without the frozen __init__'s object.__setattr__ per
    # field (that __init__ cost as much as the rest of this function); the unit tests hold
    # the two alike, field for field.
    credential = object.__new__(SigV4Credential)
    credential.__dict__.update(
        access_key_id=access_key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=signed_headers,
        signature=signature,
        amz_date=amz_date,
        security_token=security_token,
        presigned=presigned,
        expires=expires,
    )
    return credential


def _expires(value: str | None) -> int | None:
    if value is None:
        return None  # no X-Amz-Expires: the usual 15-minute window applies
    if not _EXPIRES.fullmatch(value):
        raise incomplete_signature("X-Amz-Expires should be a number")
    seconds = int(value)
    if seconds < 0:
        raise incomplete_signature("X-Amz-Expires must be non-negative")
    if seconds > _MAX_EXPIRES:
        raise incomplete_signature(
            "X-Amz-Expires must be less than a week (in seconds); that is, "
            f"the given X-Amz-Expires must be less than {_MAX_EXPIRES} seconds"
        )
    return seconds


def _bad_date(value: str) -> ServiceError:
    return incomplete_signature(
        f"Date must be in ISO-8601 'basic format'. Got '{_clip(value)}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _checked_amz_date(value: str) -> str:
    _parse_amz_date(value)
    return value


@functools.lru_cache(maxsize=64)  # only valid dates are kept: a refusal raises
def _parse_amz_date(value: str) -> datetime:
    # The regex pins the width: strptime alone would accept "2015830T..." and the like.
    if not _AMZ_DATE.fullmatch(value):
        raise _bad_date(value)
    try:
        # The fields by position (strptime costs more than the rest of the check).
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[11:13]),
            int(value[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        raise _bad_date(value) from None


def _amz_date_from_http_date(value: str) -> str:
    # botocore sends an RFC 1123 'Date' (formatdate: "..., -0000") instead of X-Amz-Date when
    # the request already had one; the string to sign still uses the basic format.
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise _bad_date(value) from None
    if when.tzinfo is None:  # "-0000" parses naive and means UTC
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(_AMZ_DATE_FORMAT)


# --- verification --------------------------------------------------------------------------


def _check_clock(credential: SigV4Credential, signed_at: datetime, now: datetime) -> None:
    # The texts are AWS's; SDKs that correct clock skew match on their prefixes.
    if signed_at > now + _MAX_SKEW:
        raise invalid_signature(
            f"Signature not yet current: {credential.amz_date} is still later than "
            f"{_format(now + _MAX_SKEW)} ({_format(now)} + 15 min.)"
        )
    if credential.presigned and credential.expires is not None:
        if now > signed_at + timedelta(seconds=credential.expires):
            raise invalid_signature("Request has expired")
    elif signed_at < now - _MAX_SKEW:
        raise invalid_signature(
            f"Signature expired: {credential.amz_date} is now earlier than "
            f"{_format(now - _MAX_SKEW)} ({_format(now)} - 15 min.)"
        )


def _payload_hash(headers: dict[str, list[str]], body_hash: str, allow_unsigned: bool) -> str:
    declared = _first(headers.get("x-amz-content-sha256"))
    if declared is None:
        return body_hash
    if declared == _UNSIGNED_PAYLOAD:
        if not allow_unsigned:
            raise invalid_signature("UNSIGNED-PAYLOAD is not accepted here; sign the payload.")
        return declared
    if not _SHA256_HEX.fullmatch(declared):
        # STREAMING-* (aws-chunked) payloads carry per-chunk signatures we do not verify.
        raise incomplete_signature(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value."
        )
    return declared  # checked against the body once the signature holds


def _canonical_request(
    request: HttpRequest,
    credential: SigV4Credential,
    headers: dict[str, list[str]],
    payload_hash: str,
) -> bytes:
    fast = _canonical_request_fast(request, credential, headers, payload_hash)
    if fast is not None:
        return fast
    return _canonical_request_general(request, credential, headers, payload_hash)


def _canonical_request_fast(
    request: HttpRequest,
    credential: SigV4Credential,
    headers: dict[str, list[str]],
    payload_hash: str,
) -> bytes | None:
    """:func:`_canonical_request_general` without per-character work, for the usual shape.

    Taken when every signed header value is printable ASCII with no leading, trailing or
    doubled spaces (trimming leaves it as it is) and no value has ", " or " ," (so one check
    of all the values comma-joined covers each of them), and the whole request is latin-1
    (each part's wire bytes are its latin-1 bytes). Anything else: ``None``.
    """
    names = credential.signed_headers
    values = [",".join(headers.get(name.lower(), ())) for name in names]
    probe = ",".join(values)
    if (
        not (probe.isascii() and probe.isprintable())
        or "  " in probe
        or ", " in probe
        or " ," in probe
        or probe[:1] == " "
        or probe[-1:] == " "
    ):
        return None
    path = request.path
    canonical = "\n".join(
        (
            request.method.upper(),
            "/" if path == "/" else _canonical_uri(path),
            _canonical_query_of(request, credential) if request.query else "",
            "".join(map("{}:{}\n".format, names, values)),
            ";".join(names),
            payload_hash,
        )
    )
    try:
        return canonical.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _canonical_query_of(request: HttpRequest, credential: SigV4Credential) -> str:
    query = _query_pairs(request.query)
    if credential.presigned:
        query = [(name, value) for name, value in query if name != b"X-Amz-Signature"]
    return _canonical_query(query)


def _canonical_request_general(
    request: HttpRequest,
    credential: SigV4Credential,
    headers: dict[str, list[str]],
    payload_hash: str,
) -> bytes:
    header_lines = b"".join(
        _wire_bytes(name)
        + b":"
        + b",".join(_trim_all(value) for value in headers.get(name.lower(), []))
        + b"\n"
        for name in credential.signed_headers
    )
    return b"\n".join(
        (
            _wire_bytes(request.method.upper()),
            _canonical_uri(request.path).encode("ascii"),
            _canonical_query_of(request, credential).encode("ascii"),
            header_lines,
            _wire_bytes(";".join(credential.signed_headers)),
            payload_hash.encode("ascii"),
        )
    )


def _canonical_uri(path: str) -> str:
    # Non-S3 services: normalize, then URI-encode the already-encoded path once more
    # ("%20" -> "%2520"), as botocore's SigV4Auth._normalize_url_path does.
    return quote(_wire_bytes(_remove_dot_segments(path)), safe="/~")


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 5.2.4 plus AWS's collapsing of repeated slashes (botocore.utils.normalize_url_path).
    if not path:
        return "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
        else:
            segments.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and segments else ""
    return first + "/".join(segments) + last


def _canonical_query(pairs: list[tuple[bytes, bytes]]) -> str:
    # Sorted by encoded name, then encoded value (repeated names keep every value).
    encoded = sorted((quote(name, safe="-_.~"), quote(value, safe="-_.~")) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def _trim_all(value: str) -> bytes:
    raw = _wire_bytes(value)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return b" ".join(raw.split())  # not UTF-8: collapse ASCII whitespace only
    # botocore: ' '.join(value.split()) on the str it then sends UTF-8 encoded.
    return " ".join(text.split()).encode("utf-8")


def _derive_signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = _utf8("AWS4" + secret_access_key)
    for part in (date, region, service, _TERMINATOR):
        key = hmac.digest(key, _utf8(part), "sha256")
    return key


# --- small helpers -------------------------------------------------------------------------


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(value)
    return by_name


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None  # AWS reads the first of repeated auth headers


def _query_pairs(query: str) -> list[tuple[bytes, bytes]]:
    """Decoded (name, value) pairs: '+' is a space and %XX a byte (form decoding)."""
    pairs = []
    for part in _wire_bytes(query).split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            pairs.append((_form_unquote(name), _form_unquote(value)))
    return pairs


def _form_unquote(raw: bytes) -> bytes:
    return unquote_to_bytes(raw.replace(b"+", b" "))


def _query_param(pairs: list[tuple[bytes, bytes]], name: str) -> str | None:
    wanted = name.encode("ascii")
    for key, value in pairs:
        if key == wanted:
            return value.decode("utf-8", "replace")  # first value wins, as AWS reads it
    return None


def _wire_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return _utf8(text)


def _utf8(text: str) -> bytes:
    # surrogatepass: encoding never raises, so no UnicodeEncodeError can carry the text
    # (a secret, say) in its args.
    return text.encode("utf-8", "surrogatepass")


def _format(when: datetime) -> str:
    return when.strftime(_AMZ_DATE_FORMAT)


def _clip(text: str, limit: int = 128) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
