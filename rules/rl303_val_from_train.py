"""RL303 val-from-train."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from runlint.analysis.epochs import TRAIN_AND_VAL
from runlint.analysis.wording import fmt
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class ValFromTrain(Rule):
    """The examples evaluated are training examples: the validation curves measure fit.

    ## Why it matters
    The seed splits the data before anything else ("先分好训练和测试,然后训练数据分成训练集和
    验证集 … 原则:先划分再处理") because the gap between training and validation accuracy is
    how it reads overfitting. A validation set drawn from the training set closes that gap by
    construction: an overfitting model looks healthy, early stopping and the learning-rate
    decay that watch the validation loss watch the training loss instead. The curves cannot
    show it (the validation curve of a model that does not overfit tracks the training curve
    anyway); the examples can. The recorder fingerprints the examples of training passes and
    a sample of every evaluation pass (``examples`` table); the rule takes the evaluations
    that precede a ``log_epoch`` with validation metrics, cuts their examples, in the order
    they were fed, into chunks of ``chunk``, and counts the evaluated examples that are
    training examples, scaled by the share of the training set the recorder saw (its
    ``coverage``).

    A warning needs a share of at least ``leak`` and no chunk free of training examples: no
    pass of what the run evaluated is held out. When clean chunks sit beside chunks of
    training examples, the loop evaluates on a training subset as well as on held-out data
    (common: a training accuracy in eval mode), or half its validation set is training data;
    the two look alike, so that is ``info``.

    ## Known problems
    Augmented or noised training inputs never equal the clean evaluation inputs: a leak is
    not seen through augmentation. Training sets far larger than the recorder's budget
    (``Examples.TRAIN_EXAMPLES``) are covered in part; below ``min_coverage`` the rule does not
    judge. A loop that evaluates its validation set with another model (an EMA copy) and the
    recorded model on training data only is reported as a leak. Data sets with exact
    duplicates across the split (tabular data with few distinct rows, short token sequences)
    show them; above ``leak`` they are a leak in fact. Only the first
    ``Examples.EVAL_PER_PASS`` examples of each evaluation pass are fingerprinted: a validation
    set evaluated in a few large passes whose leaked part comes first looks wholly leaked (it
    is leaked), one whose clean part comes first looks clean.

    ## Fix
    Split the validation set off the data before training and never train on it (a fixed
    ``random_split`` with a seeded generator, or a held-out file); check that the indices
    are disjoint.

    ## Seed
    "数据划分:先分好训练和测试,然后训练数据分成训练集和验证集,5折交叉验证。原则:先划分再处理。"
    """

    code = "RL303"
    name = "val-from-train"
    severity = Severity.WARNING
    requires = ("examples.fingerprint", TRAIN_AND_VAL)

    @dataclass
    class Options(Rule.Options):
        leak: float = option(
            0.5,
            "share of the evaluated examples that are training examples (after coverage) at "
            "least this; exact duplicates across a proper split stay far below (0 in drawn "
            "healthy runs)",
        )
        clean: float = option(
            0.1, "a chunk with at most this share of training examples is held out"
        )
        chunk: int = option(16, "evaluated examples per chunk, in the order fed")
        min_coverage: float = option(
            0.5, "share of an epoch's training examples fingerprinted at least this"
        )
        min_train: int = option(100, "distinct training examples fingerprinted at least this")
        min_eval: int = option(
            16,
            "evaluated examples judged at least this: one pass's sample (the recorder's "
            "Examples.EVAL_PER_PASS), as a one-epoch run evaluates once; a held-out example "
            "matches a training fingerprint only as an exact duplicate",
        )

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        o = self.options
        ex = run.examples
        if not {"phase", "fingerprint", "step"} <= set(ex.columns):
            return
        phase = ex["phase"].to_numpy(dtype=object)
        prints = ex["fingerprint"].to_numpy()
        steps = ex["step"].to_numpy()
        train = phase == "train"
        seen = np.unique(prints[train])
        coverage = _coverage(len(seen), steps[train], run.epochs)
        if len(seen) < o.min_train or coverage < o.min_coverage:
            return
        judged = ~train & _at_validation(steps, run)
        if int(judged.sum()) < o.min_eval:
            return
        ranks = ex["rank"].to_numpy() if "rank" in ex.columns else np.zeros(len(ex), dtype=int)
        hits = np.isin(prints[judged], seen)
        share = min(1.0, float(hits.mean()) / coverage)
        if share < o.leak:
            return
        # chunks in the order fed, within one evaluation (a step of a rank)
        keys = pd.Series(list(zip(ranks[judged], steps[judged], strict=True)))
        chunk = keys.groupby(keys).cumcount().to_numpy() // o.chunk
        shares = pd.Series(hits).groupby([keys, chunk]).mean().to_numpy() / coverage
        held_out = int((shares <= o.clean).sum())
        first, last = int(steps[judged].min()), int(steps[judged].max())
        n, matched = int(judged.sum()), int(hits.sum())
        message = f"{matched} of the {n} examples evaluated for the validation metrics "
        message += f"(steps {first}–{last}) are training examples"
        if coverage < 1:
            message += (
                f"; with {fmt(100 * coverage)} % of the training set fingerprinted, an "
                f"estimated {fmt(100 * share)} % of what was evaluated"
            )
        evidence = {"share": share, "matched": matched, "evaluated": n, "coverage": coverage}
        if held_out == 0:
            yield self.finding(
                run,
                message + "; no evaluation pass is held out",
                steps=(first, last),
                evidence=evidence,
            )
            return
        yield self.finding(
            run,
            message + f"; {held_out} of {len(shares)} chunks of {o.chunk} are held out (a "
            "training-set evaluation beside the validation set, or half of it drawn from "
            "the training data)",
            "if the validation set holds training examples, split it off first; a "
            "training-set evaluation is fine",
            severity=Severity.INFO,
            steps=(first, last),
            evidence={**evidence, "held_out_chunks": held_out},
        )


def _coverage(distinct: int, train_steps: np.ndarray, epochs: pd.DataFrame) -> float:
    """Share of one epoch's training examples that were fingerprinted: the distinct ones over
    examples per step × steps per epoch (1 when the run logged no epoch)."""
    if distinct == 0 or "step" not in epochs.columns or epochs.empty:
        return 1.0
    closed = epochs["step"].to_numpy(dtype=float)
    per_epoch = float(np.median(np.diff(closed))) if len(closed) > 1 else float(closed[0])
    counts = np.unique(train_steps, return_counts=True)[1]
    if per_epoch <= 0 or len(counts) == 0:
        return 1.0
    per_step = float(np.median(counts[:-1] if len(counts) > 1 else counts))  # the last: cut
    return min(1.0, distinct / (per_step * per_epoch))


def _at_validation(steps: np.ndarray, run: Run) -> np.ndarray:
    """The evaluation rows at the steps of epochs that logged a validation metric (all rows
    when none matches: the validation metrics were logged otherwise)."""
    epochs = run.epochs
    val = [c for c in (run.column("epochs", "val_loss"), run.column("epochs", "val_acc")) if c]
    if not val or "step" not in epochs.columns:
        return np.ones(len(steps), dtype=bool)
    logged = epochs["step"][epochs[val].notna().any(axis=1)].to_numpy()
    at = np.isin(steps, logged)
    return at if at.any() else np.ones(len(steps), dtype=bool)
