"""Documentation rendered from the code: rule pages, the rule catalog, the run-directory format.

One model per page, several renderings:

- ``rule_page(rule)`` → ``RulePage`` (summary, docstring sections, requirements, options with
  type/default/help, severity, and on request an example finding from the fixture corpus),
  rendered by ``rule_markdown`` (SARIF help, docs), ``rule_text`` (SARIF help text) and
  ``print_rule`` (``runlint rule CODE``, through rich);
- ``render_catalog(rules, fmt)``: the catalog table as text, markdown or JSON
  (``runlint rules``, README);
- the generated blocks of README.md (the rule catalog, the flags of ``runlint check``, the sweep
  rules and the flags ``runlint sweep`` adds) and
  docs/format.md (layout, tables and columns, metadata keys: ``runlint.schema``) between
  ``<!-- generated: NAME -->`` and ``<!-- end -->``; the prose around them is hand-written.

``python -m runlint.docs --write`` rewrites those blocks; ``--check`` exits 1 when one is
stale (a test runs it).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

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
    "generated_files",
    "main",
    "print_rule",
    "render_blocks",
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


# -- docs/format.md from the schema -------------------------------------------------------------


def _layout_block() -> str:
    from runlint.schema import layout

    tables = layout.TABLES
    first, second = tables[0], tables[1] if len(tables) > 1 else tables[0]
    part, compact = layout.part_name, layout.compact_name
    width = 33
    rows = [
        (f"{layout.META_FILE}", "run metadata (rank 0 only), rewritten atomically"),
        (f"{layout.FINDINGS_FILE}", "live check only: one JSON event per line (appended)"),
        (f"{layout.PARTS_DIR}/", "while running: one file per table, rank and flush"),
        *((f"  {part(t, 0, 0)}", "") for t in tables),
        (f"  {part(first, 1, 0)}", "another rank's parts"),
        (compact(first, 0), "after close: the parts of one rank merged per table"),
        *((compact(t, 0), "") for t in tables[1:]),
        (compact(second, 1), "another rank's tables"),
    ]
    lines = ["```", "logdir/"]
    lines += [f"  {name:{width}s}{note}".rstrip() for name, note in rows]
    return "\n".join([*lines, "```"])


def _meta_json_block() -> str:
    from runlint.schema import layout

    doc = f'{{"format": "{layout.FORMAT_NAME}", "version": {layout.FORMAT_VERSION}, '
    return "```json\n" + doc + '"complete": true, "meta": {...}}\n```'


def _meta_block() -> str:
    from runlint.check.config import meta_options
    from runlint.schema import META

    flags = {key.name: name for name, key in meta_options().items()}
    lines = ["| key | type | meaning | flag, config key |", "|---|---|---|---|"]
    for key in META.values():
        given = f"`--{flags[key.name]}`, `{flags[key.name]}`" if key.name in flags else ""
        lines.append(f"| `{key.name}` | {_cell(key.type)} | {_cell(key.doc)} | {given} |")
    return "\n".join(lines)


def _tables_block() -> str:
    from runlint.schema.tables import AVERAGED, TABLES

    def code(names: Iterable[str]) -> str:
        return ", ".join(f"`{n}`" for n in names)

    out = ["| table | written | a view row per |", "|---|---|---|"]
    out += [f"| `{t.name}` | {_cell(t.written)} | {code(t.keys)} |" for t in TABLES.values()]
    for t in TABLES.values():
        notes = [f"Written {t.written}; a row of the view per {code(t.keys)}."]
        if t.open:
            notes.append(f"Also holds {t.open}.")
        if t.joins:
            notes.append(f"The view also shows the columns of {code(t.joins)}.")
        averaged = [f"`{c}`" for c in t.names if c in AVERAGED]
        if averaged:
            notes.append(f"The view averages the rows of one key over {' and '.join(averaged)}.")
        out += ["", f"### `{t.name}`", "", " ".join(notes), ""]
        out += ["| column | type | meaning |", "|---|---|---|"]
        for c in t.columns:
            meaning = c.doc
            if c.aliases:
                meaning += f" (also read from {code(c.aliases)})"
            if c.absent:
                meaning += f"; absent: {c.absent}"
            out.append(f"| `{c.name}` | {_cell(c.type)} | {_cell(meaning)} |")
    return "\n".join(out)


def _format_title() -> str:
    from runlint.schema import layout

    return f"# runlint run directory format (version {layout.FORMAT_VERSION})"


# -- README blocks --------------------------------------------------------------------------------


def _rules_block() -> str:
    return render_catalog(engine.discover().rules, "markdown").rstrip("\n")


def _sweep_rules_block() -> str:
    """The sweep rules (``RL8xx``, ``runlint.sweep``): the same table as the run rules'."""
    from runlint.sweep.rule import discover as discover_sweep

    rules = cast("list[type[Rule]]", list(discover_sweep().rules))  # the same class attributes
    return render_catalog(rules, "markdown").rstrip("\n")


def _sweep_flags_block() -> str:
    """The flags ``runlint sweep`` adds to ``runlint check``'s."""
    from runlint.cli.sweep import EXTRA

    lines = ["| flag | meaning |", "|---|---|"]
    for flag in EXTRA:
        lines.append(f"| `{_cell(flag.spelled)}` | {_cell(flag.doc or flag.help)} |")
    return "\n".join(lines)


def _check_flags_block() -> str:
    from runlint.cli.check import check_flags

    lines = ["| flag | meaning |", "|---|---|"]
    for flag in check_flags():
        if flag.positional:
            continue
        lines.append(f"| `{_cell(flag.spelled)}` | {_cell(flag.doc or flag.help)} |")
    return "\n".join(lines)


#: The generated blocks of each file, by name.
BLOCKS: dict[str, dict[str, Callable[[], str]]] = {
    "README.md": {
        "rules": _rules_block,
        "check-flags": _check_flags_block,
        "sweep-rules": _sweep_rules_block,
        "sweep-flags": _sweep_flags_block,
    },
    "docs/format.md": {
        "format-title": _format_title,
        "layout": _layout_block,
        "meta-json": _meta_json_block,
        "meta-keys": _meta_block,
        "tables": _tables_block,
    },
}

_BLOCK_RE = re.compile(
    r"(?P<open><!-- generated: (?P<name>[\w-]+)[^>]*-->\n)(?P<body>.*?)(?P<close><!-- end -->)",
    re.S,
)


def render_blocks(text: str, blocks: Mapping[str, Callable[[], str]], where: str = "") -> str:
    """``text`` with the body of every generated block replaced by its rendering.

    Raises ``ValueError`` for a block whose name is unknown or a known block missing."""
    seen = set()

    def replace(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in blocks:
            raise ValueError(f"{where}: unknown generated block {name!r}")
        seen.add(name)
        return m["open"] + blocks[name]().rstrip("\n") + "\n" + m["close"]

    out = _BLOCK_RE.sub(replace, text)
    missing = sorted(set(blocks) - seen)
    if missing:
        raise ValueError(f"{where}: no generated block {', '.join(missing)}")
    return out


def generated_files(root: Path = ROOT) -> dict[Path, tuple[str, str]]:
    """Each file with generated blocks: (its text now, its text regenerated)."""
    out = {}
    for name, blocks in BLOCKS.items():
        path = root / name
        text = path.read_text(encoding="utf-8")
        out[path] = (text, render_blocks(text, blocks, name))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m runlint.docs --write | --check``."""
    parser = argparse.ArgumentParser(
        prog="python -m runlint.docs",
        description="Regenerate the generated blocks of README.md and docs/format.md.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the stale files")
    mode.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="the source checkout")
    args = parser.parse_args(argv)
    try:
        files = generated_files(args.root)
    except (OSError, ValueError) as exc:
        print(f"runlint.docs: error: {exc}", file=sys.stderr)
        return 2
    stale = []
    for path, (old, new) in files.items():
        if old == new:
            continue
        stale.append(path)
        if args.write:
            path.write_text(new, encoding="utf-8")
    verb = "rewrote" if args.write else "stale"
    for path in stale:
        print(f"{verb}: {path.relative_to(args.root)}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
