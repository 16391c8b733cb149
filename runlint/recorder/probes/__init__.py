"""The recorder's probes: each records one kind of signal and owns its state, its schedule, its
hooks and how its rows become a table's columns at the flush (``base.Probe``).

  groups       param-group settings (lr, momentum, betas, ...) at every optimizer step
  norms        per-parameter gradient norm, parameter norm and update ratio (``params``)
  activations  activation statistics from samples of the activation modules' outputs
  histograms   activation and gradient histograms
  weights      first-layer weight snapshots
  outputs      statistics of the model's output (what the loss is fed)
  examples     fingerprints of the examples of training and evaluation passes
  scalars      what ``rec.log`` and ``rec.log_epoch`` are given (``steps``, ``epochs``; ``log``)
  meta         run metadata, static and dynamic, with the provenance of inferred values
"""

from runlint.recorder.probes.activations import Activations
from runlint.recorder.probes.base import Probe, Shared
from runlint.recorder.probes.examples import Examples
from runlint.recorder.probes.groups import Groups
from runlint.recorder.probes.histograms import Histograms
from runlint.recorder.probes.meta import Meta
from runlint.recorder.probes.norms import Norms
from runlint.recorder.probes.outputs import Outputs
from runlint.recorder.probes.scalars import Scalars
from runlint.recorder.probes.weights import Weights

__all__ = [
    "Activations",
    "Examples",
    "Groups",
    "Histograms",
    "Meta",
    "Norms",
    "Outputs",
    "Probe",
    "Scalars",
    "Shared",
    "Weights",
]
