"""Time to detect: the live check replayed flush by flush over the corpus.

    python bench/live_detection.py [--corpus fixtures/corpus] [--stop-on error] [--show-runs]

Every run of the corpus was recorded with the default flush policy, so each of its flushes
ended at a ``rec.log_epoch`` (or a multiple of ``flush_every``, 1000 steps) and at close; a
recorder with ``check=`` also flushes after steps 25, 50, 100, 200 and 400
(``runlint.schema.layout.LIVE_EARLY_FLUSHES``), and a flush holds whole steps, so those are
replayed too (``Flushes(path, live=True)``). For each run this replays its flushes in order:
the run so far (every table cut at the flush's step, ``meta`` as a live run has it:
incomplete, its step and epoch counts so far) is checked
with the live catalog (the rules that do not judge how a run ended, ``Rule.whole_run``), and
the checks are compared one to the next as the live check does (``runlint.check.live.
LiveState``: a warning is reported once a second check confirms it, an error at once; new,
changed and withdrawn findings); a finding counts from the check that reported it.

It prints, per faulty run, the first step at which a rule of its family (a warning or an error,
or its ``expect_info`` code at any severity) fires, as a fraction of the run's steps, and the
share caught within the first 25 % of their steps (target ≥ 80 %); per healthy run, whether a
finding at or above the stop severity (``--stop-on``, default error) ever fired (a run
``stop_on`` would have stopped; target 0); and the flaps: findings withdrawn and then reported
again (target 0). Faulty runs whose fault only a whole-run rule judges are shown apart (a live
check cannot catch them by design) and counted as misses. Last, the CPU time of a check per
flush (median and 95th percentile, this process's thread).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runlint.check import engine  # noqa: E402
from runlint.check.live import WITHDRAW_AFTER, LiveState, live_rules  # noqa: E402
from runlint.check.rule import Severity  # noqa: E402
from runlint.run.replay import Flushes  # noqa: E402

WITHIN = 0.25  # "caught early": within this fraction of the run's steps


@dataclass
class Replay:
    name: str
    healthy: bool
    family: str
    expect: list[str]
    expect_info: list[str]
    steps: int
    flushes: int = 0
    first_step: int | None = None  # first flush step at which the right family fired
    first_code: str | None = None
    stop_step: int | None = None  # first flush step with a finding at the stop severity
    stop_codes: list[str] = field(default_factory=list)
    loud: set[str] = field(default_factory=set)  # codes that ever fired a warning or error
    flaps: list[tuple[str, bool]] = field(default_factory=list)  # key, by the final check
    withdrawn: int = 0
    cpu: list[float] = field(default_factory=list)
    events: list[tuple[int, str, str, str]] = field(default_factory=list)
    whole_run_only: bool = False

    @property
    def fraction(self) -> float | None:
        return None if self.first_step is None else self.first_step / max(1, self.steps)


def replay(
    path: Path, rules: list[Any], policy: Severity, entry: dict[str, Any], withdraw_after: int
) -> Replay:
    flushes = Flushes(path, live=True)
    out = Replay(
        entry["name"],
        bool(entry["healthy"]),
        entry.get("family", ""),
        list(entry.get("expect", [])),
        list(entry.get("expect_info", [])),
        flushes.steps,
    )
    checker = engine.Checker(rules)
    state = LiveState(withdraw_after)
    for upto, run in flushes:
        final = upto == flushes.steps
        c0 = time.thread_time()
        result = checker.check_run(run)
        out.cpu.append(time.thread_time() - c0)
        out.flushes += 1
        if result.status == "error":
            continue
        events = state.update(result.findings, upto, 0.0, result.ran, final=final)
        for event in events:
            out.events.append((upto, event.kind, event.key, event.finding.severity.value))
            if event.kind == "withdrawn":
                out.withdrawn += 1
            elif event.kind == "new" and event.key in state.withdrawn:  # withdrawn before
                out.flaps.append((event.key, final))
        reported = state.findings  # what the live check has reported so far (confirmed)
        for f in reported:
            loud = f.severity.rank >= Severity.WARNING.rank
            if loud:
                out.loud.add(f.code)
            right = (loud and out.family and f.code.startswith(out.family)) or (
                f.code in out.expect_info
            )
            if right and out.first_step is None:
                out.first_step, out.first_code = upto, f.code
            if f.severity.rank >= policy.rank and out.stop_step is None:
                out.stop_step = upto
                out.stop_codes = sorted(
                    {g.code for g in reported if g.severity.rank >= policy.rank}
                )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "fixtures" / "corpus")
    parser.add_argument("--stop-on", default="error", choices=[s.value for s in Severity])
    parser.add_argument("--show-runs", action="store_true", help="every run, not only misses")
    parser.add_argument(
        "--withdraw-after",
        type=int,
        default=WITHDRAW_AFTER,
        help=f"checks without a finding before it is withdrawn ({WITHDRAW_AFTER})",
    )
    parser.add_argument("--only", action="append", help="replay only these runs (names)")
    parser.add_argument("--events", type=Path, help="write every run's live events (JSON) here")
    args = parser.parse_args(argv)
    policy = Severity(args.stop_on)
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    catalog = engine.discover()
    rules = live_rules(engine.configure(catalog, _config(), None, ()))
    live_codes = {r.code for r in rules}
    t0 = time.perf_counter()
    replays = []
    for entry in manifest["runs"]:
        if args.only and entry["name"] not in args.only:
            continue
        r = replay(
            (args.corpus / entry["path"]).resolve(), rules, policy, entry, args.withdraw_after
        )
        wanted = [*r.expect, *r.expect_info]
        r.whole_run_only = bool(wanted) and not any(c in live_codes for c in wanted)
        replays.append(r)
    wall = time.perf_counter() - t0
    if args.events:
        doc = {
            r.name: {"steps": r.steps, "healthy": r.healthy, "events": r.events} for r in replays
        }
        args.events.write_text(json.dumps(doc, indent=1))

    faulty = [r for r in replays if not r.healthy]
    healthy = [r for r in replays if r.healthy]
    print(
        f"live replay of {len(replays)} corpus runs ({len(faulty)} faulty, {len(healthy)} "
        f"healthy), {sum(r.flushes for r in replays)} flushes, stop_on={policy.value}, "
        f"{wall:.0f} s\n"
    )
    print("faulty runs: first flush at which a rule of the run's family fired")
    print(f"  {'run':42} {'family':6} {'steps':>6} {'first':>6} {'share':>6}  rule")
    for r in sorted(faulty, key=lambda r: (r.fraction if r.fraction is not None else 9, r.name)):
        share = f"{r.fraction:6.0%}" if r.fraction is not None else "     –"
        first = r.first_step if r.first_step is not None else "–"
        note = r.first_code or ("needs the whole run" if r.whole_run_only else "not caught")
        if args.show_runs or r.fraction is None or r.fraction > WITHIN:
            print(f"  {r.name:42} {r.family:6} {r.steps:6d} {first!s:>6} {share}  {note}")
    early = [r for r in faulty if r.fraction is not None and r.fraction <= WITHIN]
    caught = [r for r in faulty if r.fraction is not None]
    judged = [r for r in faulty if not r.whole_run_only]
    early_judged = [r for r in early if not r.whole_run_only]
    fractions = [r.fraction for r in caught if r.fraction is not None]
    print(
        f"  (runs caught within {WITHIN:.0%} not listed; --show-runs lists every run)"
        if not args.show_runs
        else ""
    )
    print(
        f"caught within the first {WITHIN:.0%} of their steps: {len(early)}/{len(faulty)} "
        f"= {len(early) / max(1, len(faulty)):.0%} of faulty runs (target ≥ 80 %); "
        f"{len(early_judged)}/{len(judged)} = {len(early_judged) / max(1, len(judged)):.0%} "
        f"of those a live rule can catch ({len(faulty) - len(judged)} need the whole run)"
    )
    print(
        f"caught at all while training: {len(caught)}/{len(faulty)}; median share of the run "
        f"at detection {statistics.median(fractions):.0%}"
        if fractions
        else "caught: none"
    )

    stopped = [r for r in healthy if r.stop_step is not None]
    print(
        f"\nhealthy runs that stop_on={policy.value} would have stopped: {len(stopped)}/"
        f"{len(healthy)} (target 0)"
    )
    for r in stopped:
        print(f"  {r.name:42} at step {r.stop_step}/{r.steps}: {', '.join(r.stop_codes)}")
    warned = [r for r in healthy if r.loud]
    print(
        f"healthy runs with a warning or error at some flush (logged, not stopped): "
        f"{len(warned)}/{len(healthy)}"
    )
    for r in warned:
        print(f"  {r.name:42} {', '.join(sorted(r.loud))}")
    flaps = [(r.name, key, final) for r in replays for key, final in r.flaps]
    at_close = sum(final for *_, final in flaps)
    withdrawn = sum(r.withdrawn for r in replays)
    print(
        f"\nfindings withdrawn by a later flush: {withdrawn}; flaps (withdrawn, then reported "
        f"again): {len(flaps)} (target 0): {len(flaps) - at_close} while training, {at_close} "
        "by the final check of the closed run"
    )
    for name, key, final in flaps:
        print(f"  {name}: {key}{' (final check)' if final else ''}")
    cpu = sorted(c for r in replays for c in r.cpu)
    if cpu:
        p95 = cpu[min(len(cpu) - 1, math.ceil(0.95 * len(cpu)) - 1)]
        print(
            f"\nCPU per check (one flush): median {1e3 * statistics.median(cpu):.0f} ms, "
            f"95th percentile {1e3 * p95:.0f} ms, max {1e3 * cpu[-1]:.0f} ms"
        )
    ok = len(early) >= 0.8 * len(faulty) and not stopped and not flaps
    return 0 if ok else 1


def _config() -> Any:
    from runlint.check.config import find_config, load_config

    return load_config(find_config(ROOT / "fixtures" / "corpus"))


if __name__ == "__main__":
    raise SystemExit(main())
