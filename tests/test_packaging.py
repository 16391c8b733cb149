"""What ships: every package of the source tree is in the wheel's package list."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def source_packages() -> set[str]:
    """Import names of the packages in the source tree (``rules/`` is ``runlint.rules``)."""
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "runlint").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    return found | {"runlint.rules"}


def test_every_source_package_is_listed_for_the_wheel() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(setuptools["packages"]) == source_packages()
    assert setuptools["package-dir"]["runlint.rules"] == "rules"
    assert "py.typed" in setuptools["package-data"]["runlint"]


def test_every_folder_with_python_code_is_a_package() -> None:
    code_dirs = {
        ".".join(py.parent.relative_to(ROOT).parts)
        for py in (ROOT / "runlint").rglob("*.py")
        if "__pycache__" not in py.parts
    }
    assert code_dirs <= source_packages(), "a folder of modules without __init__.py"


#: The packages that need torch: recording, the pre-training checks and the framework callbacks.
TORCH_PACKAGES = ("runlint.recorder", "runlint.pretrain", "runlint.integrations")

LAYERING = """
import importlib, pkgutil, sys
sys.modules["torch"] = None  # as if torch were not installed
import runlint, runlint.rules
failed = []
for info in pkgutil.walk_packages(runlint.__path__, "runlint."):
    if info.name.startswith({torch!r}) or info.name == "runlint.__main__":
        continue
    try:
        importlib.import_module(info.name)
    except ImportError as exc:
        failed.append(f"{{info.name}}: {{exc}}")
print("\\n".join(failed))
"""


def test_everything_but_recording_and_pretraining_imports_without_torch() -> None:
    import subprocess
    import sys

    code = LAYERING.format(torch=TORCH_PACKAGES)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
