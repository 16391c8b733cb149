"""Detection benchmark: how well the rules catch the corpus's injected faults.

    python bench/detection.py [--corpus fixtures/corpus] [--direct] [--show-runs]
    python bench/detection.py --space DIR [DIR ...] [--direct] [--show-runs]
    python bench/detection.py --real tune|test|all [--show-runs]

Runs ``runlint check <runs> --format json --exit-zero`` on every run of the corpus's
``manifest.json`` and prints, per rule: the faulty runs expecting it, how many it caught
(recall), false alarms on healthy runs (any warning or error) and findings on faulty runs that
do not expect it (informational); then per faulty run whether a rule of its family caught it,
and totals. Only warnings and errors count, except for a run's ``expect_info`` codes (advisory
rules whose finding is info by design), which count at any severity. ``--direct`` skips the
CLI and runs the rule classes of ``runlint.rules`` in-process (the fallback used when the CLI
cannot check).

``--space`` reads sets drawn by ``fixtures/make_space.py`` (the same manifest format, plus
``fault_class`` and ``severity_level``) and prints rates with Wilson 95 % intervals: per family
the recall (faulty runs of the family on which a rule of the family fired a warning or error),
per rule the false alarms (warning or error) and errors on healthy runs, per fault class (and
level) the recall, and the targets: healthy runs with a warning or error ≤ 2 %, healthy runs
with an error = 0, faulty runs caught by the right family ≥ 90 %, every family ≥ 80 %.

``--real`` prints the real-log table of ``bench/real_logs.py`` (logs other people wrote, against
the judgements made before runlint saw them).
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


def check_cli_chunked(
    paths: list[Path], chunk: int = 40, jobs: int = 2
) -> tuple[list[dict[str, Any]], str]:
    """``check_cli`` in chunks of ``chunk`` paths (short command lines), ``-j jobs``."""
    findings: list[dict[str, Any]] = []
    for i in range(0, len(paths), chunk):
        cmd = [sys.executable, "-m", "runlint", "check", *map(str, paths[i : i + chunk])]
        cmd += ["--format", "json", "--exit-zero", "-j", str(jobs)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        try:
            doc = json.loads(proc.stdout)
        except ValueError as exc:
            raise RuntimeError(f"runlint check gave no JSON (exit {proc.returncode})") from exc
        for run in doc.get("runs", []):
            if run.get("status") not in (None, "ok"):
                print(f"warning: {run.get('path')}: {run.get('status')} {run.get('error') or ''}")
        findings += doc.get("findings", [])
    shown = f"python -m runlint check <{chunk} runs> --format json --exit-zero -j {jobs}"
    return findings, shown


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
    from runlint.check import NotJudged
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
            except NotJudged:  # the rule's own "cannot judge this run": skipped, as runlint does
                continue
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


# -- drawn sets (--space) --------------------------------------------------------------------

FAMILIES = ("RL1", "RL2", "RL3", "RL4", "RL5", "RL6")
TARGETS = {"healthy_loud": 0.02, "healthy_error": 0.0, "family_recall": 0.90, "per_family": 0.80}


@dataclass
class SpaceRun:
    """One run of a drawn set and what fired on it."""

    name: str
    path: Path
    healthy: bool
    expect: list[str]
    family: str
    fault_class: str
    level: str
    seed: int | None
    fired: set[str]  # warning or error
    errors: set[str]  # error


def wilson(hit: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of ``hit`` successes in ``n`` trials (95 % for z = 1.96)."""
    if n == 0:
        return 0.0, 1.0
    p = hit / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(hit: int, n: int) -> str:
    """``hit/n  p%  [lo–hi %]``."""
    if not n:
        return f"{'0/0':>9} {'—':>6} {'':15}"
    lo, hi = wilson(hit, n)
    return f"{f'{hit}/{n}':>9} {100 * hit / n:5.1f}% [{100 * lo:4.1f}–{100 * hi:5.1f}%]"


def load_space(dirs: list[Path]) -> list[SpaceRun]:
    runs = []
    for d in dict.fromkeys(p.resolve() for p in dirs):  # each set once
        doc = json.loads((d / "manifest.json").read_text())
        for r in doc["runs"]:
            runs.append(
                SpaceRun(
                    name=f"{d.name}/{r['name']}",
                    path=(d / r["path"]).resolve(),
                    healthy=bool(r["healthy"]),
                    expect=list(r.get("expect", [])),
                    family=r.get("family", ""),
                    fault_class=r.get("fault_class", ""),
                    level=r.get("severity_level", ""),
                    seed=r.get("seed", doc.get("seed")),
                    fired=set(),
                    errors=set(),
                )
            )
    return runs


def space_report(runs: list[SpaceRun], codes: list[str], show_runs: bool) -> dict[str, Any]:
    """Print the drawn-set tables; returns the totals (for tests and scripts)."""
    healthy = [r for r in runs if r.healthy]
    faulty = [r for r in runs if not r.healthy]

    def caught(r: SpaceRun) -> bool:
        return any(c.startswith(r.family) for c in r.fired) if r.family else False

    seeds = sorted({r.seed for r in runs if r.seed is not None})
    print(f"{len(runs)} runs: {len(healthy)} healthy, {len(faulty)} faulty; seeds {seeds}\n")
    cols = f"{'n':>9} {'rate':>6} {'Wilson 95 %':15}"

    print(f"family recall (a warning or error of the family)\n{'family':8} {cols}")
    fam_rates = {}
    for fam in FAMILIES:
        of = [r for r in faulty if r.family == fam]
        hit = sum(caught(r) for r in of)
        fam_rates[fam] = (hit, len(of))
        print(f"{fam:8} {rate(hit, len(of))}")
    fam_hit = sum(caught(r) for r in faulty)
    print(f"{'all':8} {rate(fam_hit, len(faulty))}")

    print(f"\nhealthy runs flagged, per rule\n{'rule':8} {'warning or error':>32}   {'error':>32}")
    for code in codes:
        loud = sum(code in r.fired for r in healthy)
        err = sum(code in r.errors for r in healthy)
        if loud or err:
            print(f"{code:8} {rate(loud, len(healthy))}   {rate(err, len(healthy))}")
    n_loud = sum(bool(r.fired) for r in healthy)
    n_err = sum(bool(r.errors) for r in healthy)
    print(f"{'any':8} {rate(n_loud, len(healthy))}   {rate(n_err, len(healthy))}")

    print("\nper fault class: caught by its family (and by any warning/error)")
    print(f"{'class':34} {'family':6} {cols}   {'any':>9}  expected codes fired")
    classes = sorted({(r.family, r.fault_class) for r in faulty})
    for fam, cls in classes:
        of = [r for r in faulty if r.fault_class == cls]
        hit = sum(caught(r) for r in of)
        anyf = sum(bool(r.fired) for r in of)
        exp = [r for r in of if r.expect]
        exp_hit = sum(all(c in r.fired for c in r.expect) for r in exp)
        exp_txt = f"{exp_hit}/{len(exp)} {','.join(sorted({c for r in exp for c in r.expect}))}"
        print(
            f"{cls:34} {fam:6} {rate(hit, len(of))}   {f'{anyf}/{len(of)}':>9}  "
            f"{exp_txt if exp else '— (family only)'}"
        )
        levels = sorted({r.level for r in of})
        if len(levels) > 1:
            parts = []
            for lv in levels:
                ol = [r for r in of if r.level == lv]
                parts.append(f"{lv} {sum(caught(r) for r in ol)}/{len(ol)}")
            print(f"{'':36}levels: {', '.join(parts)}")

    print("\nhealthy runs with a warning or error:")
    for r in healthy:
        if r.fired:
            print(
                f"  {r.name:60} {','.join(sorted(r.fired))}"
                f"{' (error: ' + ','.join(sorted(r.errors)) + ')' if r.errors else ''}"
            )
    if not n_loud:
        print("  none")
    if show_runs:
        print("\nfaulty runs missed by their family:")
        for r in faulty:
            if not caught(r):
                fired = ",".join(sorted(r.fired)) or "-"
                print(f"  {r.name:60} {r.family} fired: {fired}")

    per_family_min = min((h / n for h, n in fam_rates.values() if n), default=0.0)
    worst = [f for f, (h, n) in fam_rates.items() if n and h / n < TARGETS["per_family"]]
    totals = {
        "healthy_loud": (n_loud, len(healthy)),
        "healthy_error": (n_err, len(healthy)),
        "family_recall": (fam_hit, len(faulty)),
        "per_family": fam_rates,
    }

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    hl = n_loud / len(healthy) if healthy else 0.0
    fr = fam_hit / len(faulty) if faulty else 0.0
    print("\ntargets (point estimate; Wilson 95 %):")
    print(
        f"  healthy with warning or error ≤ 2 %   {rate(n_loud, len(healthy))}  "
        f"{verdict(hl <= TARGETS['healthy_loud'])}"
    )
    print(
        f"  healthy with error = 0                {rate(n_err, len(healthy))}  "
        f"{verdict(n_err == 0)}"
    )
    print(
        f"  faulty caught by its family ≥ 90 %    {rate(fam_hit, len(faulty))}  "
        f"{verdict(fr >= TARGETS['family_recall'])}"
    )
    print(
        f"  every family ≥ 80 %                   lowest {100 * per_family_min:5.1f}%"
        f"{' (' + ', '.join(worst) + ' below)' if worst else ''}  "
        f"{verdict(not worst)}"
    )
    return totals


def space_main(dirs: list[Path], direct: bool, show_runs: bool) -> int:
    runs = load_space(dirs)
    print(f"sets: {', '.join(str(d) for d in dirs)}")
    paths = [r.path for r in runs]
    start = time.perf_counter()
    if direct:
        findings, how = check_direct(paths)
    else:
        try:
            findings, how = check_cli_chunked(paths)
        except RuntimeError as exc:
            print(f"{exc}; falling back to running the rules in-process")
            findings, how = check_direct(paths)
    print(f"checker: {how} ({time.perf_counter() - start:.1f}s)\n")
    by_path = {r.path: r for r in runs}
    for f in findings:
        run = by_path.get(Path(f["run"]).resolve())
        if run is not None and f["severity"] in LOUD:
            run.fired.add(f["code"])
            if f["severity"] == "error":
                run.errors.add(f["code"])
    codes = {f["code"] for f in findings} | {c for r in runs for c in r.expect}
    with contextlib.suppress(ImportError):
        codes |= {cls.code for cls in rule_classes()}
    space_report(runs, sorted(codes), show_runs)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "fixtures" / "corpus")
    parser.add_argument(
        "--space", type=Path, nargs="+", metavar="DIR", help="sets drawn by make_space.py"
    )
    parser.add_argument("--direct", action="store_true", help="run the rules in-process")
    parser.add_argument(
        "--real",
        choices=("tune", "test", "all"),
        help="the real-log table instead: fixtures/real against its human judgements "
        "(bench/real_logs.py, this split)",
    )
    parser.add_argument(
        "--show-runs",
        action="store_true",
        help="name the runs behind the counts (healthy runs per rule; --space: missed faulty runs)",
    )
    args = parser.parse_args(argv)

    if args.real:
        import real_logs

        return real_logs.main(["--split", args.real, *(["--show"] if args.show_runs else [])])
    if args.space:
        print("$ python " + shlex.join(["bench/detection.py", *(argv or sys.argv[1:])]))
        return space_main(args.space, args.direct, args.show_runs)
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
