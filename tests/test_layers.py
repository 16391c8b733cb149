"""runlint.layers: parameter kinds, depth order, numpy per-key reductions, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import runlint
from runlint.analysis.epochs import TRAIN_AND_VAL, curves
from runlint.analysis.layers import (
    BIAS,
    DENSE,
    EMBEDDING,
    NORM,
    OTHER,
    input_output_ratio,
    lr_mask,
    param_table,
    params_long,
)
from runlint.run import Run

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def corpus_run(name: str) -> Run:
    path = CORPUS / name
    if not path.is_dir():
        pytest.fail(f"corpus run {name} missing: run fixtures/make_corpus.py")
    return runlint.load_run(path)


@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory: pytest.TempPathFactory) -> Run:

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(16, 8)
            self.pos = nn.Parameter(torch.zeros(1, 4, 8))
            self.norm = nn.LayerNorm(8)
            self.fc = nn.Linear(8, 8)
            self.act = nn.ReLU()
            self.head = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.norm(self.emb(x) + self.pos)
            return self.head(self.act(self.fc(h)).mean(1))

    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randint(0, 16, (64, 4))
    y = x[:, 0] % 3
    path = tmp_path_factory.mktemp("layers") / "tiny-transformer"
    with runlint.record(model, opt, path, stats_every=2) as rec:
        for _ in range(12):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
    return runlint.load_run(path)


def test_param_kinds_follow_module_type_and_role(transformer_run: Run) -> None:
    kinds = param_table(transformer_run)["kind"].to_dict()
    assert kinds["emb.weight"] == EMBEDDING
    assert kinds["norm.weight"] == NORM and kinds["norm.bias"] == NORM
    assert kinds["fc.weight"] == DENSE and kinds["head.weight"] == DENSE
    assert kinds["fc.bias"] == BIAS and kinds["head.bias"] == BIAS
    assert kinds["pos"] == OTHER


def test_dense_depth_counts_only_dense_weights_in_model_order(transformer_run: Run) -> None:
    table = param_table(transformer_run)
    dense = table[table["kind"] == DENSE]
    assert list(dense.index) == ["fc.weight", "head.weight"]
    assert list(dense["dense_depth"]) == [0.0, 1.0]
    assert table["dense_depth"].isna().sum() == len(table) - 2


def test_kinds_are_guessed_from_names_without_metadata(transformer_run: Run) -> None:
    bare = Run(transformer_run.path, meta={}, params=transformer_run.params)
    kinds = param_table(bare)["kind"].to_dict()
    assert kinds["emb.weight"] == EMBEDDING
    assert kinds["norm.weight"] == NORM
    assert kinds["fc.weight"] == DENSE
    assert kinds["fc.bias"] == BIAS


def test_long_quantile_and_reduce_match_pandas_groupby() -> None:
    run = corpus_run("tokens-transformer-adamw-smoothing")
    long = params_long(run)
    ratio = long.col("update_ratio")
    ours = long.median(ratio)
    frame = run.params[np.isfinite(run.params["update_ratio"].to_numpy(dtype=float))]
    theirs = frame.groupby("param")["update_ratio"].median()
    pd.testing.assert_series_equal(
        ours.sort_index(), theirs.sort_index(), check_names=False, check_index_type=False
    )
    q90 = long.quantile(ratio, 0.9)
    np.testing.assert_allclose(
        q90.sort_index().to_numpy(),
        frame.groupby("param")["update_ratio"].quantile(0.9).sort_index().to_numpy(),
    )
    peak = long.reduce(long.col("grad_norm"), "max")
    np.testing.assert_allclose(
        peak.sort_index().to_numpy(),
        run.params.groupby("param")["grad_norm"].max().sort_index().to_numpy(),
    )


def test_lr_mask_skips_warmup_steps() -> None:
    run = corpus_run("images-cnn-sgd-warmup-cosine")
    long = params_long(run)
    mask = lr_mask(run, long, 0.5)
    lr = run.steps["lr"]
    kept = np.unique(long.step[mask])
    assert 0 not in kept  # step 0 is deep in the warm-up
    assert (lr.reindex(kept) >= 0.5 * lr.max() - 1e-12).all()
    assert mask.sum() < len(mask)


def test_input_output_ratio_compares_input_quarter_with_output_half() -> None:
    values = pd.Series([1e-6, 1e-5, 1e-3, 1e-2], index=["a", "b", "c", "d"])
    depth = pd.Series([0, 1, 2, 3], index=values.index)
    ratio, first, last = input_output_ratio(values, depth) or (0.0, "", "")
    assert ratio == pytest.approx(1e-4)
    assert (first, last) == ("a", "d")
    assert input_output_ratio(values[:2], depth[:2]) is None


def test_curves_use_accuracy_or_fall_back_to_loss() -> None:
    classification = corpus_run("blobs-mlp-adam-cosine")
    regression = corpus_run("regression-mlp-adam")
    assert curves(classification, "acc") is not None
    assert curves(regression, "acc") is None
    loss = curves(regression, "loss")
    assert loss is not None and len(loss.train) == len(regression.epochs)
    assert regression.has(TRAIN_AND_VAL)
    assert not Run(regression.path, meta={}).has(TRAIN_AND_VAL)
