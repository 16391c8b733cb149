"""``runlint sweep``: a hyperparameter search linted as a whole (seed §5).

A search is read from its trials' runs (runlint run directories, Hugging Face, Lightning and
TensorBoard logs), an Optuna storage (``runlint[optuna]``) or a Ray Tune experiment folder
(plain files, no Ray needed), into one ``Search``: trials with their hyperparameters, the
objective (per epoch and overall), the searched space (declared or inferred, with its scale)
and the stages of a coarse-to-fine search. The sweep rules (``RL8xx``, in ``rules/`` like the
run rules, subclasses of ``SweepRule``) judge it; the best trial's run is checked with the run
rules as ``runlint check`` would.

    from runlint.sweep import Want, lint_paths
    linted = lint_paths(["sqlite:///study.db"])
    for finding in linted.result.findings:
        print(finding.code, finding.message)
"""

from runlint.sweep.model import Dimension, Objective, Search, Stage, Trial  # noqa: I001
from runlint.sweep.rule import SweepCatalog, SweepRule, discover
from runlint.sweep.sources import Loaded, SourceError, TrialSource, Want, load_search, open_source
from runlint.sweep.lint import Linted, lint, lint_paths

__all__ = [
    "Dimension",
    "Linted",
    "Loaded",
    "Objective",
    "Search",
    "SourceError",
    "Stage",
    "SweepCatalog",
    "SweepRule",
    "Trial",
    "TrialSource",
    "Want",
    "discover",
    "lint",
    "lint_paths",
    "load_search",
    "open_source",
]
