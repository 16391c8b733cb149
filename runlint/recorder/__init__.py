"""Recording (needs torch): hooks that write a PyTorch run into a Parquet run directory.

``Recorder`` is what ``runlint.record(...)`` returns; ``RunExistsError`` (a ``FileExistsError``)
is what it raises when the run directory belongs to another writer or already holds a run.
"""

from runlint.recorder.recorder import Recorder
from runlint.recorder.rundir import RunExistsError

__all__ = ["Recorder", "RunExistsError"]
