"""Framework callbacks that record a run with ``runlint.record``'s recorder, and search
engines that act on its live findings.

``runlint.integrations.lightning.RunlintCallback`` (needs ``runlint[lightning]``) and
``runlint.integrations.hf.RunlintCallback`` (needs ``runlint[hf]``) import torch and their
framework. ``runlint.integrations.optuna.RunlintPruner`` (``runlint[optuna]``) and
``runlint.integrations.ray.RunlintStopper`` (``runlint[ray]``) end the trials of a search whose
run the live check diagnoses as broken; they read the run directory and import no torch.
Nothing else in runlint imports this package.
"""
