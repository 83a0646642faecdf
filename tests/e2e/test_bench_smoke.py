"""The benchmark harness (bench/, `make bench`) in its smoke preset: a few seconds of wrk
against one Strongroom server, through the same code as the full suite."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bench.cli import main


@pytest.fixture
def wrk() -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wrk is not installed: .ci/run installs it (apt-get install -y wrk)")
        pytest.skip("wrk is not installed (apt-get install -y wrk)")


@pytest.mark.usefixtures("wrk")
def test_smoke_run_serves_every_request(tmp_path: Path) -> None:
    result = tmp_path / "smoke.json"
    assert main(["--smoke", "--json", str(result), "--workdir", str(tmp_path / "work")]) == 0
    doc = json.loads(result.read_text())
    runs = doc["runs"]
    assert {run["workload"] for run in runs} == {"get", "put"}
    for run in runs:
        assert run["target"] == "strongroom-w1"
        assert run["rps"] > 0, run
        assert run["errors"] == 0, run
        assert run["cpu_us_per_request"] > 0, run
    assert all(s["errors"] == 0 and s["rps"] > 0 for s in doc["summaries"])
