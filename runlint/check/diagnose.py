"""One diagnosis per run: findings grouped into causes and their consequences.

A learning rate far too high makes the loss explode, which kills ReLUs, which makes the update
ratio collapse: three rules fire, and two of them would advise opposite fixes ("lower the
learning rate", "raise it"). Each rule declares which other rules' problems can cause its own
(``Rule.explained_by``, an acyclic graph of codes checked by a test). A finding is a
*consequence* of another finding of the same run when that one's rule is among its
``explained_by`` and its signal appeared no later (the first step of its evidence); among
several such explanations the one that appeared last (the nearest link of the chain) is its
cause. Findings without a cause are the *causes*: each heads one ``Diagnosis`` holding every
finding it explains, directly or through others, in the order their signals appeared. The cause
carries the fix; a consequence's own fix is not shown (it treats a symptom, and may contradict
the cause's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runlint.check.rule import Finding

__all__ = ["Diagnosis", "causes_of", "diagnose"]


@dataclass(frozen=True)
class Diagnosis:
    """A cause (an index into the run's findings) and its consequences, in order of appearance."""

    cause: int
    consequences: tuple[int, ...] = ()

    @property
    def chain(self) -> tuple[int, ...]:
        return (self.cause, *self.consequences)


def _start(finding: Finding) -> int | None:
    return finding.steps[0] if finding.steps is not None else None


def _explains(cause: Finding, effect: Finding, graph: Mapping[str, Sequence[str]]) -> bool:
    if cause.code not in graph.get(effect.code, ()):
        return False
    a, b = _start(cause), _start(effect)
    return a is None or b is None or a <= b  # no time to go by: the graph alone decides


def causes_of(findings: Sequence[Finding], graph: Mapping[str, Sequence[str]]) -> list[int | None]:
    """For each finding, the index of the finding it is a consequence of (``None``: a cause).

    ``graph`` maps a rule code to the codes of rules whose problem can cause its own.
    """
    parents: list[int | None] = []
    for i, effect in enumerate(findings):
        candidates = [j for j, c in enumerate(findings) if j != i and _explains(c, effect, graph)]
        if not candidates:
            parents.append(None)
            continue

        # the nearest explanation: the latest to appear, then the one explained by another
        # candidate (deeper in the chain), then the first listed
        def rank(j: int, candidates: list[int] = candidates) -> tuple[int, int, int]:
            start = _start(findings[j])
            deeper = sum(_explains(findings[k], findings[j], graph) for k in candidates if k != j)
            return (start if start is not None else -1, deeper, -j)

        parents.append(max(candidates, key=rank))
    return parents


def diagnose(
    findings: Sequence[Finding], graph: Mapping[str, Sequence[str]]
) -> tuple[list[int | None], list[Diagnosis]]:
    """``(causes_of(findings), diagnoses)``: one ``Diagnosis`` per cause, ordered by when the
    cause appeared; each holds its consequences (direct or not) in order of appearance."""
    parents = causes_of(findings, graph)

    def root(i: int) -> int:
        seen = set()
        while parents[i] is not None and i not in seen:
            seen.add(i)
            i = parents[i]  # type: ignore[assignment]
        return i

    def when(i: int) -> tuple[int, int]:
        start = _start(findings[i])
        return (start if start is not None else -1, i)

    groups: dict[int, list[int]] = {}
    for i in range(len(findings)):
        groups.setdefault(root(i), [])
        if parents[i] is not None:
            groups[root(i)].append(i)
    diagnoses = [
        Diagnosis(cause, tuple(sorted(members, key=when)))
        for cause, members in sorted(groups.items(), key=lambda item: when(item[0]))
    ]
    return parents, diagnoses
