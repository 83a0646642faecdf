"""The checks across writers: each writer's link to the one before it, and the registry of
writers in the database against the files (docs/audit-format.md, "Verification")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from strongroom.audit import integrity
from strongroom.audit.findings import DIGEST, Finding
from strongroom.audit.writers import WriterRow

UNKNOWN: Any = object()  # a writer whose first digest is not there to say its link


class LinkedWriter(Protocol):
    """What one writer's check found that the checks across writers need."""

    link: Any  # digest 1's previousWriter (a dict, or None), or UNKNOWN
    digest_hashes: dict[int, str]  # digest number -> its hash, for the digests that verified
    trimmed: bool  # retention removed its oldest digests
    version: int  # the newest digest format it wrote


def across_writers(
    checks: Mapping[str, LinkedWriter], registry: list[WriterRow] | None
) -> list[Finding]:
    """The writers' links to each other, and the registry's list against the files."""
    found: list[Finding] = []

    def error(writer: str, message: str) -> None:
        found.append(Finding("error", writer, message, rank=DIGEST))

    rows = {row.writer: row for row in registry or ()}
    for writer, check in checks.items():
        link = check.link
        if link is UNKNOWN:
            continue  # digest 1 is gone (retention) or unreadable (reported)
        row = rows.get(writer)
        if link is None:
            if row is not None and row.previous_writer is not None:
                error(
                    writer,
                    f"the first digest names no writer before it; the registry says "
                    f"{row.previous_writer} was",
                )
            continue
        assert isinstance(link, dict)
        previous = str(link.get("writer"))
        if row is not None and row.previous_writer != previous:
            error(
                writer,
                f"the first digest names {previous} as the writer before it; the registry "
                f"says {row.previous_writer}",
            )
        before = checks.get(previous)
        retired = rows.get(previous) is not None and rows[previous].retired is not None
        if before is None:
            if not retired:
                error(
                    writer,
                    f"writer {previous}, which this writer's first digest names as the one "
                    "before it, is missing: its logs and digests were deleted",
                )
            continue
        number, hashed = link.get("digestSequence"), link.get("digestHash")
        if isinstance(number, int) and number in before.digest_hashes:
            if before.digest_hashes[number] != hashed:
                error(
                    writer,
                    f"the first digest names digest {number} of {previous} with another hash: "
                    "that digest was replaced",
                )
        elif isinstance(number, int) and not before.trimmed:
            error(
                writer,
                f"digest {number} of writer {previous}, which this writer's first digest "
                "names, is missing: it was deleted",
            )
    if registry is None:
        return found
    for row in registry:
        listed = checks.get(row.writer)
        if listed is None:
            if row.retired is None:
                error(
                    row.writer,
                    f"writer {row.writer} (registered #{row.ordinal}, started "
                    f"{integrity.iso(row.started)} on {row.node}) is missing: its logs and "
                    "digests were deleted",
                )
            continue
        last = row.last_digest_sequence
        if last is not None and last not in listed.digest_hashes:
            newest = max(listed.digest_hashes, default=0)
            if newest < last:
                error(
                    row.writer,
                    f"the registry says this writer wrote digest {last}; the newest here is "
                    f"{newest or 'none'}: digests were removed from its end",
                )
        elif last is not None and listed.digest_hashes.get(last) != row.last_digest_hash:
            error(
                row.writer,
                f"digest {last} differs from the one the registry recorded: it was replaced",
            )
    for writer, check in checks.items():
        if writer not in rows and check.version >= 2:
            error(
                writer,
                "this writer is not in the registry: its files were not written by this deployment",
            )
    return found
