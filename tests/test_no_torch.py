"""``runlint check`` never imports torch: it starts fast and runs in CI jobs without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_loader_synth import record_tiny

SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.argv = ["runlint", "check", sys.argv[1], "--format", "json"]
    from runlint.cli import main
    try:
        main(fast_exit=False)
    except SystemExit as exc:
        code = exc.code
    print(json.dumps({"torch": "torch" in sys.modules, "exit": code}))
    """
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_tiny(tmp_path_factory.mktemp("notorch") / "tiny")


def test_check_of_a_recorded_run_does_not_import_torch(recorded: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(recorded)], capture_output=True, text=True, timeout=120
    )
    report, status = proc.stdout.strip().rsplit("\n", 1)
    flags = json.loads(status)
    assert flags["torch"] is False, "runlint check imported torch"
    doc = json.loads(report)
    assert flags["exit"] in (0, 1), doc["summary"]
    assert doc["runs"] == [{"path": str(recorded), "status": "ok", "error": None}]
    assert doc["summary"]["rule_errors"] == []
    assert doc["summary"]["rules_selected"] >= 1


WITHOUT_TORCH = textwrap.dedent(
    """
    import sys
    sys.modules["torch"] = None  # import torch now fails as if it were not installed
    import runlint
    for call in (lambda: runlint.record(None, None, "x"), lambda: runlint.Recorder):
        try:
            call()
        except runlint.MissingExtra as exc:
            print(exc)
    try:
        import runlint.integrations.lightning
    except runlint.MissingExtra as exc:
        print(exc)
    """
)


def test_the_recorder_names_the_extra_to_install_when_torch_is_missing() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "runlint.record needs torch, which is not installed: pip install 'runlint[torch]'",
        "runlint.record needs torch, which is not installed: pip install 'runlint[torch]'",
        "runlint.integrations.lightning needs torch, which is not installed: "
        "pip install 'runlint[lightning]'",
    ]


def test_version_comes_from_the_package_metadata() -> None:
    from importlib import metadata

    import runlint

    proc = subprocess.run(
        [sys.executable, "-m", "runlint", "--version"], capture_output=True, text=True, timeout=60
    )
    assert runlint.__version__ == metadata.version("runlint")
    assert proc.stdout.strip() == f"runlint {metadata.version('runlint')}"
