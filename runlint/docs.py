"""Documentation rendered from the code: rule pages, the rule catalog, the run-directory format.

One model per page, several renderings:

- ``rule_page(rule)`` → ``RulePage`` (summary, docstring sections, requirements, options with
  type/default/help, severity, and on request an example finding from the fixture corpus),
  rendered by ``rule_markdown`` (SARIF help, docs), ``rule_text`` (SARIF help text) and
  ``print_rule`` (``runlint rule CODE``, through rich);
- ``render_catalog(rules, fmt)``: the catalog table as text, markdown or JSON
  (``runlint rules``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runlint.check import engine
from runlint.check.rule import Finding, Rule

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = [
    "CATALOG_FORMATS",
    "Example",
    "OptionDoc",
    "RulePage",
    "catalog_table",
    "find_example",
    "print_rule",
    "render_catalog",
    "rule_markdown",
    "rule_page",
    "rule_text",
]

CATALOG_FORMATS = ("text", "markdown", "json")
ROOT = Path(__file__).resolve().parents[1]  # the source checkout (fixtures, README) if any


# -- the model of a rule's page -----------------------------------------------------------------


@dataclass(frozen=True)
class OptionDoc:
    """One configurable value of a rule as its page shows it (``severity`` included)."""

    name: str  # kebab-case, as written in [tool.runlint.RLxxx]
    type: str
    default: str  # TOML
    help: str


@dataclass(frozen=True)
class Example:
    """A finding of the rule on its ``bad`` fixture run."""

    run: str  # the run directory, as given
    finding: Finding


@dataclass(frozen=True)
class RulePage:
    """Everything a rule's documentation says, from its class."""

    code: str
    name: str
    severity: str
    summary: str
    intro: str  # docstring text between the summary and the first section
    sections: tuple[tuple[str, str], ...]  # (title, markdown) in docstring order
    requires: tuple[str, ...]
    options: tuple[OptionDoc, ...]  # the rule's options, then severity
    example: Example | None = None

    @property
    def config_table(self) -> str:
        return f"[tool.runlint.{self.code}]"

    def section(self, title: str) -> str:
        return next((text for t, text in self.sections if t == title), "")


def toml_value(value: Any) -> str:
    """``value`` as written in TOML (tuples as arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if value is None:
        return "(none)"
    return repr(value)


def _sections(doc: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """Summary, intro and ``## `` sections of a dedented docstring."""
    summary, _, body = doc.strip().partition("\n")
    parts = re.split(r"^## (.+?)[ \t]*$", body, flags=re.M)
    intro = parts[0].strip()
    sections = tuple((parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2))
    return summary.strip(), intro, sections


def rule_page(rule: type[Rule], *, example: bool = False) -> RulePage:
    """The documentation page of ``rule``; with ``example``, a finding from the corpus."""
    summary, intro, sections = _sections(engine.rule_doc(rule))
    options = [
        OptionDoc(f.name.replace("_", "-"), engine.type_name(f.type), toml_value(f.default), f.help)
        for f in engine.option_fields(rule)
    ]
    options.append(
        OptionDoc(
            "severity",
            "info | warning | error",
            toml_value(rule.severity.value),
            "its findings' severity",
        )
    )
    return RulePage(
        code=rule.code,
        name=rule.name,
        severity=rule.severity.value,
        summary=summary,
        intro=intro,
        sections=sections,
        requires=tuple(str(n) for n in rule.needs),
        options=tuple(options),
        example=find_example(rule) if example else None,
    )


def corpus_roots() -> list[Path]:
    """Where the fixture corpus may be: under the working directory, or in this checkout."""
    roots = [Path.cwd() / "fixtures" / "corpus", ROOT / "fixtures" / "corpus"]
    return list(dict.fromkeys(r.resolve() for r in roots))


def find_example(rule: type[Rule], roots: Sequence[Path] | None = None) -> Example | None:
    """The rule's first finding on a run of the corpus manifest that expects it (its ``bad``
    fixture), or ``None`` when no corpus is at hand (an installed wheel)."""
    for root in corpus_roots() if roots is None else roots:
        manifest = root / "manifest.json"
        if not manifest.is_file():
            continue
        try:
            entries = json.loads(manifest.read_text(encoding="utf-8")).get("runs", [])
        except (OSError, ValueError, AttributeError):
            continue
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            expected = [*entry.get("expect", []), *entry.get("expect_info", [])]
            if rule.code not in expected:
                continue
            path = root / str(entry.get("path", ""))
            result = engine.Checker([rule()]).check_path(path)
            if result.findings:
                return Example(str(path), result.findings[0])
    return None


# -- rendering a rule's page ----------------------------------------------------------------------


def _cell(text: str) -> str:
    """Text for a markdown table cell: one line, ``|`` escaped (once)."""
    return re.sub(r"(?<!\\)\|", r"\\|", " ".join(text.split()))


def _option_line(option: OptionDoc) -> tuple[str, str]:
    """``name = default`` and ``type: help`` (the text page's two columns)."""
    return f"{option.name} = {option.default}", f"{option.type}: {option.help}"


def _example_lines(example: Example) -> list[str]:
    """The finding as the text report shows it: header, message, ``fix:``."""
    f = example.finding
    return [f"{f.code} {f.severity.value} {Path(example.run).name}", f.message, f"fix: {f.fix}"]


def _display(path: str) -> str:
    from runlint.report import display_path

    return display_path(path)


def _body(page: RulePage, heading: str = "## ") -> str:
    parts = [page.intro] if page.intro else []
    parts += [f"{heading}{title}\n{text}" for title, text in page.sections]
    return "\n\n".join(parts)


def rule_markdown(page: RulePage, heading_level: int = 2) -> str:
    """The page in markdown (SARIF ``help.markdown``, generated docs)."""
    h = "#" * heading_level + " "
    lines = [
        f"**{page.code} {page.name}** ({page.severity}): {page.summary}",
        "",
        _body(page, h),
        "",
        f"{h}Requires",
        ", ".join(f"`{r}`" for r in page.requires) or "nothing",
        "",
        f"{h}Options",
        f"In `{page.config_table}` of `pyproject.toml`:",
        "",
        "| option | type | default | meaning |",
        "|---|---|---|---|",
        *(
            f"| `{o.name}` | `{_cell(o.type)}` | `{_cell(o.default)}` | {_cell(o.help)} |"
            for o in page.options
        ),
    ]
    if page.example is not None:
        lines += [
            "",
            f"{h}Example",
            f"On the fixture `{_display(page.example.run)}`:",
            "",
            "```text",
            *(
                line if i == 0 else "  " + line
                for i, line in enumerate(_example_lines(page.example))
            ),
            "```",
        ]
    return "\n".join(lines).strip() + "\n"


def rule_text(page: RulePage) -> str:
    """The page as plain text: what ``runlint rule CODE`` prints, without colours."""
    lines = [f"{page.code} {page.name} ({page.severity}): {page.summary}"]
    body = _body(page)
    if body:
        lines += ["", body]
    lines += ["", "Needs: " + (", ".join(page.requires) or "nothing")]
    lines.append(f"Options ({page.config_table} in pyproject.toml):")
    lines += [f"  {left}    {right}" for left, right in map(_option_line, page.options)]
    if page.example is not None:
        lines.append(f"Example (fixture {_display(page.example.run)}):")
        lines += ["  " + line for line in _example_lines(page.example)]
    return "\n".join(lines) + "\n"


def print_rule(page: RulePage, console: Console) -> None:
    """The page on a rich console: the docstring rendered as markdown, the rest as text."""
    from rich.markdown import Markdown
    from rich.markup import escape
    from rich.text import Text

    console.print(f"[bold]{page.code} {page.name}[/bold] ({page.severity}): {escape(page.summary)}")
    body = _body(page)
    if body:
        console.print(Markdown(body))
    console.print()
    console.print(Text.assemble(("Needs: ", "bold"), ", ".join(page.requires) or "nothing"))
    console.print(Text.assemble(("Options", "bold"), f" ({page.config_table} in pyproject.toml):"))
    for left, right in map(_option_line, page.options):
        console.print(Text.assemble(f"  {left}    ", (right, "dim")))
    if page.example is not None:
        console.print(
            Text.assemble(("Example", "bold"), f" (fixture {_display(page.example.run)}):")
        )
        for line in _example_lines(page.example):
            console.print(Text("  " + line))


# -- the catalog --------------------------------------------------------------------------------


def catalog_rows(rules: Iterable[type[Rule]]) -> list[dict[str, str]]:
    """One row per rule: code, name, severity, summary, requires."""
    return [
        {
            "code": r.code,
            "name": r.name,
            "severity": r.severity.value,
            "summary": engine.rule_summary(r),
            "requires": ", ".join(map(str, r.needs)),
        }
        for r in rules
    ]


def render_catalog(rules: Iterable[type[Rule]], fmt: str = "text", width: int | None = None) -> str:
    """The catalog table: ``text`` (aligned columns, ``width`` wide), ``markdown`` or ``json``."""
    rules = list(rules)
    rows = catalog_rows(rules)
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "markdown":
        lines = ["| code | name | severity | what it catches | needs |", "|---|---|---|---|---|"]
        for r in rows:
            cells = [r["code"], f"`{r['name']}`", r["severity"], r["summary"], r["requires"]]
            lines.append("| " + " | ".join(_cell(c) or "—" for c in cells) + " |")
        return "\n".join(lines) + "\n"
    if fmt != "text":
        raise ValueError(f"unknown catalog format {fmt!r}; choose one of {CATALOG_FORMATS}")
    import io

    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 80, highlight=False, color_system=None)
    console.print(catalog_table(rules))
    return buffer.getvalue()


def catalog_table(rules: Iterable[type[Rule]]) -> Table:
    """The catalog as a rich table (``runlint rules`` on a console)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("code", "name", "severity", "what it catches"):
        table.add_column(column, overflow="fold")
    for r in catalog_rows(rules):
        table.add_row(*(Text(r[k]) for k in ("code", "name", "severity", "summary")))
    return table
