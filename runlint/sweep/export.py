"""A search as plain data: the ``search`` object of ``runlint sweep --format json`` and the
data the HTML page draws."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from runlint.report import jsonable
from runlint.sweep.judge import sampled
from runlint.sweep.model import Dimension, Search
from runlint.sweep.space import uses_log

__all__ = ["dimension_dict", "search_dict"]


def dimension_dict(search: Search, dim: Dimension) -> dict[str, Any]:
    """A dimension with the scale the rules judged it on (``log``)."""
    out = asdict(dim)
    out["choices"] = list(dim.choices)
    out["log"] = uses_log(dim, sampled(search, dim.name)) if dim.numeric else None
    out["log_declared"] = dim.log
    return out


def search_dict(search: Search) -> dict[str, Any]:
    """``{"location", "source", "objective", "space", "stages", "best", "trials"}``."""
    best = search.best
    return jsonable(
        {
            "location": search.location,
            "source": search.source,
            "objective": {
                "name": search.objective.name,
                "direction": search.objective.direction,
                "how": search.objective.how,
            },
            "space": {n: dimension_dict(search, d) for n, d in search.space.items()},
            "stages": [{"name": s.name, "trials": [t.id for t in s.trials]} for s in search.stages],
            "best": best.id if best is not None else None,
            "trials": [
                {
                    "id": t.id,
                    "number": t.number,
                    "state": t.state,
                    "value": t.value,
                    "params": t.params,
                    "epochs": t.epochs,
                    "curve": t.curve,
                    "start": t.start,
                    "end": t.end,
                    "stage": t.stage,
                    "run": str(t.run) if t.run is not None else None,
                }
                for t in search.trials
            ],
            "notes": search.notes,
        }
    )
