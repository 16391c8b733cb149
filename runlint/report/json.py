"""``--format json``: one object, ``{"version": 1, "runs", "findings", "diagnoses", "summary"}``.

Version 1 as DESIGN §3 fixes it, with fields added (never renamed or removed; see
docs/json-report.md): each finding's place in its run's diagnosis (``cause``,
``consequences``: indices into ``findings``) and a ``diagnoses`` list, one entry per cause.
"""

from __future__ import annotations

import json

from runlint.report import Report, chain_text, finding_dict, jsonable
from runlint.report import Reporter as _Base
from runlint.report.escape import guard_json


def document(report: Report) -> dict[str, object]:
    """The JSON report as a dict (JSON-safe)."""
    findings: list[dict[str, object]] = []
    diagnoses: list[dict[str, object]] = []
    for result in report.results:
        base = len(findings)
        children: dict[int, list[int]] = {}
        for i, parent in enumerate(result.causes):
            if parent is not None:
                children.setdefault(parent, []).append(base + i)
        for i, f in enumerate(result.findings):
            parent = result.causes[i] if i < len(result.causes) else None
            fp = result.fingerprints[i] if i < len(result.fingerprints) else None
            findings.append(
                finding_dict(f, None if parent is None else base + parent, children.get(i), fp)
            )
        for d in result.diagnoses:
            diagnoses.append(
                {
                    "run": result.path,
                    "cause": base + d.cause,
                    "chain": [base + i for i in d.chain],
                    "summary": chain_text(result, d.chain),
                }
            )
    doc: dict[str, object] = {
        "version": 1,
        "runs": [{"path": r.path, "status": r.status, "error": r.error} for r in report.results],
        "findings": findings,
        "diagnoses": diagnoses,
        "summary": report.summary(),
    }
    return jsonable(doc)


class Reporter(_Base):
    def finish(self, report: Report) -> None:
        if self.statistics:  # ruff's --statistics --output-format json: a list, one per code
            self.out.write(dumps(jsonable(report.by_code())) + "\n")
            return
        self.out.write(dumps(document(report)) + "\n")


def dumps(doc: object) -> str:
    """A JSON report (or SARIF log) as text: strict JSON, UTF-8, inert in a CI log."""
    return guard_json(json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False))
