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

from runlint.run import limits

__all__ = ["hparams_meta", "parse_yaml"]

_KEY = re.compile(
    r"^(?P<indent> *)(?P<key>[^\s#:'\"-][^:#]*?|'[^']*'|\"[^\"]*\"):(?:\s+(?P<value>.*))?$"
)
_ITEM = re.compile(r"^(?P<indent> *)-(?:\s+(?P<value>.*))?$")
# YAML 1.1 as PyYAML resolves plain scalars (what Lightning's yaml.dump writes)
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_FLOAT = re.compile(
    r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?)$"
)
_SKIP = object()


def parse_yaml(text: str) -> dict[str, Any]:
    """Nested dicts (and lists of scalars) of ``text``; what it cannot read is left out."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    opened: dict[int, tuple[dict[str, Any], str, int]] = {}  # id(child) -> (parent, key, indent)
    last: tuple[dict[str, Any], str, int] | None = None  # the latest ``key:`` without a value
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "---", "...")):
            continue
        item = _ITEM.match(line.rstrip())
        if item is not None:
            if last is not None and len(item["indent"]) >= last[2]:
                parent, key, _ = last
                if parent.get(key) == {}:
                    parent[key] = []
                value = _scalar((item["value"] or "").strip())
                if isinstance(parent.get(key), list) and value is not _SKIP:
                    parent[key].append(value)
            continue
        match = _KEY.match(line.rstrip())
        if match is None:
            continue
        indent = len(match["indent"])
        key = match["key"].strip()
        if key[:1] in "'\"" and key[-1:] == key[:1]:
            key = key[1:-1]
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        raw = (match["value"] or "").strip()
        if raw and raw[0] not in "!&*":
            value = _scalar(raw)
            if value is not _SKIP:
                parent[key] = value
            last = None
            continue
        child: dict[str, Any] = {}
        if not raw:  # a nested mapping, a list, or null
            parent[key] = child
            opened[id(child)] = (parent, key, indent)
            last = (parent, key, indent)
        else:  # a tagged object: read into a throwaway mapping
            last = None
        stack.append((indent, child))
    for parent, key, _ in opened.values():
        if parent.get(key) == {}:
            parent[key] = None
    return root


def _scalar(raw: str) -> Any:
    if raw in ("{}", "[]"):
        return {} if raw == "{}" else []
    if raw.startswith(("!", "&", "*", "{", "[", "|", ">")):
        return _SKIP
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1]
    raw = re.sub(r"\s+#.*$", "", raw)
    if raw in ("null", "Null", "NULL", "~"):
        return None
    if raw in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return raw.lower() == "true"
    if raw in (".nan", ".NaN", ".NAN"):
        return math.nan
    if raw.lstrip("+-") in (".inf", ".Inf", ".INF"):
        return -math.inf if raw.startswith("-") else math.inf
    if _INT.match(raw):
        return int(raw.replace("_", ""))
    if _FLOAT.match(raw):
        return float(raw.replace("_", ""))
    return raw


_META_KEYS = {
    "num_classes": ("num_classes", "n_classes", "num_labels", "classes", "n_labels", "nclasses"),
    "batch_size": ("batch_size", "train_batch_size", "per_device_train_batch_size", "bs"),
}


def hparams_meta(folder: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """``(meta, provenance)`` from ``folder/hparams.yaml`` (empty when absent or unreadable)."""
    path = folder / "hparams.yaml"
    try:
        text = limits.read_meta_bytes(path).decode("utf-8", errors="replace")
    except (OSError, ValueError):
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
