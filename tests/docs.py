"""Running documentation as written: the code blocks of a Markdown page, the shell commands
in them, and the environment the README's first steps give a shell."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.server import ServerProcess

BIN = Path(sys.executable).parent


def code_blocks(section: str) -> list[tuple[str, str]]:
    """(language, text) of each fenced block, in order."""
    return re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL)


def shell_commands(block: str) -> list[str]:
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip()]


def doc_env(server: ServerProcess) -> dict[str, str]:
    """This process's environment without AWS or Strongroom settings, with the venv's
    ``aws`` and ``python`` first on PATH and no AWS config files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRONGROOM_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def run_shell(command: str, env: dict[str, str], cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120, cwd=cwd
    )
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    return result.stdout
