"""``--format junit``: one testsuite per run, one testcase per rule.

A rule with findings at or above ``--fail-on`` is a failure; below it the test passes and the
findings go to ``system-out``; a skipped rule is skipped; a crashed rule or an unreadable run is
an error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from runlint.check.engine import RunResult
from runlint.check.rule import Finding
from runlint.report import Report, consequence_line, escape
from runlint.report import Reporter as _Base


def _finding_text(f: Finding, cause: Finding | None = None) -> str:
    advice = f"fix: {f.fix}" if cause is None else consequence_line(cause)
    text = f"{f.code} {f.severity.value}: {f.message}\n{advice}"
    if f.where:
        text += f"\nwhere: {f.where}"
    if f.steps is not None:
        text += f"\nsteps: {f.steps[0]}-{f.steps[1]}"
    return text


_clean = escape.xml  # only characters XML 1.0 holds, nothing invisible but tab and LF


def suite(result: RunResult, report: Report) -> ET.Element:
    """The testsuite of one run."""
    el = ET.Element("testsuite", name=_clean(result.path))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    classname = f"runlint.{result.name}"

    def case(name: str) -> ET.Element:
        counts["tests"] += 1
        return ET.SubElement(el, "testcase", classname=_clean(classname), name=_clean(name))

    if result.error:
        tc = case("load")
        counts["errors"] += 1
        ET.SubElement(tc, "error", message=_clean(result.error), type="RunError")
    by_code: dict[str, list[Finding]] = {}
    causes = {id(f): result.cause_of(i) for i, f in enumerate(result.findings)}
    for f in result.findings:
        by_code.setdefault(f.code, []).append(f)
    names = {r.code: r.name for r in report.rules}
    for code in result.ran:
        tc = case(f"{code} {names.get(code, '')}".strip())
        findings = by_code.get(code, [])
        failing = [f for f in findings if f.severity.rank >= report.fail_on.rank]
        if failing:
            counts["failures"] += 1
            worst = max(failing, key=lambda f: f.severity.rank)
            fail = ET.SubElement(
                tc, "failure", message=_clean(worst.message), type=worst.severity.value
            )
            fail.text = _clean("\n\n".join(_finding_text(f, causes[id(f)]) for f in findings))
        elif findings:
            out = ET.SubElement(tc, "system-out")
            out.text = _clean("\n\n".join(_finding_text(f, causes[id(f)]) for f in findings))
    for s in result.skipped:
        tc = case(f"{s.code} {s.name}")
        counts["skipped"] += 1
        ET.SubElement(tc, "skipped", message=_clean("; ".join(s.reasons)))
    for e in result.rule_errors:
        tc = case(f"{e.code} {e.name}")
        counts["errors"] += 1
        ET.SubElement(tc, "error", message=_clean(e.error), type="RuleError")
    if result.notes:
        err = ET.SubElement(el, "system-err")
        err.text = _clean("\n".join(result.notes))
    for key, value in counts.items():
        el.set(key, str(value))
    return el


def document(report: Report) -> ET.Element:
    """The ``<testsuites>`` element."""
    root = ET.Element("testsuites", name="runlint")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for result in report.results:
        el = suite(result, report)
        root.append(el)
        for key in totals:
            totals[key] += int(el.get(key, "0"))
    if report.problems:
        el = ET.SubElement(root, "testsuite", name="runlint.rules", tests="1", errors="1")
        el.set("failures", "0")
        el.set("skipped", "0")
        tc = ET.SubElement(el, "testcase", classname="runlint", name="load rules")
        ET.SubElement(tc, "error", message=_clean("; ".join(report.problems)), type="ImportError")
        totals["tests"] += 1
        totals["errors"] += 1
    for key, value in totals.items():
        root.set(key, str(value))
    return root


class Reporter(_Base):
    def finish(self, report: Report) -> None:
        root = document(report)
        ET.indent(root)
        self.out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        self.out.write(escape.guard_xml(ET.tostring(root, encoding="unicode")) + "\n")
