"""Detection benchmark: how well the rules catch the corpus's injected faults.

    python bench/detection.py [--corpus fixtures/corpus] [--direct] [--show-runs]

Runs ``runlint check <runs> --format json --exit-zero`` on every run of the corpus's
``manifest.json`` and prints, per rule: the faulty runs expecting it, how many it caught
(recall), false alarms on healthy runs (any warning or error) and findings on faulty runs that
do not expect it (informational); then per faulty run whether a rule of its family caught it,
and totals. Only warnings and errors count, except for a run's ``expect_info`` codes (advisory
rules whose finding is info by design), which count at any severity. ``--direct`` skips the
CLI and runs the rule classes of ``runlint.rules`` in-process (the fallback used when the CLI
cannot check).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import pkgutil
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runlint.check.rule import Rule

ROOT = Path(__file__).resolve().parent.parent
LOUD = ("warning", "error")


@dataclass
class Entry:
    """One run of the manifest and the codes that fired on it (warning or error)."""

    name: str
    path: Path
    healthy: bool
    expect: list[str]
    family: str
    fault: str
    fired: set[str]
    expect_info: list[str]
    info: set[str]  # codes that fired at any severity (info included)


def load_manifest(corpus: Path) -> tuple[int | None, list[Entry]]:
    doc = json.loads((corpus / "manifest.json").read_text())
    entries = [
        Entry(
            name=r["name"],
            path=(corpus / r["path"]).resolve(),
            healthy=bool(r["healthy"]),
            expect=list(r.get("expect", [])),
            family=r.get("family", ""),
            fault=r.get("fault", ""),
            fired=set(),
            expect_info=list(r.get("expect_info", [])),
            info=set(),
        )
        for r in doc["runs"]
    ]
    return doc.get("seed"), entries


def check_cli(paths: list[Path]) -> tuple[list[dict[str, Any]], str]:
    """Findings of ``runlint check`` on ``paths``, through the CLI's JSON output."""
    cmd = [sys.executable, "-m", "runlint", "check", *map(str, paths)]
    cmd += ["--format", "json", "--exit-zero"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    try:
        doc = json.loads(proc.stdout)
    except ValueError as exc:
        raise RuntimeError(f"runlint check gave no JSON (exit {proc.returncode})") from exc
    for run in doc.get("runs", []):
        if run.get("status") not in (None, "ok"):
            print(f"warning: {run.get('path')}: {run.get('status')} {run.get('error') or ''}")
    shown = "python -m runlint check <runs> --format json --exit-zero"
    return list(doc.get("findings", [])), shown


def rule_classes() -> list[type[Rule]]:
    """Rule classes found in ``runlint.rules`` (the engine's discovery, done by hand)."""
    import runlint.rules as package

    from runlint.check.rule import Rule

    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Rule) and obj is not Rule and getattr(obj, "code", None):
                found[obj.code] = obj
    return [found[c] for c in sorted(found)]


def check_direct(paths: list[Path]) -> tuple[list[dict[str, Any]], str]:
    """Findings of every discovered rule whose data the run has, run in-process."""
    from runlint.run import load_run

    findings: list[dict[str, Any]] = []
    rules = [cls() for cls in rule_classes()]
    for path in paths:
        run = load_run(path)
        for rule in rules:
            if rule.missing(run):
                continue
            try:
                findings.extend(f.to_dict() for f in rule.check(run))
            except Exception as exc:  # a crashing rule is reported, never hides the others
                print(f"warning: {rule.code} crashed on {path.name}: {exc!r}")
    return findings, "in-process: rule.check(load_run(path)) for every rule of runlint.rules"


def known_codes(findings: Iterable[dict[str, Any]], entries: list[Entry]) -> list[str]:
    codes = {f["code"] for f in findings} | {c for e in entries for c in e.expect}
    with contextlib.suppress(ImportError):
        codes |= {cls.code for cls in rule_classes()}
    return sorted(codes)


def pct(hit: int, total: int) -> str:
    return f"{hit}/{total} ({100 * hit / total:.0f}%)" if total else "—"


def report(entries: list[Entry], codes: list[str], show_runs: bool) -> None:
    healthy = [e for e in entries if e.healthy]
    faulty = [e for e in entries if not e.healthy]
    print(f"{len(entries)} runs: {len(healthy)} healthy, {len(faulty)} faulty\n")
    header = f"{'rule':7} {'expected':>8} {'detected':>14} {'FA healthy':>10} {'other faulty':>12}"
    print(header)
    print("-" * len(header))
    tot_exp = tot_hit = 0
    false_alarms: dict[str, list[str]] = defaultdict(list)
    for code in codes:
        expecting = [e for e in faulty if code in e.expect + e.expect_info]
        hit = sum(code in (e.info if code in e.expect_info else e.fired) for e in expecting)
        fa = [e.name for e in healthy if code in e.fired]
        other = sum(code in e.fired for e in faulty if code not in e.expect)
        false_alarms[code] = fa
        tot_exp, tot_hit = tot_exp + len(expecting), tot_hit + hit
        print(
            f"{code:7} {len(expecting):>8} {pct(hit, len(expecting)):>14} {len(fa):>10} {other:>12}"
        )
    print("-" * len(header))
    silent = sum(not e.fired for e in healthy)
    print(
        f"{'all':7} {tot_exp:>8} {pct(tot_hit, tot_exp):>14} "
        f"{sum(map(len, false_alarms.values())):>10}"
    )

    print("\nfaulty runs (✓ = caught by a rule of its family):")
    fam_hit = exp_all = 0
    for e in faulty:
        caught = e.fired | (e.info & set(e.expect_info))
        fam = any(c.startswith(e.family) for c in caught) if e.family else False
        fam_hit += fam
        missed = [c for c in e.expect if c not in e.fired]
        missed += [f"{c} (info)" for c in e.expect_info if c not in e.info]
        exp_all += not missed
        fired = ",".join(sorted(e.fired) + [f"{c}(info)" for c in e.expect_info if c in e.info])
        fired = fired or "-"
        miss = f"  MISSED {','.join(missed)}" if missed else ""
        print(f"  {'✓' if fam else '✗'} {e.name:40} {e.family:4} fired: {fired}{miss}")
    print("\nhealthy runs with a warning or error:")
    loud = [e for e in healthy if e.fired]
    for e in loud:
        print(f"  {e.name:40} {','.join(sorted(e.fired))}")
    if not loud:
        print("  none")
    if show_runs:
        for code, names in false_alarms.items():
            if names:
                print(f"  {code}: {', '.join(names)}")
    print("\ntotals:")
    print(f"  expected detections     {pct(tot_hit, tot_exp)}")
    print(f"  faulty runs, all expected codes fired  {pct(exp_all, len(faulty))}")
    print(f"  family recall           {pct(fam_hit, len(faulty))}")
    print(f"  healthy runs silent     {pct(silent, len(healthy))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "fixtures" / "corpus")
    parser.add_argument("--direct", action="store_true", help="run the rules in-process")
    parser.add_argument("--show-runs", action="store_true", help="name healthy runs per rule")
    args = parser.parse_args(argv)

    seed, entries = load_manifest(args.corpus)
    print("$ python " + shlex.join(["bench/detection.py", *(argv or sys.argv[1:])]))
    print(f"corpus: {args.corpus} (seed {seed})")
    paths = [e.path for e in entries]
    start = time.perf_counter()
    if args.direct:
        findings, how = check_direct(paths)
    else:
        try:
            findings, how = check_cli(paths)
        except RuntimeError as exc:
            print(f"{exc}; falling back to running the rules in-process")
            findings, how = check_direct(paths)
    print(f"checker: {how} ({time.perf_counter() - start:.1f}s)\n")
    by_path = {e.path: e for e in entries}
    for f in findings:
        entry = by_path.get(Path(f["run"]).resolve())
        if entry is not None:
            entry.info.add(f["code"])
            if f["severity"] in LOUD:
                entry.fired.add(f["code"])
    report(entries, known_codes(findings, entries), args.show_runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
