"""Running the ``runlint`` command line from tests: in-process (``invoke``) or as
``python -m runlint`` in a real subprocess, from the repository root (``run_runlint``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from runlint import cli

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    """What one in-process command line printed, and its exit code."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(*args: str) -> Result:
    """``runlint *args`` in this process (``runlint.cli.invoke``), its output captured."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.invoke(list(args))
    return Result(code, out.getvalue(), err.getvalue())


def check_in(cwd: Path, *args: str) -> tuple[int, str, str]:
    """``runlint check *args`` run from ``cwd`` (where the config is found): exit code, stdout,
    stderr; never a traceback."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = invoke("check", *args)
    finally:
        os.chdir(old)
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def run_runlint(*args: str) -> subprocess.CompletedProcess[str]:
    """``runlint *args`` with its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "runlint", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
