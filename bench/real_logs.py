"""Detection on real logs other people wrote: ``fixtures/real`` against its human judgements.

    python bench/real_logs.py [--split tune|test|all] [--show]

Each run of ``fixtures/real/manifest.json`` was judged from its numbers before runlint saw it
(healthy / diverged / nan / not-learning / overfits / underfits / too-short). This checks every
run with ``runlint check --format json --exit-zero`` and prints, per format: runs read, crashes
(unreadable runs or rule errors), findings by severity, the precision of error and of warning
findings (a finding is correct when the run was judged to have a problem of the finding's
family), judged problems caught by the right family, and healthy runs failing the gate (a
warning or an error). TensorBoard runs live outside the repository (``local_path``, see
``fixtures/real/README.md``); those not on disk are counted as absent.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "fixtures" / "real"
LOUD = ("warning", "error")

#: The rule families that catch each judged problem (too-short: none is expected).
FAMILIES = {
    "diverged": {"RL1", "RL2", "RL4"},  # RL103 non-finite, RL202 lr-too-high, RL403 exploding
    "nan": {"RL1"},
    "not-learning": {"RL2"},
    "overfits": {"RL3"},
    "underfits": {"RL3"},
}


def runs(split: str) -> list[dict[str, Any]]:
    doc = json.loads((REAL / "manifest.json").read_text())
    out = []
    for entry in doc["runs"]:
        if split != "all" and entry["split"] != split:
            continue
        path = REAL / entry["path"] if entry.get("path") else Path(entry.get("local_path") or "")
        out.append({**entry, "where": path if path.exists() else None})
    return out


def check(paths: list[Path]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "runlint", "check", *map(str, paths)]
    proc = subprocess.run(
        [*cmd, "--format", "json", "--exit-zero"], capture_output=True, text=True, cwd=ROOT
    )
    try:
        doc: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(
            f"runlint check gave no JSON (exit {proc.returncode}): {proc.stderr}"
        ) from None
    if "Traceback" in proc.stderr:
        print(proc.stderr, file=sys.stderr)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("tune", "test", "all"), default="all")
    parser.add_argument("--show", action="store_true", help="print every run's findings")
    args = parser.parse_args(argv)
    entries = runs(args.split)
    present = [e for e in entries if e["where"] is not None]
    doc = check([e["where"] for e in present])

    def owner(path: str) -> str:
        """The manifest run a checked path belongs to (a TensorBoard run's folder may hold
        its event files one level down, in version_0/)."""
        for e in present:
            if path == str(e["where"]) or path.startswith(str(e["where"]) + "/"):
                return str(e["where"])
        return path

    findings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in doc["findings"]:
        findings[owner(f["run"])].append(f)
    broken = {owner(r["path"]) for r in doc["runs"] if r["status"] == "error"}
    broken |= {owner(e["run"]) for e in doc["summary"]["rule_errors"] if e["run"]}

    rows = []
    for fmt in ("hf", "lightning", "tensorboard", "all"):
        mine = [e for e in entries if fmt in ("all", e["format"])]
        read = [e for e in mine if e["where"] is not None]
        sev: Counter[str] = Counter()
        correct: Counter[str] = Counter()
        caught = judged = healthy = failing = 0
        for e in read:
            found = findings[str(e["where"])]
            families = FAMILIES.get(e["judgement"], set())
            for f in found:
                sev[f["severity"]] += 1
                if f["severity"] in LOUD and f["code"][:3] in families:
                    correct[f["severity"]] += 1
            loud = {f["code"][:3] for f in found if f["severity"] in LOUD}
            if families:
                judged += 1
                caught += bool(loud & families)
            if e["judgement"] == "healthy":
                healthy += 1
                failing += bool(loud)
        rows.append(
            (
                fmt,
                f"{len(read)}/{len(mine)}",
                sum(str(e["where"]) in broken for e in read),
                f"{sev['error']}/{sev['warning']}/{sev['info']}",
                f"{correct['error']}/{sev['error']}",
                f"{correct['warning']}/{sev['warning']}",
                f"{caught}/{judged}",
                f"{failing}/{healthy}",
            )
        )
    head = (
        "format",
        "read",
        "crashes",
        "err/warn/info",
        "error prec.",
        "warning prec.",
        "problems caught",
        "healthy failing",
    )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))
    absent = [e["id"] for e in entries if e["where"] is None]
    if absent:
        print(f"absent (not on disk): {len(absent)} runs ({', '.join(absent[:5])}...)")
    if args.show:
        for e in present:
            found = findings[str(e["where"])]
            codes = ",".join(f"{f['code']}:{f['severity'][0]}" for f in found) or "-"
            mark = "" if str(e["where"]) not in broken else " CRASH"
            print(f"{e['id']:8s} {e['judgement']:12s} {codes}{mark}")
            for f in found:
                if f["severity"] in LOUD:
                    print(f"           {f['code']} {f['message'][:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
