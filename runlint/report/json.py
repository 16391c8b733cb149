"""``--format json``: one object, ``{"version": 1, "runs", "findings", "summary"}``."""

from __future__ import annotations

import json

from runlint.report import Report, finding_dict, jsonable
from runlint.report import Reporter as _Base


def document(report: Report) -> dict[str, object]:
    """The JSON report as a dict (JSON-safe)."""
    return {
        "version": 1,
        "runs": [{"path": r.path, "status": r.status, "error": r.error} for r in report.results],
        "findings": [finding_dict(f) for f in report.findings],
        "summary": jsonable(report.summary()),
    }


class Reporter(_Base):
    def finish(self, report: Report) -> None:
        json.dump(document(report), self.out, indent=2, allow_nan=False, ensure_ascii=False)
        self.out.write("\n")
