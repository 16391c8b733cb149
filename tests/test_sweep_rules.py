"""Each sweep rule (RL8xx) fires on a real search built to have its problem, and every one
stays silent on a healthy random log-uniform search. The searches are real Optuna studies in
SQLite (fast objectives) and Ray Tune experiment folders in Ray's layout."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
from helpers_sweep import CORPUS, curve, healthy, loss_of, optuna_study, ray_experiment

from runlint.check import Severity
from runlint.sweep import Linted, Want, lint_paths

optuna = pytest.importorskip("optuna", reason="the sweep tests read real Optuna studies")


def codes(linted: Linted) -> list[str]:
    return sorted({f.code for f in linted.result.findings})


def finding(linted: Linted, code: str) -> Any:
    return next(f for f in linted.result.findings if f.code == code)


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("studies")


def test_a_healthy_random_log_uniform_search_is_silent_under_every_sweep_rule(
    studies: Path,
) -> None:
    url = optuna_study(
        studies / "healthy.db",
        healthy,
        trials=40,
        epochs=8,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    )
    linted = lint_paths([url])
    assert linted.result.findings == []
    assert linted.result.rule_errors == []
    assert set(linted.result.ran) == {"RL801", "RL802", "RL803", "RL804", "RL805"}
    skipped = {s.code for s in linted.result.skipped}
    assert skipped == {"RL806", "RL807"}  # no run recorded, one stage
    search = linted.search
    assert len(search.trials) == 40 and search.objective.direction == "minimize"
    assert search.space["lr"].declared and search.space["lr"].log is True
    assert any(t.state == "pruned" for t in search.trials)


def test_rl801_fires_on_a_learning_rate_sampled_linearly_over_five_decades(studies: Path) -> None:
    def linear(trial: Any) -> dict[str, float]:
        return {
            "lr": trial.suggest_float("lr", 1e-6, 1e-1),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        }

    linted = lint_paths([optuna_study(studies / "linear.db", linear, trials=40, epochs=3)])
    f = finding(linted, "RL801")
    assert f.severity is Severity.WARNING and f.where == "lr"
    assert f.evidence["top_decade_share"] > 0.8 and f.evidence["declared"] is True
    assert "log=True" in f.fix
    # the best lr lands on the linear range's lower edge: reported as RL801's consequence
    if "RL802" in codes(linted):
        assert finding(linted, "RL802").evidence["explained_by"] == "RL801"


def test_rl801_judges_the_values_not_the_name(tmp_path: Path) -> None:
    """Ray's folders declare no distribution: uniform values of ``lr`` over four decades fire,
    log-uniform ones (the same name, the same range) do not."""
    rng = random.Random(1)
    linear = [{"lr": rng.uniform(1e-5, 1e-1), "dropout": rng.uniform(0, 0.5)} for _ in range(36)]
    logu = [{"lr": 10 ** rng.uniform(-5, -1), "dropout": rng.uniform(0, 0.5)} for _ in range(36)]

    def results(i: int, c: dict[str, Any]) -> list[float]:
        return curve(loss_of(c["lr"], dropout=c["dropout"]), 3, i)

    bad = lint_paths([str(ray_experiment(tmp_path / "a", linear, results))])
    good = lint_paths([str(ray_experiment(tmp_path / "b", logu, results))])
    assert "RL801" in codes(bad)
    assert not bad.search.space["lr"].declared
    assert codes(good) == []


def test_rl802_fires_when_the_best_learning_rate_sits_on_the_range_edge(studies: Path) -> None:
    def narrow(trial: Any) -> dict[str, float]:
        return {
            "lr": trial.suggest_float("lr", 1e-3, 1e-1, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        }

    url = optuna_study(studies / "border.db", narrow, trials=40, epochs=3, lr_best=1e-4)
    linted = lint_paths([url])
    assert codes(linted) == ["RL802"]
    f = finding(linted, "RL802")
    assert f.where == "lr" and f.evidence["side"] == "lower"
    assert f.severity is Severity.WARNING  # the next-best crowd the same edge
    assert f.evidence["next_best_near"] >= 4
    assert "[1.0e-04, 0.1]" in f.fix


def test_rl803_fires_on_a_dozen_trials_over_three_hyperparameters(studies: Path) -> None:
    linted = lint_paths([optuna_study(studies / "few.db", healthy, trials=12, epochs=3)])
    assert codes(linted) == ["RL803"]
    f = finding(linted, "RL803")
    assert f.severity is Severity.WARNING
    assert "12 trials with a result for 3 searched hyperparameters" in f.message


def test_rl804_fires_on_a_grid_where_random_search_would_cover_more(studies: Path) -> None:
    grid = {
        "lr": [1e-4, 1e-3, 1e-2, 1e-1],
        "weight_decay": [1e-6, 1e-5, 1e-4, 1e-3],
        "dropout": [0.1, 0.3],
    }
    sampler = optuna.samplers.GridSampler(grid, seed=0)
    url = optuna_study(studies / "grid.db", healthy, trials=32, epochs=3, sampler=sampler)
    linted = lint_paths([url])
    assert codes(linted) == ["RL804"]
    f = finding(linted, "RL804")
    assert f.evidence["grid"] == 32 and f.evidence["combinations"] == 32
    assert "4×4×2 grid" in f.message and "32 random trials would try 32 values" in f.message


def test_rl805_counts_the_epochs_wasted_on_trials_that_diverged_in_their_first_epoch(
    studies: Path,
) -> None:
    url = optuna_study(
        studies / "long.db", healthy, trials=48, epochs=10, diverge_above=2e-2, seed=3
    )
    linted = lint_paths([url])
    assert "RL805" in codes(linted)
    f = finding(linted, "RL805")
    diverged = [t for t in linted.search.trials if t.curve and math.isnan(t.curve[0])]
    assert diverged and len(f.evidence["caught"]) == len(diverged)
    assert f.evidence["epochs_wasted"] == 9 * len(diverged)
    assert f"{9 * len(diverged)} of {48 * 10} epochs" in f.message


def test_rl806_reports_the_best_trials_own_run_findings(studies: Path) -> None:
    """The best trial recorded its run (``runlint_run``): it overfits and never decayed its
    learning rate; the run rules' findings are reported for the search."""
    run = CORPUS / "rl301-tiny-train-set"

    def attrs(trial: Any, params: dict[str, float]) -> None:
        if trial.number == 0:
            trial.set_user_attr("runlint_run", str(run))

    # the first trial is the optimum (enqueued), the rest random: the best trial is #0
    storage = f"sqlite:///{studies / 'best.db'}"
    optuna.create_study(study_name="s", storage=storage).enqueue_trial(
        {"lr": 1e-3, "weight_decay": 1e-4, "dropout": 0.2}
    )
    url = optuna_study(studies / "best.db", healthy, name="s", trials=36, epochs=3, attrs=attrs)
    linted = lint_paths([url])
    assert linted.search.best is not None and linted.search.best.number == 0
    f = finding(linted, "RL806")
    found = {x.evidence["code"] for x in linted.result.findings if x.code == "RL806"}
    assert {"RL301", "RL205"} <= found
    assert "the best trial #0" in f.message and str(run) in f.message
    overfit = next(x for x in linted.result.findings if x.evidence.get("code") == "RL301")
    assert overfit.severity is Severity.WARNING


def _coarse(trial: Any) -> dict[str, float]:
    return {"lr": trial.suggest_float("lr", 1e-6, 1e-1, log=True)}


@pytest.fixture(scope="module")
def stages(studies: Path) -> Path:
    """A storage of two studies: a coarse stage, then a fine one narrowed off the best lr."""
    db = studies / "stages.db"

    def fine(trial: Any) -> dict[str, float]:
        return {"lr": trial.suggest_float("lr", 1e-2, 1e-1, log=True)}

    optuna_study(db, _coarse, name="1-coarse", trials=30, epochs=1, lr_best=1e-4)
    optuna_study(db, fine, name="2-fine", trials=20, epochs=3, lr_best=1e-4, seed=1)
    return db


def test_rl807_fires_when_the_fine_stage_narrows_around_a_value_that_was_not_the_best(
    studies: Path, stages: Path
) -> None:
    db = stages
    coarse = _coarse
    linted = lint_paths([f"sqlite:///{db}"])
    assert [s.name for s in linted.search.stages] == ["1-coarse", "2-fine"]
    f = finding(linted, "RL807")
    assert f.where == "lr" and f.evidence["stage"] == "2-fine"
    assert f.evidence["new_range"] == [1e-2, 1e-1]
    assert f.evidence["best_value"] < 1e-2
    # narrowed around the best value instead: silent
    db2 = studies / "stages-ok.db"

    def fine_ok(trial: Any) -> dict[str, float]:
        return {"lr": trial.suggest_float("lr", 3e-5, 3e-4, log=True)}

    optuna_study(db2, coarse, name="1-coarse", trials=30, epochs=1, lr_best=1e-4)
    optuna_study(db2, fine_ok, name="2-fine", trials=20, epochs=3, lr_best=1e-4, seed=1)
    assert "RL807" not in codes(lint_paths([f"sqlite:///{db2}"]))


def test_a_study_can_be_chosen_from_a_storage_of_several(stages: Path) -> None:
    db = stages
    one = lint_paths([f"sqlite:///{db}"], Want(studies=("2-fine",)))
    assert len(one.search.trials) == 20 and len(one.search.stages) == 1
