"""Recording (needs torch): hooks that write a PyTorch run into a Parquet run directory.

``Recorder`` is what ``runlint.record(...)`` returns.
"""

from runlint.recorder.recorder import Recorder

__all__ = ["Recorder"]
