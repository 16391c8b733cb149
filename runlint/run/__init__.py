"""Runs as the rules see them: loading run directories and foreign logs into ``Run`` views."""

from runlint.run.views import NothingLogged, Run, RunError, from_tables  # noqa: I001  (views first)
from runlint.run.find import find_runs, is_run_dir
from runlint.run.read import load_run

__all__ = ["NothingLogged", "Run", "RunError", "find_runs", "from_tables", "is_run_dir", "load_run"]
