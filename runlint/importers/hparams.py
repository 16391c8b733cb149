"""Lightning's ``hparams.yaml``: a small YAML subset read without a YAML dependency.

``save_hyperparameters()`` writes ``key: value`` lines, nested mappings by indentation and
``- item`` lists. Scalars (numbers, booleans, null, plain or quoted strings) are read; anything
else (Python object tags, flow collections, multi-line strings) is left out rather than guessed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

__all__ = ["hparams_meta", "parse_yaml"]

_KEY = re.compile(
    r"^(?P<indent> *)(?P<key>[^\s#:'\"][^:#]*?|'[^']*'|\"[^\"]*\"):(?:\s+(?P<value>.*))?$"
)
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_FLOAT = re.compile(r"^[-+]?(?:\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)$")


def parse_yaml(text: str) -> dict[str, Any]:
    """Nested dicts of the scalars in ``text``; lines it cannot read are skipped."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "- ", "---")) or line.strip() == "-":
            continue
        match = _KEY.match(line.rstrip())
        if match is None:
            continue
        indent = len(match["indent"])
        key = match["key"].strip().strip("'\"")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if not stack:
            stack = [(-1, root)]
        parent = stack[-1][1]
        raw = (match["value"] or "").strip()
        if not raw:
            child: dict[str, Any] = {}
            parent[key] = child
            stack.append((indent, child))
            continue
        value = _scalar(raw)
        if value is not _SKIP:
            parent[key] = value
    return root


_SKIP = object()


def _scalar(raw: str) -> Any:
    if raw.startswith(("!", "&", "*", "{", "[", "|", ">")):
        return _SKIP
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    raw = re.sub(r"\s+#.*$", "", raw)
    lowered = raw.lower()
    if lowered in ("null", "~"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in (".nan",):
        return math.nan
    if lowered in (".inf", "+.inf", "-.inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if _INT.match(raw):
        return int(raw.replace("_", ""))
    if _FLOAT.match(raw) and any(c.isdigit() for c in raw):
        try:
            return float(raw.replace("_", ""))
        except ValueError:
            return raw
    return raw


_META_KEYS = {
    "num_classes": ("num_classes", "n_classes", "num_labels", "classes", "n_labels", "nclasses"),
    "batch_size": ("batch_size", "train_batch_size", "per_device_train_batch_size", "bs"),
}


def hparams_meta(folder: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """``(meta, provenance)`` from ``folder/hparams.yaml`` (empty when absent or unreadable)."""
    path = folder / "hparams.yaml"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}, {}
    hparams = parse_yaml(text)
    flat = _flatten(hparams)
    meta: dict[str, Any] = {"hparams": hparams} if hparams else {}
    provenance: dict[str, str] = {}
    for target, keys in _META_KEYS.items():
        for dotted, value in flat.items():
            if dotted.rsplit(".", 1)[-1] in keys and _positive_int(value):
                meta[target] = int(value)
                provenance[target] = f"hparams.yaml {dotted}"
                break
    return meta, provenance


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
