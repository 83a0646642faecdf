"""The layering of docs/architecture.md holds: import-linter's contract (pyproject.toml)
is kept, and it names the same layers, in the same order, as the document's table."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    assert contract["type"] == "layers"
    return [" | ".join(part.strip() for part in layer.split("|")) for layer in contract["layers"]]


def documented_layers() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    cells = [
        re.split(r"(?<!\\)\|", line)[2]  # the package(s) column; "\|" separates siblings
        for line in text.splitlines()
        if re.match(r"\| \d+", line)
    ]
    return [" | ".join(re.findall(r"`(strongroom[\w.]*)`", cell)) for cell in cells]


def test_the_documented_layers_are_the_enforced_ones() -> None:
    assert documented_layers() == contract_layers()
    assert contract_layers()[0] == "strongroom.cli"


def test_no_module_imports_a_layer_above_its_own() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:]
