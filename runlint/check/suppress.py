"""Suppression and adoption: per-run ignores, a run's own ignore file, and baselines.

- ``[tool.runlint.per-run-ignores]`` maps globs of run names (the run's path relative to the
  checked path, ``exp-*/version_0``; a glob without ``/`` also matches the folder's name) to
  rule selectors, like ruff's ``per-file-ignores``.
- A run directory may hold a ``.runlintignore`` file: one selector per line (``RL203  # small
  batches on purpose``), the ``noqa`` of runs. It is data written with the logs, and whoever
  writes the logs must not choose the rules that judge them, so it is honoured only when the
  project's config says ``allow-run-ignores = true``.
- ``--add-baseline FILE`` writes the fingerprint of every finding of the check to ``FILE``;
  ``--baseline FILE`` then suppresses the findings it lists, so a project can gate only new
  findings. A fingerprint is built from the rule code, the run's name relative to the checked
  path and the finding's ``where`` (never from the message's numbers, which change from run to
  run), with ``#2``, ``#3``, ... for further findings of the same code and place in a run.

A suppressed finding leaves the report, the exit code and the diagnosis, and is counted in the
summary (``N suppressed``) with what suppressed it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlint.check.rule import Finding

__all__ = [
    "BASELINE_VERSION",
    "RUN_IGNORE_FILE",
    "BaselineError",
    "Suppressed",
    "Suppressor",
    "fingerprints",
    "matches",
    "parse_run_ignores",
    "read_baseline",
    "write_baseline",
]

RUN_IGNORE_FILE = ".runlintignore"
BASELINE_VERSION = 1


class BaselineError(Exception):
    """A baseline file that cannot be read; one line."""


@dataclass(frozen=True)
class Suppressed:
    """A finding left out of the report, and what left it out."""

    code: str
    name: str
    fingerprint: str
    by: str  # "baseline", "per-run-ignores", ".runlintignore"
    where: str | None = None


def matches(token: str, code: str, name: str) -> bool:
    """Whether selector ``token`` (ALL, a code prefix, a rule name) names this rule."""
    upper = token.strip().upper()
    return (
        token == "ALL"
        or (upper.startswith("RL") and code.startswith(upper))
        or (token.strip().lower() == name)
    )


def fingerprints(findings: Sequence[Finding], run: str) -> list[str]:
    """A stable fingerprint per finding of the run named ``run`` (relative to its checked path):
    from the code, the run and ``where``, never the message; repeats get ``#2``, ``#3``."""
    seen: dict[str, int] = {}
    out = []
    for f in findings:
        key = f"{f.code}\0{run}\0{f.where or ''}".encode("utf-8", "surrogateescape")
        digest = hashlib.sha256(key)
        base = digest.hexdigest()[:16]
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return out


def parse_run_ignores(text: str) -> tuple[list[str], list[str]]:
    """The selectors of a ``.runlintignore`` file, and a phrase per line it could not read."""
    tokens, problems = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        for token in line.replace(",", " ").split():
            if token == "ALL" or token.upper().startswith("RL") or token.replace("-", "").isalnum():
                tokens.append(token)
            else:
                problems.append(f"line {number}: {token[:40]!r} is not a rule selector")
    return tokens, problems


@dataclass
class Suppressor:
    """What a check suppresses: per-run ignore globs, runs' own files, a baseline."""

    per_run: Mapping[str, Sequence[str]] = field(default_factory=dict)
    allow_run_files: bool = False
    baseline: frozenset[str] = frozenset()

    def apply(
        self, findings: list[Finding], run: str, run_tokens: Sequence[str] = ()
    ) -> tuple[list[Finding], list[str], list[Suppressed]]:
        """``(kept, their fingerprints, suppressed)`` for the findings of the run named
        ``run``; ``run_tokens``: the selectors of the run's ``.runlintignore``, if honoured."""
        prints = fingerprints(findings, run)
        globs = [
            tokens
            for pattern, tokens in self.per_run.items()
            if fnmatch.fnmatchcase(run, pattern)
            or ("/" not in pattern and fnmatch.fnmatchcase(run.rsplit("/", 1)[-1], pattern))
        ]
        kept, kept_prints, suppressed = [], [], []
        for finding, fp in zip(findings, prints, strict=True):
            by = None
            if any(matches(t, finding.code, finding.name) for tokens in globs for t in tokens):
                by = "per-run-ignores"
            elif self.allow_run_files and any(
                matches(t, finding.code, finding.name) for t in run_tokens
            ):
                by = RUN_IGNORE_FILE
            elif fp in self.baseline:
                by = "baseline"
            if by is None:
                kept.append(finding)
                kept_prints.append(fp)
            else:
                suppressed.append(Suppressed(finding.code, finding.name, fp, by, finding.where))
        return kept, kept_prints, suppressed


def read_baseline(path: Path) -> frozenset[str]:
    """The fingerprints a baseline file lists; ``BaselineError`` when it cannot be read."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read the baseline ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise BaselineError(f"{path}: the baseline is not valid JSON ({exc})") from None
    items = doc.get("findings") if isinstance(doc, dict) else None
    if not isinstance(items, list) or doc.get("version") != BASELINE_VERSION:
        raise BaselineError(
            f"{path}: not a runlint baseline (write one with --add-baseline {path})"
        )
    prints = [i.get("fingerprint") for i in items if isinstance(i, dict)]
    if not all(isinstance(p, str) for p in prints):
        raise BaselineError(f"{path}: a baseline entry has no fingerprint")
    return frozenset(prints)  # type: ignore[arg-type]


def write_baseline(path: Path, entries: Iterable[dict[str, Any]]) -> int:
    """Write a baseline of ``entries`` (``fingerprint``, ``code``, ``run``, ``where``), sorted so
    that it diffs well; the number written."""
    items = sorted(entries, key=lambda e: (e["run"], e["code"], e["fingerprint"]))
    doc = {"version": BASELINE_VERSION, "tool": "runlint", "findings": items}
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")  # ASCII: any name
    return len(items)
