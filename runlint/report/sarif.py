"""``--format sarif``: SARIF 2.1.0 (GitHub code scanning, IDEs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runlint import __version__
from runlint.check.engine import rule_doc
from runlint.check.rule import Rule
from runlint.docs import rule_markdown, rule_page, rule_text
from runlint.report import Report, consequence_line, display_path, jsonable, location
from runlint.report import Reporter as _Base
from runlint.report.json import dumps
from runlint.run.remote import is_url

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def _uri(path: str) -> str:
    shown = display_path(path)
    if is_url(path):
        return shown
    return Path(path).resolve().as_uri() if Path(shown).is_absolute() else shown


def descriptor(rule: type[Rule]) -> dict[str, Any]:
    """The rule's ``reportingDescriptor``: its page (``runlint.docs``) as the help."""
    page = rule_page(rule)
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": page.summary or rule.name},
        "fullDescription": {"text": rule_doc(rule) or rule.name},
        "help": {"text": rule_text(page), "markdown": rule_markdown(page)},
        "defaultConfiguration": {"level": LEVELS[rule.severity.value]},
        "properties": {"tags": [rule.code[:3]], "requires": list(page.requires)},
    }


def document(report: Report) -> dict[str, Any]:
    """The SARIF log as a dict."""
    rules = sorted(report.rules, key=lambda r: r.code)
    index = {r.code: i for i, r in enumerate(rules)}
    driver_rules = [descriptor(r) for r in rules]
    results = []
    for res in report.results:
        for i, f in enumerate(res.findings):
            cause = res.cause_of(i)
            advice = f"fix: {f.fix}" if cause is None else consequence_line(cause)
            item: dict[str, Any] = {
                "ruleId": f.code,
                "level": LEVELS[f.severity.value],
                "message": {"text": f"{res.name}: {f.message}\n{advice}"},
                "locations": [
                    {"physicalLocation": {"artifactLocation": {"uri": _uri(location(res.path))}}}
                ],
                "properties": jsonable(
                    {
                        "run": f.run,
                        "steps": f.steps,
                        "where": f.where,
                        "fix": f.fix if cause is None else "",
                        "cause": cause.code if cause is not None else None,
                        "evidence": f.evidence,
                    }
                ),
            }
            if f.code in index:
                item["ruleIndex"] = index[f.code]
            if i < len(res.fingerprints):  # for code scanning to follow a finding across runs
                item["partialFingerprints"] = {"runlint/v1": res.fingerprints[i]}
            results.append(item)
    notes = []
    for res in report.results:
        if res.error:
            notes.append({"level": "error", "message": {"text": res.error}})
        for note in res.notes:
            notes.append({"level": "warning", "message": {"text": note}})
        for e in res.rule_errors:
            notes.append(
                {
                    "level": "error",
                    "message": {"text": f"{e.code} {e.name} crashed on {res.path}: {e.error}"},
                    "descriptor": {"id": e.code},
                }
            )
    notes += [{"level": "error", "message": {"text": p}} for p in report.problems]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "runlint",
                        "version": __version__,
                        "informationUri": "https://cs231n.github.io/neural-networks-3/",
                        "rules": driver_rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not any(n["level"] == "error" for n in notes),
                        "exitCode": report.exit_code,
                        "toolExecutionNotifications": notes,
                    }
                ],
                "results": results,
            }
        ],
    }


class Reporter(_Base):
    def finish(self, report: Report) -> None:
        self.out.write(dumps(jsonable(document(report))) + "\n")
