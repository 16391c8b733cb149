"""``runlint sweep --format html``: the sweep plots (objective vs each hyperparameter on its
searched scale with the border marked, trials over time, the objective per epoch) drawn in a
real browser with no console error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers_cli import invoke
from helpers_sweep import optuna_study
from test_report_html import ARTIFACTS, _browser

from runlint.report.html import browser

optuna = pytest.importorskip("optuna", reason="the sweep page is tested on an Optuna study")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep-html")

    def suggest(trial: object) -> dict[str, float]:
        return {
            "lr": trial.suggest_float("lr", 1e-3, 1e-1, log=True),  # type: ignore[attr-defined]
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),  # type: ignore[attr-defined]
        }

    url = optuna_study(root / "s.db", suggest, trials=36, epochs=5, lr_best=1e-4)
    out = root / "sweep.html"
    result = invoke("sweep", url, "--format", "html", "-o", str(out))
    assert result.exit_code == 1, result.output  # RL802: the best lr is on the border
    return out


def test_the_page_holds_one_plot_per_hyperparameter_on_its_scale(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    data = json.loads(re.search(r"id='rl-sweep'>(.*?)</script>", text, re.S)[1])  # type: ignore[index]
    dims = {d["name"]: d for d in data["dims"]}
    assert dims["lr"]["log"] is True and dims["dropout"]["log"] is False
    assert dims["lr"]["low"] == 1e-3 and dims["lr"]["high"] == 1e-1
    assert sum(v is not None for v in dims["lr"]["series"][-1]["y"]) == 1  # the best trial
    assert len(data["time"]["x"]) == 36 and data["epochs"]["x"] == [1, 2, 3, 4, 5]
    assert "RL802" in text and "has-finding" in text
    assert "http://" not in text.replace("http://www.w3.org", "")  # nothing to fetch


def test_the_sweep_plots_draw_in_chromium_with_no_console_error(page: Path) -> None:
    _browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser.headless_page(1300, 1100) as (tab, errors):
        tab.goto(page.as_uri(), wait_until="load")
        tab.wait_for_function("window.runlintSweep && window.runlintSweep.ready")
        drawn = tab.evaluate("window.runlintSweep.drawAll()")
        state = tab.evaluate(
            "() => ({total: window.runlintSweep.total, errors: window.runlintSweep.errors,"
            " log: [...document.querySelectorAll('.rl-sweep-plot')].length})"
        )
        tab.locator("#plots").screenshot(path=str(ARTIFACTS / "sweep-plots.png"))
    assert not errors, errors
    assert state["errors"] == [] and drawn == state["total"] == 4  # lr, dropout, time, epochs
