"""The audit trail's on-disk format, v1 (docs/audit-format.md): where the files live, the
canonical form of a record, how records chain and what a digest signs.

Everything that writes or checks the files (the log, verify, tail) goes through these
few functions, so the writer and the verifier cannot drift apart.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

LOGS = "logs"
DIGESTS = "digests"
PUBLIC_KEY_FILE = "signing-key.pub"
INTEGRITY = "strongroomIntegrity"
ZERO_HASH = "0" * 64
DIGEST_VERSION = 2  # 2: periodic even when idle, previousWriter, digestIntervalSeconds
DIGEST_VERSIONS = (1, 2)  # what verify reads
SIGNATURE_ALGORITHM = "Ed25519"

LOG_NAME = re.compile(r"^(\d{12})\.jsonl$")
DIGEST_NAME = re.compile(r"^(\d{8})\.json$")
WRITER_NAME = re.compile(r"^\d{8}T\d{6}Z-\d+-[0-9a-f]{8}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def canonical(value: Any) -> bytes:
    """The bytes a record hash or a digest signature covers: sorted keys, no spaces."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


# One pass is trusted only for plain JSON values (and tuples, UUIDs, enums, which orjson
# writes as their JSON form); these types go to the missing ``default``, so are refused.
# (The log's hot path makes that one pass itself: see log.py's _record.)
PLAIN_ONLY = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def normalize(event: Any) -> bytes:
    """``canonical(event)`` exactly as a verifier will recompute it from the written line.

    Round-tripping through JSON first turns datetimes, tuples and the like into the plain
    JSON values a reader gets back, so the hash never depends on Python types.

    For an event of plain JSON values the round trip changes nothing, so one sorted pass
    gives the same bytes (tests/unit/test_audit_integrity.py compares the two). Where it
    could differ (a dataclass's fields are written in declaration order, not sorted) or
    where the reasoning is less plain (datetimes, subclasses of str, int, dict, list),
    orjson refuses the value and the round trip answers. (``orjson.Fragment``, raw JSON
    written verbatim, would defeat this; it has no place in an event.)
    """
    try:
        return orjson.dumps(event, option=PLAIN_ONLY)
    except orjson.JSONEncodeError:
        return canonical(orjson.loads(orjson.dumps(event)))


def record_hash(previous_hash: str, canonical_event: bytes) -> str:
    """SHA-256 over ``<previous hash>\\n<canonical event>`` (fed in two parts: the event is
    not copied to put the previous hash in front of it)."""
    hasher = hashlib.sha256(previous_hash.encode("ascii") + b"\n")
    hasher.update(canonical_event)
    return hasher.hexdigest()


def record_line(
    canonical_event: bytes, writer: str, sequence: int, previous: str, hashed: str
) -> bytes:
    """The JSON line of a record: the event's members plus ``strongroomIntegrity``.
    (The log writes the same bytes through :class:`RecordLines`.)"""
    integrity = orjson.dumps(
        {"writer": writer, "sequence": sequence, "previousHash": previous, "hash": hashed}
    )
    if canonical_event == b"{}":
        return b'{"' + INTEGRITY.encode() + b'":' + integrity + b"}\n"
    return canonical_event[:-1] + b',"' + INTEGRITY.encode() + b'":' + integrity + b"}\n"


class RecordLines:
    """The lines of one writer's records, as :func:`record_line` writes them and chained as
    :func:`record_hash` says, made for a whole batch at once (one call, not two or three
    per record): what names the writer is serialized once, the hashes stay ASCII bytes from
    one record to the next. The tail is what ``orjson.dumps({"writer": w, "sequence": n,
    "previousHash": p, "hash": h})`` writes for an int ``n`` and hex digests ``p`` and
    ``h``: the log's hashes are hexdigest()s (or ZERO_HASH), with nothing to escape
    (tests/unit/test_audit_integrity.py compares with record_line and record_hash)."""

    __slots__ = ("_after_members", "_alone")

    def __init__(self, writer: str) -> None:
        head = b'"' + INTEGRITY.encode() + b'":{"writer":' + orjson.dumps(writer)
        self._after_members = b"," + head + b',"sequence":'
        self._alone = b"{" + head + b',"sequence":'  # an event without members: ``{}``

    def batch(
        self, canonical_events: list[bytes], sequence: int, previous: str
    ) -> tuple[bytes, str]:
        """The lines of ``canonical_events``, numbered after ``sequence`` and chained to
        ``previous`` (the hash of record ``sequence``), joined; and the last one's hash."""
        parts: list[bytes] = []
        extend = parts.extend
        after_members = self._after_members
        sha256 = hashlib.sha256
        last = previous.encode("ascii")
        for event in canonical_events:
            sequence += 1
            # record_hash's input made in one piece: a copy of the event (about a kilobyte)
            # costs less than a second call into the hash object.
            hashed = sha256(last + b"\n" + event).hexdigest().encode("ascii")
            tail = b'%d,"previousHash":"%s","hash":"%s"}}\n' % (sequence, last, hashed)
            if event == b"{}":
                extend((self._alone, tail))
            else:
                # A slice copies the event once more, yet costs less than a memoryview's.
                extend((event[:-1], after_members, tail))
            last = hashed
        return b"".join(parts), last.decode("ascii")


def digest_hash(digest: Any) -> str:
    """What the next digest's ``previousDigestHash`` holds (the signature included)."""
    return hashlib.sha256(canonical(digest)).hexdigest()


def signing_input(digest: dict[str, Any]) -> bytes:
    return canonical({k: v for k, v in digest.items() if k != "signature"})


def new_writer_id(now: datetime) -> str:
    """``<UTC start>-<pid>-<8 random hex>``: sorts by start time, never collides."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}-{secrets.token_hex(4)}"


def log_file_name(first_sequence: int) -> str:
    return f"{first_sequence:012d}.jsonl"


def digest_file_name(digest_sequence: int) -> str:
    return f"{digest_sequence:08d}.json"


def log_path(writer: str, name: str) -> str:
    """A log file's path as digests name it (relative to the audit directory)."""
    return f"{LOGS}/{writer}/{name}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_files(audit_dir: Path, writer: str) -> list[Path]:
    """A writer's log files in chain order (the names are zero-padded first sequences)."""
    directory = audit_dir / LOGS / writer
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if LOG_NAME.match(p.name))


def writers(audit_dir: Path) -> list[str]:
    """Every writer with log files or digests, oldest first."""
    names: set[str] = set()
    for kind in (LOGS, DIGESTS):
        base = audit_dir / kind
        if base.is_dir():
            names.update(p.name for p in base.iterdir() if p.is_dir())
    return sorted(names)
