"""No module in strongroom/ grows past ~600 lines without saying why at its top
(docs/architecture.md, "Module size"): a comment starting ``# long module:`` followed
by the reason, among the first lines of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "strongroom"
LIMIT = 600
MARKER = "# long module:"
TOP = 10  # the marker must be among the first lines, where a reader starts
MIN_REASON = 30  # characters: a reason, not a shrug


def stated_reason(text: str) -> str | None:
    """The reason a module gives for its length, or None."""
    lines = text.splitlines()[:TOP]
    for index, line in enumerate(lines):
        if line.startswith(MARKER):
            reason = [line[len(MARKER) :].strip()]
            for more in lines[index + 1 :]:
                if not more.startswith("# "):
                    break
                reason.append(more[2:].strip())
            return " ".join(reason)
    return None


def long_modules_without_a_reason(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) <= LIMIT:
            continue
        reason = stated_reason(text)
        if reason is None or len(reason) < MIN_REASON:
            found.append(f"{path.relative_to(package.parent)}: {len(text.splitlines())} lines")
    return found


def test_every_long_module_states_why() -> None:
    assert long_modules_without_a_reason(PACKAGE) == []


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("# long module: one specification, kept whole to check it\n", True),
        ("# long module: because\n", False),  # too short to be a reason
        ('"""doc"""\n# long module: one specification, kept whole to check it\n', True),
        ("\n" * TOP + "# long module: one specification, kept whole to check it\n", False),
        ("", False),
    ],
)
def test_the_check_fails_a_long_module_without_a_reason(
    tmp_path: Path, head: str, expected: bool
) -> None:
    module = tmp_path / "strongroom" / "big.py"
    module.parent.mkdir()
    module.write_text(head + "x = 1\n" * (LIMIT + 1), encoding="utf-8")
    short = tmp_path / "strongroom" / "small.py"
    short.write_text("x = 1\n" * LIMIT, encoding="utf-8")
    found = long_modules_without_a_reason(module.parent)
    assert found == (
        [] if expected else [f"strongroom/big.py: {LIMIT + 1 + head.count(chr(10))} lines"]
    )
