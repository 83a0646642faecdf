"""Staging labels: the pure rules for moving them between versions.

A mapping ``stage -> version id`` holds a secret's labels; keeping it a mapping makes
"a label is on at most one version" true by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
PENDING = "AWSPENDING"
MAX_LABELS = 20  # staging labels attached across all versions of one secret (AWS quota)

Stages = Mapping[str, str]


def attach(
    stages: Stages, version_id: str, labels: Iterable[str], *, new_value: bool = False
) -> dict[str, str]:
    """Put ``labels`` on ``version_id``, taking them from whichever version had them.

    AWSCURRENT leaving a version hands that version AWSPREVIOUS, which the previous
    AWSPREVIOUS holder loses. When a new value (PutSecretValue, UpdateSecret) takes
    AWSCURRENT from a version that also carries AWSPENDING, that version keeps only
    AWSPREVIOUS, as AWS does: its rotation is over.
    """
    moved = dict(stages)
    labels = list(labels)
    if CURRENT in labels:
        old = moved.get(CURRENT)
        if old is not None and old != version_id:
            moved[PREVIOUS] = old
            if new_value and moved.get(PENDING) == old and PENDING not in labels:
                del moved[PENDING]
    for label in labels:
        moved[label] = version_id
    return moved


def detach(stages: Stages, label: str) -> dict[str, str]:
    moved = dict(stages)
    moved.pop(label, None)
    return moved


def labels_of(stages: Stages, version_id: str) -> list[str]:
    return sorted(label for label, holder in stages.items() if holder == version_id)


def by_version(stages: Stages) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for label, holder in stages.items():
        grouped.setdefault(holder, []).append(label)
    return {version: sorted(labels) for version, labels in grouped.items()}
