"""What `strongroom audit verify` reports: findings, per-writer summaries, the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Findings about records come first: the first bad record is what an operator looks for.
RECORD, DIGEST, COVERAGE = 0, 1, 2


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" | "warning"
    writer: str
    message: str
    path: str | None = None  # relative to the audit directory
    line: int | None = None
    sequence: int | None = None
    rank: int = RECORD

    def where(self) -> str:
        parts = [self.path or f"writer {self.writer}"]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.sequence is not None:
            parts.append(f"sequence {self.sequence}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "writer": self.writer,
            "path": self.path,
            "line": self.line,
            "sequence": self.sequence,
            "message": self.message,
        }


@dataclass
class WriterSummary:
    writer: str
    files: int = 0
    records: int = 0
    first_sequence: int | None = None
    last_sequence: int | None = None
    digests: int = 0
    signed_through: int | None = None  # the last sequence a digest covers
    tail_records: int = 0
    errors: int = 0
    warnings: int = 0

    @property
    def status(self) -> str:
        if self.errors:
            return "FAILED"
        if self.warnings:
            return "ok, unsigned tail"
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "writer": self.writer,
            "files": self.files,
            "records": self.records,
            "firstSequence": self.first_sequence,
            "lastSequence": self.last_sequence,
            "digests": self.digests,
            "signedThrough": self.signed_through,
            "tailRecords": self.tail_records,
            "status": self.status,
        }


@dataclass
class VerifyResult:
    audit_dir: Path
    public_key_fingerprint: str | None
    writers: list[WriterSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    anchor: str = "none"  # where the key checked with came from

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def first_error(self) -> Finding | None:
        errors = self.errors
        return errors[0] if errors else None

    def as_dict(self) -> dict[str, Any]:
        first = self.first_error
        return {
            "ok": self.ok,
            "auditDir": str(self.audit_dir),
            "publicKeyFingerprint": self.public_key_fingerprint,
            "anchor": self.anchor,
            "writers": [w.as_dict() for w in self.writers],
            "firstError": first.as_dict() if first else None,
            "findings": [f.as_dict() for f in self.findings],
        }
