"""``--format github``: GitHub Actions workflow commands, one annotation per finding.

``::error file=runs/a/meta.json,title=RL201 lr-too-low::message%0Afix: ...``
"""

from __future__ import annotations

from runlint.check.engine import RunResult
from runlint.report import Report, consequence_line, location
from runlint.report import Reporter as _Base
from runlint.report.escape import github_data, github_property

LEVELS = {"error": "error", "warning": "warning", "info": "notice"}


#: A command's message and its property values, escaped (``runlint.report.escape``).
escape_data = github_data
escape_property = github_property


def command(level: str, message: str, *, file: str | None = None, title: str = "") -> str:
    """One ``::level file=..,title=..::message`` line."""
    props = []
    if file:
        props.append(f"file={escape_property(file)}")
    if title:
        props.append(f"title={escape_property(title)}")
    return f"::{level} {','.join(props)}::{escape_data(message)}"


class Reporter(_Base):
    streams = True

    def add(self, result: RunResult) -> None:
        lines = []
        file = location(result.path)  # a file: the annotation is shown on it
        if result.error:
            lines.append(command("error", result.error, file=file, title="runlint"))
        for note in result.notes:
            lines.append(command("warning", note, file=file, title="runlint"))
        for i, f in enumerate(result.findings):
            cause = result.cause_of(i)
            advice = f"fix: {f.fix}" if cause is None else consequence_line(cause)
            message = f"{result.name}: {f.message}\n{advice}"
            lines.append(
                command(
                    LEVELS[f.severity.value],
                    message,
                    file=file,
                    title=f"{f.code} {f.name}",
                )
            )
        for e in result.rule_errors:
            lines.append(
                command(
                    "error",
                    f"{e.code} {e.name} crashed on {result.name}: {e.error}",
                    file=file,
                    title=f"runlint: {e.code} crashed",
                )
            )
        if lines:
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()

    def finish(self, report: Report) -> None:
        for problem in report.problems:
            self.out.write(command("error", problem, title="runlint: rule module") + "\n")
        self.out.write(f"runlint: {report.summary_line()}\n")
