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
