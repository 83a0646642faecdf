# long module: one verification walk over chains, digests and signatures, read top to bottom
# against docs/audit-format.md.
"""``strongroom audit verify``: prove the audit log files are what their writers wrote.

For every writer (format: docs/audit-format.md):

- every record's ``hash`` matches its contents, its ``sequence`` follows the previous
  record's and its ``previousHash`` names the previous record's hash, across files;
- every digest's Ed25519 signature verifies under the public key, digest numbers are
  contiguous and each ``previousDigestHash`` names the digest before it;
- every byte range a digest covers is still there, unchanged (sha256 of the first
  ``byteLength`` bytes), ends at the record the digest names, and the digests together
  cover the chain from its first record without gaps;
- records after the last digest are only an unsigned *tail* (a warning: the writer is
  running, or crashed before its next digest).

Retention removes whole old files and the digests covering only them, so two things are
accepted, and nothing else: the oldest remaining digest may chain to a removed digest,
and the first remaining record may chain to a removed record.

Across writers (docs/audit-format.md, "Writers"):

- digests are periodic even when nothing was logged: two digests of a writer further
  apart than twice its digest interval are a gap in time (the writer stopped signing, or
  digests were removed and the chain re-signed);
- each writer's first digest names the writer before it and that writer's digest: it must
  be there, unchanged;
- the registry of writers in the database (audit/writers.py), outside the audit
  directory, lists every writer, its key and its last digest: a writer deleted whole
  (first, middle or last), digests removed from a writer's end, a digest signed by
  another key than the writer registered, are each an error.

The key digests are checked with is anchored outside the audit directory when it can be
(``--public-key``, ``--fingerprint``, ``--endpoint``: the server's ListPublicKeys, or the
registry's keys); the ``signing-key.pub`` beside the logs alone is a loud warning.

This module walks one writer (``_WriterCheck``); choosing the key is ``audit/anchors.py``,
the checks across writers ``audit/writer_links.py``, what is reported ``audit/findings.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from strongroom.audit import integrity
from strongroom.audit.anchors import FALLBACK_WARNING, anchor_keys
from strongroom.audit.corrections import is_correction
from strongroom.audit.findings import (
    COVERAGE,
    DIGEST,
    RECORD,
    Finding,
    VerifyResult,
    WriterSummary,
)
from strongroom.audit.integrity import DIGESTS, HEX64, INTEGRITY, LOGS, ZERO_HASH
from strongroom.audit.writer_links import UNKNOWN, across_writers
from strongroom.audit.writers import WriterRow

__all__ = ["FALLBACK_WARNING", "Finding", "VerifyResult", "WriterSummary", "verify_audit"]


def verify_audit(
    audit_dir: Path,
    public_key: Ed25519PublicKey | None = None,
    *,
    trusted: dict[str, Ed25519PublicKey] | None = None,
    anchor: str | None = None,
    fingerprint_given: str | None = None,
    registry: list[WriterRow] | None = None,
) -> VerifyResult:
    """Check every writer under ``audit_dir``.

    The keys digests are checked with, first found: ``trusted`` (fingerprint -> key, e.g.
    from the server's ListPublicKeys; ``anchor`` says where from), ``public_key`` (a copy
    kept somewhere safe), the ``registry``'s keys, else the ``signing-key.pub`` beside
    the logs (a loud warning). ``fingerprint_given`` (recorded outside) must be the
    fingerprint of the key used. ``registry``: the writers the database lists."""
    chosen = anchor_keys(audit_dir, public_key, trusted, anchor, fingerprint_given, registry)
    keys = chosen.keys
    result = VerifyResult(audit_dir, chosen.fingerprint, anchor=chosen.source)
    result.findings.extend(chosen.findings)
    rows = {row.writer: row for row in registry or ()}
    checks: dict[str, _WriterCheck] = {}
    for writer in integrity.writers(audit_dir):
        row = rows.get(writer)
        check = _WriterCheck(audit_dir, writer, keys, row.fingerprint if row else None)
        summary = check.run()
        checks[writer] = check
        result.writers.append(summary)
        ordered = sorted(enumerate(check.findings), key=lambda item: (item[1].rank, item[0]))
        result.findings.extend(finding for _, finding in ordered)
    across = across_writers(checks, registry)
    result.findings.extend(across)
    for summary in result.writers:
        summary.errors += sum(f.writer == summary.writer for f in across)
    return result


# A digest may be late by a busy writer thread or a loaded machine: a gap is more than two
# periods and this much.
GAP_GRACE = 60.0


@dataclass
class _Entry:
    """One ``logFiles`` entry of a digest, and what the file says about it."""

    digest: int
    digest_path: str
    name: str
    start: int
    end: int
    first: int
    last: int
    last_hash: str
    sha256: str
    usable: bool = True  # the file is there, long enough and unchanged in this range
    found_first: int | None = None  # sequence of the record starting at ``start``
    found_last: tuple[int, str] | None = None  # sequence and hash of the record ending at ``end``


class _WriterCheck:
    def __init__(
        self,
        audit_dir: Path,
        writer: str,
        keys: dict[str, Ed25519PublicKey] | None,
        registered_fingerprint: str | None,
    ) -> None:
        self.audit_dir = audit_dir
        self.writer = writer
        self.keys = keys
        self.registered_fingerprint = registered_fingerprint
        self.findings: list[Finding] = []
        # For the checks across writers: digest number -> its hash, the link of digest 1.
        self.digest_hashes: dict[int, str] = {}
        self.link: Any = UNKNOWN
        self.trimmed = False  # retention removed its oldest digests
        self.version = 1
        self.summary = WriterSummary(writer)
        # chain state
        self.expected: int | None = None
        self.previous_hash: str | None = None
        # eventID -> (requestID, corrected yet): corrections pair with one earlier record
        self.events: dict[str, tuple[Any, bool]] = {}

    def run(self) -> WriterSummary:
        # Digests first: a writer still running only adds files and bytes after them.
        entries = self._digests()
        files = self._log_files()
        present = {path.name for path in files}
        for entry in entries:
            if entry.name not in present:
                entry.usable = False
                self._add(
                    "error",
                    f"log file {entry.name} (sequences {entry.first}..{entry.last}, signed by "
                    f"digest {entry.digest}) is missing: it was deleted",
                    rank=RECORD,
                    path=integrity.log_path(self.writer, entry.name),
                    sequence=entry.first,
                )
        by_file: dict[str, list[_Entry]] = {}
        for entry in entries:
            by_file.setdefault(entry.name, []).append(entry)
        tail_at = (entries[-1].name, entries[-1].end) if entries else None
        for index, path in enumerate(files):
            self._scan(path, by_file.get(path.name, []), tail_at, last=index == len(files) - 1)
        self._coverage(entries)
        self.summary.files = len(files)
        self.summary.errors = sum(f.severity == "error" for f in self.findings)
        self.summary.warnings = sum(f.severity == "warning" for f in self.findings)
        return self.summary

    def _add(
        self,
        severity: str,
        message: str,
        *,
        rank: int,
        path: str | None = None,
        line: int | None = None,
        sequence: int | None = None,
    ) -> None:
        self.findings.append(Finding(severity, self.writer, message, path, line, sequence, rank))

    # --- files ---------------------------------------------------------------------------------

    def _log_files(self) -> list[Path]:
        directory = self.audit_dir / LOGS / self.writer
        if not directory.is_dir():
            return []
        files = []
        for path in sorted(directory.iterdir()):
            if integrity.LOG_NAME.match(path.name) and path.is_file():
                files.append(path)
            else:
                self._add(
                    "error",
                    "unexpected file in a writer's log directory",
                    rank=RECORD,
                    path=self._rel(path),
                )
        return files

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.audit_dir))

    # --- digests -------------------------------------------------------------------------------

    def _digests(self) -> list[_Entry]:
        directory = self.audit_dir / DIGESTS / self.writer
        if not directory.is_dir():
            return []
        entries: list[_Entry] = []
        covered_to: dict[str, int] = {}
        previous: tuple[int, dict[str, Any]] | None = None
        for path in sorted(directory.iterdir()):
            if path.name.startswith("."):
                continue  # an interrupted atomic write
            rel = self._rel(path)
            match = integrity.DIGEST_NAME.match(path.name)
            if match is None or not path.is_file():
                self._add("error", "unexpected file among the digests", rank=DIGEST, path=rel)
                continue
            number = int(match.group(1))
            digest = self._parse_digest(path, rel, number)
            if digest is None:
                continue
            self.summary.digests += 1
            if not self._signature_ok(digest, rel):
                continue  # nothing a forged digest says is trusted
            self.digest_hashes[number] = integrity.digest_hash(digest)
            self.version = max(self.version, int(digest["version"]))
            if number == 1 and digest["version"] >= 2:
                self.link = digest.get("previousWriter")
            elif previous is None:
                self.trimmed = True
            if previous is None:
                if number == 1 and digest["previousDigestHash"] != ZERO_HASH:
                    self._add(
                        "error",
                        "digest 1 must have a zero previousDigestHash",
                        rank=DIGEST,
                        path=rel,
                    )
                # number > 1: older digests were removed by retention (checked against the
                # records in _coverage).
            elif number != previous[0] + 1:
                missing = (
                    f"digest {previous[0] + 1}"
                    if number == previous[0] + 2
                    else f"digests {previous[0] + 1}..{number - 1}"
                )
                self._add(
                    "error",
                    f"{missing} missing: digest {number} follows digest {previous[0]}",
                    rank=DIGEST,
                    path=rel,
                )
            elif digest["previousDigestHash"] != integrity.digest_hash(previous[1]):
                self._add(
                    "error",
                    f"previousDigestHash does not match digest {previous[0]}: a digest was "
                    "replaced",
                    rank=DIGEST,
                    path=rel,
                )
            # After the chain's findings: a missing digest is named as such first. The
            # start meets the previous end only for a digest that directly follows it.
            adjacent = previous is not None and number == previous[0] + 1
            self._timing(digest, previous[1] if previous and adjacent else None, rel)
            previous = (number, digest)
            for item in digest["logFiles"]:
                name = item["path"].rsplit("/", 1)[-1]
                start = covered_to.get(name, 0)
                entry = _Entry(
                    number,
                    rel,
                    name,
                    start,
                    item["byteLength"],
                    item["firstSequence"],
                    item["lastSequence"],
                    item["lastHash"],
                    item["sha256"],
                )
                if entry.end <= start or entry.last < entry.first:
                    entry.usable = False
                    self._add(
                        "error",
                        f"digest {number} covers an empty or shrinking range of {name}",
                        rank=DIGEST,
                        path=rel,
                    )
                covered_to[name] = max(start, entry.end)
                entries.append(entry)
        return entries

    def _timing(self, digest: dict[str, Any], previous: dict[str, Any] | None, rel: str) -> None:
        """Digests are periodic: none may cover more than twice the writer's interval, and
        each starts where the one before it ended."""
        interval = digest.get("digestIntervalSeconds")
        if not isinstance(interval, int | float) or isinstance(interval, bool):
            return  # a version 1 digest: written only when something was logged
        start = _seconds(digest["digestStartTime"])
        end = _seconds(digest["digestEndTime"])
        if start is None or end is None:
            return
        if previous is not None and previous["digestEndTime"] != digest["digestStartTime"]:
            self._add(
                "error",
                f"digest {digest['digestSequence']} starts at {digest['digestStartTime']}, not "
                f"where digest {previous['digestSequence']} ended "
                f"({previous['digestEndTime']})",
                rank=DIGEST,
                path=rel,
            )
        if end - start > 2 * interval + GAP_GRACE:
            self._add(
                "error",
                f"time gap: no digest from {digest['digestStartTime']} to "
                f"{digest['digestEndTime']} ({end - start:.0f} s; this writer signs every "
                f"{interval:g} s): it stopped signing for longer than a period, or digests "
                "were removed and the rest re-signed",
                rank=DIGEST,
                path=rel,
            )

    def _parse_digest(self, path: Path, rel: str, number: int) -> dict[str, Any] | None:
        try:
            digest = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as unreadable:
            self._add("error", f"unreadable digest: {unreadable}", rank=DIGEST, path=rel)
            return None
        problem = _digest_shape_problem(digest, self.writer, number)
        if problem:
            self._add("error", f"malformed digest: {problem}", rank=DIGEST, path=rel)
            return None
        return digest  # type: ignore[no-any-return]

    def _signature_ok(self, digest: dict[str, Any], rel: str) -> bool:
        if self.keys is None:
            return True  # reported once for the whole run
        named = digest["publicKeyFingerprint"]
        registered = self.registered_fingerprint
        if registered is not None and named != registered:
            self._add(
                "error",
                f"signed by another key (fingerprint {named[:16]}..., the registry says this "
                f"writer signs with {registered[:16]}...)",
                rank=DIGEST,
                path=rel,
            )
            return False
        key = self.keys.get(named)
        if key is None:
            expected = ", ".join(f"{known[:16]}..." for known in sorted(self.keys)) or "none"
            self._add(
                "error",
                f"signed by another key (fingerprint {named[:16]}..., expected {expected})",
                rank=DIGEST,
                path=rel,
            )
            return False
        try:
            signature = base64.b64decode(digest["signature"], validate=True)
            key.verify(signature, integrity.signing_input(digest))
        except (InvalidSignature, binascii.Error, ValueError):
            self._add(
                "error",
                "the signature does not verify: the digest was forged or altered",
                rank=DIGEST,
                path=rel,
            )
            return False
        return True

    # --- records -------------------------------------------------------------------------------

    def _scan(
        self,
        path: Path,
        entries: list[_Entry],
        tail_at: tuple[str, int] | None,
        *,
        last: bool,
    ) -> None:
        rel = self._rel(path)
        data = path.read_bytes()
        size = len(data)
        self._check_prefixes(data, entries, rel)
        starts = {e.start: e for e in entries if e.usable}
        ends = {e.end: e for e in entries if e.usable}
        if tail_at is None or path.name > tail_at[0]:
            tail_from = 0
        elif path.name == tail_at[0]:
            tail_from = tail_at[1]
        else:
            tail_from = size + 1  # none of it: it must be covered completely
            covered = max((e.end for e in entries), default=0)
            if covered < size:
                self._add(
                    "error",
                    f"bytes {covered}..{size} are signed by no digest although later records "
                    "are: records were appended to a finished file",
                    rank=COVERAGE,
                    path=rel,
                )
        if size == 0:
            if not last:
                self._add("error", "empty log file inside the chain", rank=RECORD, path=rel)
            return
        named_first = int(integrity.LOG_NAME.match(path.name).group(1))  # type: ignore[union-attr]
        offset, line = 0, 0
        while offset < size:
            newline = data.find(b"\n", offset)
            if newline == -1:
                self._partial_line(rel, line + 1, offset, tail_from, last)
                break
            line += 1
            end = newline + 1
            record = self._record(data[offset:newline], rel, line)
            if record is not None:
                sequence, hashed = record
                if line == 1 and sequence != named_first:
                    self._add(
                        "error",
                        f"the file name says it starts at sequence {named_first}",
                        rank=RECORD,
                        path=rel,
                        line=line,
                        sequence=sequence,
                    )
                if offset in starts:
                    starts[offset].found_first = sequence
                if end in ends:
                    ends[end].found_last = (sequence, hashed)
            if offset >= tail_from:
                self.summary.tail_records += 1
            offset = end

    def _check_prefixes(self, data: bytes, entries: list[_Entry], rel: str) -> None:
        hasher = hashlib.sha256()
        hashed_to = 0
        for entry in sorted(entries, key=lambda e: e.end):
            if not entry.usable:
                continue
            if entry.end > len(data):
                entry.usable = False
                self._add(
                    "error",
                    f"the file was truncated: digest {entry.digest} signed its first "
                    f"{entry.end} bytes (through sequence {entry.last}), it has {len(data)}",
                    rank=DIGEST,  # a bad record found in it is the better pointer
                    path=rel,
                    sequence=entry.last,
                )
                continue
            hasher.update(data[hashed_to : entry.end])
            hashed_to = entry.end
            if hasher.copy().hexdigest() != entry.sha256:
                entry.usable = False
                self._add(
                    "error",
                    f"the first {entry.end} bytes differ from what digest {entry.digest} "
                    f"signed (sequences up to {entry.last}): the file was altered",
                    rank=DIGEST,  # a bad record found in it is the better pointer
                    path=rel,
                )

    def _partial_line(self, rel: str, line: int, offset: int, tail_from: int, last: bool) -> None:
        if last and offset >= tail_from:
            self._add(
                "warning",
                "the last line is incomplete: a write cut short (a crash), not acknowledged",
                rank=COVERAGE,
                path=rel,
                line=line,
            )
        else:
            self._add(
                "error",
                "incomplete line (no newline): the file was truncated or edited",
                rank=RECORD,
                path=rel,
                line=line,
                sequence=self.expected,
            )

    def _record(self, raw: bytes, rel: str, line: int) -> tuple[int, str] | None:
        """Check one record against its own hash and the chain; its sequence and hash."""
        expected = self.expected

        def bad(message: str, sequence: int | None) -> None:
            self._add("error", message, rank=RECORD, path=rel, line=line, sequence=sequence)

        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            bad("not valid JSON: the record was edited", expected)
            self._advance(None, None)
            return None
        marks = event.pop(INTEGRITY, None) if isinstance(event, dict) else None
        problem = _integrity_problem(marks, self.writer)
        if problem:
            bad(problem, expected)
            self._advance(None, None)
            return None
        assert isinstance(marks, dict)
        sequence: int = marks["sequence"]
        previous: str = marks["previousHash"]
        hashed: str = marks["hash"]
        self.summary.records += 1
        if self.summary.first_sequence is None:
            self.summary.first_sequence = sequence
        self.summary.last_sequence = sequence
        if integrity.record_hash(previous, integrity.canonical(event)) != hashed:
            bad("the hash does not match the record's contents: the record was edited", sequence)
        self._pair(event, rel, line, sequence)
        if expected is None:
            if sequence == 1 and previous != ZERO_HASH:
                bad("the first record must have a zero previousHash", sequence)
            # sequence > 1: the records before it were removed by retention; _coverage checks
            # that no digest still covers them.
        elif sequence > expected:
            gap = f"{expected}" if sequence == expected + 1 else f"{expected}..{sequence - 1}"
            where = " at the end of the previous file" if line == 1 else ""
            bad(
                f"expected sequence {expected}, found {sequence}: record(s) {gap} are missing"
                f"{where} (deleted, or moved out of order)",
                sequence,
            )
        elif sequence < expected:
            bad(
                f"expected sequence {expected}, found {sequence}: a record out of order or "
                "repeated",
                sequence,
            )
        elif self.previous_hash is not None and previous != self.previous_hash:
            bad(
                f"previousHash does not match the hash of sequence {sequence - 1}: a record "
                "before it was replaced",
                sequence,
            )
        self._advance(sequence, hashed)
        return sequence, hashed

    def _pair(self, event: dict[str, Any], rel: str, line: int, sequence: int) -> None:
        """One record per event, plus at most one correction after it with the same
        eventID and requestID (audit/corrections.py)."""
        event_id = event.get("eventID")
        if not isinstance(event_id, str):
            return
        seen = self.events.get(event_id)
        if not is_correction(event):
            if seen is not None:
                self._add(
                    "error",
                    f"a second record of event {event_id}: one request, two outcomes",
                    rank=RECORD,
                    path=rel,
                    line=line,
                    sequence=sequence,
                )
            self.events[event_id] = (event.get("requestID"), False)
            return
        if seen is None:
            # The original may have been removed by retention (this writer's first records
            # are gone); otherwise a correction of nothing is an edit.
            trimmed = (self.summary.first_sequence or 1) > 1
            self._add(
                "warning" if trimmed else "error",
                f"a correction of event {event_id}, which this writer never recorded",
                rank=RECORD,
                path=rel,
                line=line,
                sequence=sequence,
            )
        elif seen[1] or seen[0] != event.get("requestID"):
            self._add(
                "error",
                f"a correction of event {event_id} that does not pair with it (a second "
                "correction, or another request's)",
                rank=RECORD,
                path=rel,
                line=line,
                sequence=sequence,
            )
        self.events[event_id] = (event.get("requestID"), True)

    def _advance(self, sequence: int | None, hashed: str | None) -> None:
        """Move past a record; after an unreadable one, assume it held the expected
        sequence and skip the next link check, so one bad line is one finding."""
        if sequence is None:
            self.expected = None if self.expected is None else self.expected + 1
        else:
            self.expected = sequence + 1
        self.previous_hash = hashed

    # --- coverage ------------------------------------------------------------------------------

    def _coverage(self, entries: list[_Entry]) -> None:
        """The digests, in order, sign every record from the first one on, without gaps."""
        first_record = self.summary.first_sequence
        if entries and first_record is not None:
            first_digest = entries[0].digest
            # Digests before the first that signs records may be empty ones (periodic).
            if first_record == 1 and any(
                number not in self.digest_hashes for number in range(1, first_digest)
            ):
                self._add(
                    "error",
                    f"digests 1..{first_digest - 1} are missing although the records they "
                    "signed are still here",
                    rank=DIGEST,
                    path=entries[0].digest_path,
                )
        want = first_record
        for entry in entries:
            if not entry.usable:
                want = entry.last + 1
                continue
            if want is not None and entry.first != want:
                self._add(
                    "error",
                    f"digest {entry.digest} signs {entry.name} from sequence {entry.first}, "
                    f"but the signed records so far end at {want - 1}",
                    rank=COVERAGE,
                    path=entry.digest_path,
                    sequence=entry.first,
                )
            elif entry.found_first != entry.first:
                self._add(
                    "error",
                    f"digest {entry.digest} says sequence {entry.first} starts at byte "
                    f"{entry.start} of {entry.name}; the file disagrees",
                    rank=COVERAGE,
                    path=entry.digest_path,
                    sequence=entry.first,
                )
            if entry.found_last != (entry.last, entry.last_hash):
                self._add(
                    "error",
                    f"digest {entry.digest} says byte {entry.end} of {entry.name} ends sequence "
                    f"{entry.last} with hash {entry.last_hash[:16]}...; the file disagrees",
                    rank=COVERAGE,
                    path=entry.digest_path,
                    sequence=entry.last,
                )
            want = entry.last + 1
        if entries:
            self.summary.signed_through = entries[-1].last
        tail = self.summary.tail_records
        if tail:
            last = self.summary.last_sequence
            since = f"after digest {entries[-1].digest}" if entries else "and no digest was written"
            self._add(
                "warning",
                f"{tail} record(s) up to sequence {last} are not signed yet ({since}): "
                "expected while the writer runs or after a crash (or a newest digest was "
                "removed)",
                rank=COVERAGE,
            )


def _integrity_problem(marks: Any, writer: str) -> str | None:
    if not isinstance(marks, dict):
        return f"no {INTEGRITY} member: not a record of this log"
    sequence = marks.get("sequence")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        return f"{INTEGRITY}.sequence is not a positive integer"
    for name in ("previousHash", "hash"):
        value = marks.get(name)
        if not isinstance(value, str) or not HEX64.match(value):
            return f"{INTEGRITY}.{name} is not 64 hex digits"
    if marks.get("writer") != writer:
        return f"the record names writer {marks.get('writer')!r}, not this directory's"
    return None


def _seconds(text: Any) -> float | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _digest_shape_problem(digest: Any, writer: str, number: int) -> str | None:
    if not isinstance(digest, dict):
        return "not a JSON object"
    if digest.get("version") not in integrity.DIGEST_VERSIONS:
        return f"unknown version {digest.get('version')!r}"
    if digest.get("writer") != writer:
        return f"names writer {digest.get('writer')!r}, not this directory's"
    if digest.get("digestSequence") != number:
        return f"digestSequence {digest.get('digestSequence')!r} does not match its file name"
    if digest.get("signatureAlgorithm") != integrity.SIGNATURE_ALGORITHM:
        return f"unsupported signatureAlgorithm {digest.get('signatureAlgorithm')!r}"
    for name in ("previousDigestHash", "publicKeyFingerprint"):
        if not isinstance(digest.get(name), str) or not HEX64.match(digest[name]):
            return f"{name} is not 64 hex digits"
    for name in ("digestStartTime", "digestEndTime", "signature"):
        if not isinstance(digest.get(name), str):
            return f"{name} is missing"
    files = digest.get("logFiles")
    if not isinstance(files, list):
        return "logFiles is not a list"
    for item in files:
        if not isinstance(item, dict):
            return "a logFiles entry is not an object"
        path = item.get("path")
        prefix = f"{LOGS}/{writer}/"
        if (
            not isinstance(path, str)
            or not path.startswith(prefix)
            or not integrity.LOG_NAME.match(path[len(prefix) :])
        ):
            return f"logFiles path {path!r} is not one of this writer's log files"
        for name in ("firstSequence", "lastSequence", "byteLength"):
            value = item.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return f"logFiles {name} is not a non-negative integer"
        for name in ("lastHash", "sha256"):
            if not isinstance(item.get(name), str) or not HEX64.match(item[name]):
                return f"logFiles {name} is not 64 hex digits"
    return None
