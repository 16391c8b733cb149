"""Print the README's first two commands (its first fenced block), one per line, for .ci/run."""

from pathlib import Path

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text(encoding="utf-8")
block = text.split("```", 2)[1]  # the language tag, then the commands
lines = [line.strip() for line in block.splitlines()[1:] if line.strip()]
if len(lines) != 2:
    raise SystemExit(f"README.md: the first block holds {len(lines)} commands, not 2")
print("\n".join(lines))
