"""``python -m runlint`` in a real subprocess, run from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_runlint(*args: str) -> subprocess.CompletedProcess[str]:
    """``runlint *args`` with its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "runlint", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
