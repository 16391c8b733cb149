"""``--format json``: one object, ``{"version": 1, "runs", "findings", "summary"}``."""

from __future__ import annotations

import json

from runlint.report import Report, finding_dict, jsonable
from runlint.report import Reporter as _Base
from runlint.report.escape import guard_json


def document(report: Report) -> dict[str, object]:
    """The JSON report as a dict (JSON-safe)."""
    doc: dict[str, object] = {
        "version": 1,
        "runs": [{"path": r.path, "status": r.status, "error": r.error} for r in report.results],
        "findings": [finding_dict(f) for f in report.findings],
        "summary": report.summary(),
    }
    return jsonable(doc)


class Reporter(_Base):
    def finish(self, report: Report) -> None:
        self.out.write(dumps(document(report)) + "\n")


def dumps(doc: object) -> str:
    """A JSON report (or SARIF log) as text: strict JSON, UTF-8, inert in a CI log."""
    return guard_json(json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False))
