"""Smoke test of the installed artifact: run by CI with the fresh venv's Python, outside the
checkout, after the wheel was installed without torch. Standard library only.

    python smoke.py FIXTURES_CORPUS
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

corpus = Path(sys.argv[1]).resolve()
HEALTHY = corpus / "spiral-mlp-sgd-momentum"
FAULTY = corpus / "rl101-last-layer-x50"  # an RL101 warning (exit 1 under the default --fail-on)
IMPORTED = corpus / "rl202-hf-adamw-lr-x500"  # a Hugging Face Trainer folder
bindir = Path(sys.executable).parent
RUNLINT = str(bindir / "runlint")
failures: list[str] = []


def run(*args: str, expect: int) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    shown = " ".join("<script>" if "\n" in a else Path(a).name if os.sep in a else a for a in args)
    print(f"$ {shown}  -> exit {proc.returncode}")
    if proc.returncode != expect:
        failures.append(f"{shown}: exit {proc.returncode}, expected {expect}\n{proc.stderr}")
    if "Traceback" in proc.stdout + proc.stderr:
        failures.append(f"{shown}: printed a traceback\n{proc.stderr}")
    return proc.stdout + proc.stderr


def expect(condition: bool, what: str) -> None:
    if not condition:
        failures.append(what)


site = Path(importlib.util.find_spec("runlint").origin).parent  # type: ignore[union-attr,arg-type]
expect(not str(site).startswith(str(corpus.parents[1])), f"runlint imported from {site}")
expect(importlib.util.find_spec("torch") is None, "torch is installed in the plain venv")
version = run(RUNLINT, "--version", expect=0).strip()
expect(re.fullmatch(r"runlint \d+\.\d+\.\d+\S*", version) is not None, f"--version: {version!r}")
module = run(sys.executable, "-m", "runlint", "--version", expect=0).strip()
expect(module == version, f"python -m runlint --version: {module!r} != {version!r}")
catalog = run(RUNLINT, "rules", expect=0)
expect("RL101" in catalog and "initial-loss-off" in catalog, "runlint rules lists no RL101")

run(RUNLINT, "check", str(HEALTHY), expect=0)
run(RUNLINT, "check", "does-not-exist", expect=2)
text = run(RUNLINT, "check", str(HEALTHY), str(FAULTY), str(IMPORTED), expect=1)
expect("RL101" in text and re.search(r"in 3 runs", text) is not None, "text report: " + text)

doc = json.loads(run(RUNLINT, "check", str(HEALTHY), str(FAULTY), "--format", "json", expect=1))
expect(doc.get("version") == 1 and len(doc["runs"]) == 2, "json: runs")
expect(any(f["code"] == "RL101" for f in doc["findings"]), "json: no RL101 finding")
expect(doc["summary"]["exit_code"] == 1, "json: summary.exit_code")

github = run(RUNLINT, "check", str(FAULTY), "--format", "github", expect=1)
annotations = [line for line in github.splitlines() if line.startswith(("::error ", "::warning "))]
expect(any("title=RL101" in line for line in annotations), "github: no RL101 annotation")

sarif = json.loads(run(RUNLINT, "check", str(FAULTY), "--format", "sarif", expect=1))
expect(sarif.get("version") == "2.1.0" and sarif["runs"][0]["results"], "sarif: no results")

junit_xml = run(RUNLINT, "check", str(HEALTHY), str(FAULTY), "--format", "junit", expect=1)
junit = ET.fromstring(junit_xml)
expect(len(list(junit.iter("testcase"))) > 0, "junit: no testcase")
expect(len(list(junit.iter("failure"))) > 0, "junit: no failure")

whole = json.loads(run(RUNLINT, "check", str(corpus), "--format", "json", "--exit-zero", expect=0))
unread = [r for r in whole["runs"] if r["status"] == "error"]
expect(len(whole["runs"]) > 50 and not unread, f"corpus: {len(whole['runs'])} runs, {unread}")
expect(not whole["summary"]["rule_errors"], f"rule errors: {whole['summary']['rule_errors']}")

# the extras: one line naming what to install, no traceback
RECORD = """
import runlint
try:
    runlint.record(None, None, "x")
except runlint.MissingExtra as exc:
    print(exc)
"""
out = run(sys.executable, "-c", RECORD, expect=0)
expect(out.strip().endswith("pip install 'runlint[torch]'"), "record without torch: " + out)
out = run(RUNLINT, "gradcheck", "model.py:make", expect=2)
expect("pip install 'runlint[torch]'" in out and len(out.strip().splitlines()) == 1, out)

size = sum(f.stat().st_size for f in Path(sys.prefix).rglob("*") if f.is_file())
print(f"plain install: {size / 2**20:.0f} MiB in {sys.prefix} (runlint {version.split()[-1]})")
if failures:
    print("\nSMOKE FAILED:\n" + "\n".join(failures), file=sys.stderr)
    sys.exit(1)
print("smoke: the installed wheel works without torch")
