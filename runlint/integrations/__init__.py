"""Framework callbacks that record a run with ``runlint.record``'s recorder.

``runlint.integrations.lightning.RunlintCallback`` (needs ``runlint[lightning]``) and
``runlint.integrations.hf.RunlintCallback`` (needs ``runlint[hf]``). Both import torch and
their framework; nothing else in runlint imports this package.
"""
