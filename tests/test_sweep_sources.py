"""Where searches live: runs recorded with runlint.record and imported logs, Optuna storages
(SQLite; PostgreSQL when a server can be started), Ray Tune experiment folders (a real Ray
Tune run when ray is installed, and Ray's layout written by hand)."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import ROOT, invoke
from helpers_sweep import CORPUS, curve, healthy, loss_of, optuna_study, ray_experiment

from runlint.sweep import Want, lint_paths, load_search, open_source
from runlint.sweep.optuna_storage import display_url

# -- runs recorded with runlint.record -----------------------------------------------------------


def _train(logdir: Path, lr: float, dropout: float, epochs: int = 4) -> None:
    import torch
    from torch import nn

    import runlint

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(192, 8, generator=gen)
    y = x[:, :3].argmax(1)
    xv, yv = x[:64] + 0.1 * torch.randn(64, 8, generator=gen), y[:64]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    meta = {"num_classes": 3, "batch_size": 32, "dropout": dropout, "seed": 0}
    with runlint.record(model, opt, logdir, meta=meta) as rec:
        for _ in range(epochs):
            model.train()
            for i in range(64, 192, 32):
                loss = nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
            model.eval()
            with torch.no_grad():
                out = model(xv)
                val_loss = float(nn.functional.cross_entropy(out, yv))
                val_acc = float((out.argmax(1) == yv).float().mean())
            rec.log_epoch(val_loss=val_loss, val_acc=val_acc)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight tiny real trainings recorded with runlint.record: lr log-uniform, dropout in meta."""
    pytest.importorskip("torch")
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs") / "search"
    rng = random.Random(0)
    for i in range(8):
        _train(root / f"trial-{i}", 10 ** rng.uniform(-4, -1), round(rng.uniform(0, 0.5), 3))
    return root


def test_recorded_runs_are_one_search_with_their_hyperparameters_and_val_loss(
    recorded: Path,
) -> None:
    linted = lint_paths([str(recorded)])
    s = linted.search
    assert len(s.trials) == 8 and s.source == "runs"
    assert s.objective.name == "val_loss" and s.objective.minimize
    assert set(s.space) == {"dropout", "lr"}  # seed, batch size, eps... do not vary or are ids
    assert all(t.epochs == 4 and len(t.curve) == 4 for t in s.trials)
    best = s.best
    assert best is not None and best.value == min(best.curve)
    assert best.id in linted.trials  # the best trial's run was checked with the run rules
    assert linted.trials[best.id].status in ("ok", "incomplete")
    # the objective can be named: val_acc is maximized
    acc = lint_paths([str(recorded)], Want(objective="val_acc"))
    assert acc.search.objective.direction == "maximize"


def test_lightning_hparams_and_hf_trial_params_are_hyperparameters(tmp_path: Path) -> None:
    for i, lr in enumerate((1e-4, 1e-3, 1e-2)):
        folder = tmp_path / "pl" / f"version_{i}"
        shutil.copytree(ROOT / "fixtures/real/lightning/pl-001", folder)
        (folder / "hparams.yaml").write_text(f"lr: {lr}\noptimizer:\n  momentum: {0.5 + i / 10}\n")
        hf = tmp_path / "hf" / f"run-{i}"
        shutil.copytree(ROOT / "fixtures/real/hf/hf-002", hf)
        state = json.loads((hf / "trainer_state.json").read_text())
        state["trial_params"] = {"learning_rate": lr, "seed": i}
        (hf / "trainer_state.json").write_text(json.dumps(state))
        (hf / "training_args.json").write_text(json.dumps({"weight_decay": 0.01 * i}))
    pl, _ = load_search([open_source(str(tmp_path / "pl"))], Want())
    assert pl is not None and set(pl.space) == {"lr", "optimizer.momentum"}
    hf_search, _ = load_search([open_source(str(tmp_path / "hf"))], Want())
    assert hf_search is not None
    assert set(hf_search.space) == {"learning_rate", "weight_decay"}  # the seed is not one


# -- Optuna --------------------------------------------------------------------------------------


def _optuna() -> Any:
    return pytest.importorskip("optuna", reason="reading a study needs runlint[optuna]")


def test_a_real_optuna_study_of_40_trials_is_linted_end_to_end(tmp_path: Path) -> None:
    _optuna()
    url = optuna_study(tmp_path / "study.db", healthy, trials=40, epochs=4)
    result = invoke("sweep", url, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["search"]["source"] == "optuna" and len(doc["search"]["trials"]) == 40
    assert doc["search"]["space"]["lr"]["log"] is True
    assert doc["findings"] == [] and doc["summary"]["trials"] == 40
    # a plain path to the SQLite file reads the same study
    assert invoke("sweep", str(tmp_path / "study.db")).exit_code == 0


def test_reading_never_creates_a_sqlite_file(tmp_path: Path) -> None:
    _optuna()
    missing = tmp_path / "nope.db"
    result = invoke("sweep", f"sqlite:///{missing}")
    assert result.exit_code == 2 and "no such SQLite file" in result.output
    assert not missing.exists()


def test_without_optuna_the_message_says_which_extra_to_install(tmp_path: Path) -> None:
    _optuna()
    url = optuna_study(tmp_path / "s.db", healthy, trials=3, epochs=1)
    code = (
        "import sys; sys.modules['optuna'] = None\n"
        "from runlint.cli import main\n"
        f"main(['sweep', {url!r}], fast_exit=False)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'runlint[optuna]'" in lines[0]


def test_a_password_never_shows_in_the_report() -> None:
    assert display_url("postgresql://me:s3cret@db/x") == "postgresql://me:***@db/x"


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server of the test's own, on a Unix socket only (no TCP), or a skip."""
    pytest.importorskip("psycopg2", reason="PostgreSQL storages need psycopg2 (psycopg2-binary)")
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    initdb = shutil.which("initdb") or (str(bins[-1]) if bins else None)
    if initdb is None:
        pytest.skip("no PostgreSQL server installed (Debian: apt-get install postgresql)")
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    # in /tmp itself: the server's user must reach it (pytest's folders are root's alone)
    root = Path(tempfile.mkdtemp(prefix="runlint-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no postgres user to run the server as")
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    os.chmod(root, 0o755)
    with socket.socket() as s:  # a free port number, used only to name the Unix socket
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = {"capture_output": True, "text": True, "timeout": 120}
    init = subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "runlint"], **run)
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip()[:200]}")
    opts = f"-k {sock} -c listen_addresses='' -p {port}"
    log = root / "server.log"  # the server's output: never this process's pipes
    start = subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    if start.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {start.stderr.strip()[:200]}")
    try:
        yield f"postgresql+psycopg2://runlint@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], **run)
        shutil.rmtree(root, ignore_errors=True)


def test_an_optuna_study_in_postgresql_is_read_like_one_in_sqlite(
    postgres: str, tmp_path: Path
) -> None:
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="pg", storage=postgres, sampler=optuna.samplers.RandomSampler(seed=0)
    )

    def objective(trial: Any) -> float:
        lr = trial.suggest_float("lr", 1e-6, 1e-1)  # linear over five decades: RL801
        return loss_of(lr)

    study.optimize(objective, n_trials=30)
    linted = lint_paths([postgres])
    assert len(linted.search.trials) == 30
    assert "RL801" in {f.code for f in linted.result.findings}
    assert "postgresql" in linted.search.location


# -- Ray Tune ------------------------------------------------------------------------------------


def test_a_ray_layout_folder_is_read_without_ray_and_without_unpickling(tmp_path: Path) -> None:
    rng = random.Random(0)
    configs = [{"lr": 10 ** rng.uniform(-5, -1), "dropout": rng.uniform(0, 0.5)} for _ in range(30)]

    def results(i: int, c: dict[str, Any]) -> list[float]:
        return curve(loss_of(c["lr"], dropout=c["dropout"]), 4 if i % 5 else 2, i)

    exp = ray_experiment(tmp_path, configs, results)
    # the best trial also recorded with runlint.record: its run directory is in its folder
    best = min(range(30), key=lambda i: results(i, configs[i])[-1])
    folder = next(p for p in exp.iterdir() if p.name.startswith(f"trainable_abcde_{best:05d}_"))
    shutil.copytree(CORPUS / "rl301-tiny-train-set", folder / "runlint")
    code = (
        "import json, pickle, sys\n"
        "sys.modules['ray'] = None\n"  # as if Ray were not installed
        "def refuse(*a, **k): raise AssertionError('unpickled')\n"
        "pickle.load = pickle.loads = pickle.Unpickler = refuse\n"
        "from runlint.sweep import lint_paths\n"
        f"l = lint_paths([{str(exp)!r}])\n"
        "print(json.dumps({'n': len(l.search.trials), 'metric': l.search.objective.name,\n"
        "  'pruned': sum(t.state == 'pruned' for t in l.search.trials),\n"
        "  'codes': sorted({f.evidence.get('code', f.code) for f in l.result.findings}),\n"
        "  'run': str(l.search.best.run)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["n"] == 30 and out["metric"] == "val_loss"
    assert out["pruned"] == 6  # stopped at 2 of 4 iterations: a scheduler's early stop
    assert out["run"].endswith("/runlint")
    assert {"RL301", "RL205"} <= set(out["codes"])  # RL806: the best trial's run findings
    # --trials: every trial that recorded gets its run findings in the report
    result = invoke("sweep", str(exp), "--trials", "--format", "json")
    doc = json.loads(result.stdout)
    assert any(r["path"].endswith("/runlint") for r in doc["runs"])
    assert any(f["code"] == "RL301" and f["run"].endswith("/runlint") for f in doc["findings"])


def test_a_real_ray_tune_run_of_30_trials_is_linted_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("ray.tune", reason="Ray Tune is not installed (runlint[ray])")
    script = f"""
import math, os
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
import ray
from ray import tune
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
def trainable(config):
    for epoch in range(4):
        loss = (0.3 + 0.15 * (math.log10(config["lr"]) + 3) ** 2
                + 0.5 * (config["dropout"] - 0.2) ** 2 + 0.5 / (epoch + 1))
        tune.report({{"val_loss": loss}})
tuner = tune.Tuner(
    trainable,
    param_space={{"lr": tune.loguniform(1e-5, 1e-1), "dropout": tune.uniform(0, 0.5)}},
    tune_config=tune.TuneConfig(
        num_samples=30, metric="val_loss", mode="min", reuse_actors=True,
        search_alg=tune.search.BasicVariantGenerator(random_state=0),  # the same 30 draws
    ),
    run_config=tune.RunConfig(name="exp", storage_path={str(tmp_path)!r}, verbose=0),
)
tuner.fit()
ray.shutdown()
"""
    start = time.monotonic()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    took = time.monotonic() - start
    exp = tmp_path / "exp"
    assert any(exp.glob("experiment_state-*.json"))
    result = invoke("sweep", str(exp), "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["search"]["trials"]) == 30 and doc["search"]["source"] == "ray"
    assert doc["search"]["objective"]["name"] == "val_loss"
    assert doc["search"]["space"]["lr"]["log"] is True  # inferred from the values
    assert doc["findings"] == []
    assert all(math.isfinite(t["value"]) for t in doc["search"]["trials"])
    print(f"Ray Tune: 30 trials in {took:.0f} s")
