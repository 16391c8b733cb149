"""The HTML report: small series that keep spikes, findings drawn on the plot of their signal,
one self-contained page — and, in headless Chromium, every plot drawn with no console error."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runlint.check.rule import Finding, Severity
from runlint.report.html import Written, browser, check_paths, render, write_report
from runlint.report.html.extract import place
from runlint.report.html.series import MISSING, bucket_minmax, deltas, drop_flat, quantize

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fixtures" / "corpus"
REAL = ROOT / "fixtures" / "real"
#: where the browser test leaves its screenshot for people to look at
ARTIFACTS = Path(os.environ.get("RUNLINT_ARTIFACTS", ROOT / "build" / "test-artifacts"))


def decode(enc: dict) -> np.ndarray:
    q = np.frombuffer(base64.b64decode(enc["b"]), dtype="<u2").astype(float)
    v = enc["o"] + q * enc["s"]
    v = 10**v if enc.get("l") else v
    return np.where(q == MISSING, np.nan, v)


def run_data(page: str, index: int) -> dict:
    found = re.search(rf"<script type='application/json' id='rl-run-{index}'>(.*?)</script>", page)
    assert found, f"no data for run {index}"
    return json.loads(found.group(1))


# -- series ------------------------------------------------------------------------------------


def test_min_max_buckets_keep_every_spike_and_shrink_the_series() -> None:
    rng = np.random.default_rng(0)
    y = 1 + 0.01 * rng.standard_normal(10_000)
    y[4321], y[777] = 50.0, -20.0
    x, ys = bucket_minmax(np.arange(10_000), y, buckets=400)
    assert len(x) <= 800
    assert ys.max() == 50.0 and ys.min() == -20.0
    assert np.all(np.diff(x) >= 0)
    assert x[np.argmax(ys[:, 0])] in range(4300, 4350)  # within the spike's bucket


def test_a_divergence_leaves_a_gap_where_it_happened() -> None:
    y = np.linspace(2, 1, 10_000)
    y[6000:] = np.nan
    x, ys = bucket_minmax(np.arange(10_000), y, buckets=100)
    gap = x[np.isnan(ys[:, 0])]
    assert gap.min() >= 5900 and np.isfinite(ys[x < 5900]).all()


def test_short_series_come_back_unchanged() -> None:
    x, ys = bucket_minmax(np.arange(10), np.arange(10.0), buckets=100)
    assert x.tolist() == list(range(10)) and ys[:, 0].tolist() == list(np.arange(10.0))


def test_quantized_values_are_within_a_65534th_of_their_range() -> None:
    v = np.array([0.3, 2.3, 1.234567, np.nan, np.inf])
    enc = quantize(v)
    assert enc is not None
    back = decode(enc)
    assert np.allclose(back[:3], v[:3], atol=2.0 / 65534 * 1.01)
    assert np.isnan(back[3:]).all()
    ratios = np.array([1e-6, 1e-3, 0.5, 0.0])
    enc = quantize(ratios, log=True)
    assert enc is not None and enc["l"] == 1
    assert np.allclose(decode(enc)[:3], ratios[:3], rtol=1e-3) and np.isnan(decode(enc)[3])
    assert quantize([np.nan]) is None


def test_a_step_schedule_keeps_only_its_corners() -> None:
    x = np.arange(1000)
    lr = np.where(x < 500, 0.1, 0.01)[:, None]
    kx, ky = drop_flat(x, lr)
    assert kx.tolist() == [0, 499, 500, 999] and ky[:, 0].tolist() == [0.1, 0.1, 0.01, 0.01]
    assert deltas([5, 7, 10]) == [5, 2, 3]


# -- where a finding is drawn ------------------------------------------------------------------

PLOTS = {"loss", "lr", "epoch-loss", "epoch-acc", "update-ratio", "grad-norm"}
PLOTS |= {"act-dead", "act-std", "act-dead-units", "hist-activation", "hist-gradient"}


def finding(code: str, where: str | None, steps: tuple[int, int] | None = (0, 10)) -> Finding:
    return Finding(code, "x", Severity.WARNING, "m", "f", steps=steps, where=where)


@pytest.mark.parametrize(
    ("code", "where", "first"),
    [
        ("RL204", "loss", "loss"),
        ("RL101", "loss at step 0", "loss"),
        ("RL102", "reg_loss", "loss"),
        ("RL402", "fc1.weight", "grad-norm"),
        ("RL404", "fc1.weight", "update-ratio"),
        ("RL503", "relu1", "act-dead-units"),
        ("RL502", "relu1", "act-std"),
        ("RL301", "val_acc", "epoch-acc"),
        ("RL302", "train_acc", "epoch-acc"),
        ("RL205", "val_loss", "epoch-loss"),
        ("RL602", "optimizer", "lr"),
        ("RL102", "param group 0", "lr"),
        ("RL401", None, "update-ratio"),
        ("RL403", None, "grad-norm"),
        ("RL202", "update_ratio", "update-ratio"),
    ],
)
def test_a_finding_is_drawn_on_the_plot_of_its_signal(
    code: str, where: str | None, first: str
) -> None:
    plots = place(finding(code, where), PLOTS, {"fc1.weight"}, {"relu1"})
    assert plots[0] == first
    if where == "fc1.weight":
        assert "hist-gradient" in plots


def test_a_finding_whose_plot_is_missing_goes_to_the_loss_or_the_metadata() -> None:
    assert place(finding("RL503", "relu1"), {"loss"}, set(), {"relu1"}) == ["loss"]
    assert place(finding("RL701", "fc1.bias", None), {"loss"}, set(), set()) == ["meta"]


# -- the page ----------------------------------------------------------------------------------

FEW = [
    "rl503-cnn-negative-bias",  # many findings, an image first layer, histograms
    "rl301-tiny-train-set",  # val_acc / val_loss findings
    "hf-tokens-transformer-binary",  # imported: no layers, no histograms
    "blobs-mlp-adam-cosine",  # healthy
]


@pytest.fixture(scope="module")
def few_page() -> tuple[str, list]:
    report = check_paths([CORPUS / name for name in FEW])
    return render(report), report.results


def test_the_page_is_self_contained(few_page: tuple[str, list]) -> None:
    page, _ = few_page
    assert "<script src" not in page and "<link" not in page
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)
    assert "uPlot" in page and "runlintReport" in page


def test_every_finding_has_an_anchor_beside_its_plot_and_a_row_in_the_table(
    few_page: tuple[str, list],
) -> None:
    page, results = few_page
    total = sum(len(r.findings) for r in results)
    assert total >= 8
    for k in range(total):
        assert page.count(f'id="f{k}"') == 1, f"finding {k} is not beside exactly one plot"
        assert f"href='#f{k}'" in page
    data = run_data(page, 0)
    assert {"loss", "lr", "epoch-loss", "epoch-acc", "update-ratio", "weights"} <= set(
        data["plots"]
    )
    spans = {m["code"]: m for m in data["findings"]}
    assert spans["RL204"]["plots"][0] == "loss" and spans["RL204"]["steps"] == [97, 371]
    assert spans["RL503"]["plots"][0] == "act-dead-units" and spans["RL503"]["layer"] == "relu2"


def test_a_plot_whose_data_the_run_lacks_is_left_out_with_a_note(
    few_page: tuple[str, list],
) -> None:
    page, _ = few_page
    hf = run_data(page, 2)
    assert "update-ratio" not in hf["plots"] and "loss" in hf["plots"]
    section = page[page.index("id='run-2'") : page.index("id='run-3'")]
    assert "Plots left out" in section
    assert "per-layer update ratios and gradients: not recorded" in section
    assert "does not take an image" in page  # blobs-mlp: fc1 takes 32 features


def test_the_loss_is_against_epochs_with_the_steps_it_covers(few_page: tuple[str, list]) -> None:
    page, _ = few_page
    data = run_data(page, 1)
    assert data["xunit"] == "epoch"
    assert data["epochs"]["xp"][0] == 0 and data["epochs"]["fp"][:2] == [0, 1]
    steps = np.cumsum(data["plots"]["loss"]["x"])
    assert steps[0] == 0 and steps[-1] == 749


def test_imported_hf_and_lightning_logs_render(tmp_path: Path) -> None:
    written = write_report(
        [REAL / "hf" / "hf-001", REAL / "lightning" / "pl-001"], tmp_path / "r.html"
    )
    assert isinstance(written, Written) and written.runs == 2 and written.bytes > 50_000
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "cannot draw" not in page
    assert "loss" in run_data(page, 0)["plots"]
    assert "epoch-acc" in run_data(page, 1)["plots"]  # Lightning's bare "acc" column


def test_check_format_html_reporter_writes_the_page_and_an_empty_report_renders() -> None:
    import io

    from runlint.report import Report
    from runlint.report.html import Reporter

    buf = io.StringIO()
    Reporter(buf).finish(Report([], [], Severity.WARNING, 0))
    assert buf.getvalue().startswith("<!DOCTYPE html>") and "No findings." in buf.getvalue()


def test_an_unreadable_path_is_a_run_with_its_error(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    write_report([missing], tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "no such file or directory" in page


def test_fifty_runs_of_ten_thousand_steps_stay_under_ten_megabytes(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from check_speed import write_corpus
    finally:
        sys.path.remove(str(ROOT / "bench"))
    write_corpus(tmp_path / "runs", 1, 10_000, 20, 10)
    page = render(check_paths([tmp_path / "runs"]))
    found = re.search(r"id='rl-run-0'>(.*?)</script>", page)
    assert found
    per_run = len(found.group(1).encode())
    assert 20_000 < per_run < 190_000, f"{per_run} bytes a run: 50 runs would pass 10 MB"
    data = json.loads(found.group(1))
    assert len(data["plots"]["update-ratio"]["series"]) == 20


def test_import_runlint_does_not_load_the_report() -> None:
    code = "import sys, runlint; print('runlint.report.html' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- in a real browser -------------------------------------------------------------------------


# (run, code, the plot its band must be on)
EXPECTED_BANDS = [
    ("rl204-labels-shuffled-per-batch", "RL204", "loss"),
    ("rl402-deep-tanh", "RL402", "grad-norm"),
    ("rl503-cnn-negative-bias", "RL503", "act-dead-units"),
    ("rl301-tiny-train-set", "RL301", "epoch-acc"),
    ("rl205-constant-lr-plateau", "RL205", "epoch-loss"),
    ("rl501-large-init-tanh", "RL501", "act-saturated"),
    ("rl401-sgd-lr-1e-5", "RL401", "update-ratio"),
]


def _browser() -> None:
    """Skip when no headless page can be opened here (fail where RUNLINT_REQUIRE_BROWSER=1, as
    in CI)."""
    why = browser.missing()
    if why:
        if os.environ.get("RUNLINT_REQUIRE_BROWSER") == "1":
            pytest.fail(why)
        pytest.skip(f"{why}: no browser test")


@pytest.fixture(scope="module")
def corpus_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _browser()
    out = tmp_path_factory.mktemp("html") / "corpus.html"
    write_report([CORPUS], out)
    return out


def test_the_corpus_report_draws_every_plot_in_chromium_with_no_console_error(
    corpus_report: Path,
) -> None:
    _browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser.headless_page(1400, 1000) as (page, errors):
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(corpus_report.as_uri(), wait_until="load")
        page.wait_for_function("window.runlintReport && window.runlintReport.ready")
        page.screenshot(path=str(ARTIFACTS / "report-corpus-top.png"))
        drawn = page.evaluate("window.runlintReport.drawAll()")
        state = page.evaluate(
            """() => {
              const plots = [...document.querySelectorAll('.rl-plot')];
              return {
                total: plots.length,
                empty: plots.filter(p => !p.querySelector('.uplot, canvas'))
                            .map(p => (p.closest('section').id) + ':' + p.dataset.plot),
                errors: window.runlintReport.errors,
              };
            }"""
        )
        assert not errors, errors
        assert state["errors"] == [] and state["empty"] == []
        assert drawn == state["total"] > 300
        assert all(u.startswith("file://") for u in requests), "the page fetched something"

        for run, code, plot in EXPECTED_BANDS:
            where = page.evaluate(
                """([run, code, plot]) => {
                  const sec = [...document.querySelectorAll('section.run')]
                    .find(s => s.querySelector('h2').firstChild.textContent.trim() === run);
                  if (!sec) return null;
                  const card = sec.querySelector('.rl-plot[data-plot="' + plot + '"]')
                    .closest('.card');
                  const band = card.querySelector('.rl-band[data-code="' + code + '"]');
                  const text = card.querySelector('.rl-finding[id]');
                  const r = band ? band.getBoundingClientRect() : {width: 0};
                  return {band: !!band, width: r.width,
                          visible: !!band && band.style.display !== 'none',
                          message: !!text && text.textContent.includes(code)};
                }""",
                [run, code, plot],
            )
            assert where is not None, f"no run {run}"
            assert where["band"], f"no {code} marker on the {plot} plot of {run}"
            assert where["visible"] and where["width"] >= 2, (run, code, where)
            assert where["message"], f"{code}'s message and fix are not beside {plot} in {run}"

        # the RL301 span (the last third of training) is shaded on the right of its plot
        frac = page.evaluate(
            """() => {
              const sec = [...document.querySelectorAll('section.run')]
                .find(s => s.querySelector('h2').firstChild.textContent.trim()
                           === 'rl301-tiny-train-set');
              const band = sec.querySelector('.rl-plot[data-plot="epoch-acc"] .rl-band');
              const over = band.parentElement.getBoundingClientRect();
              const r = band.getBoundingClientRect();
              return [(r.left - over.left) / over.width, (r.right - over.left) / over.width];
            }"""
        )
        assert 0.55 < frac[0] < 0.75 and frac[1] > 0.97

        # sorting the runs table by final val acc, and overlaying one run only
        page.click("#runs-table th:has-text('final val acc')")
        values = page.evaluate(
            """() => [...document.querySelectorAll('#runs-table tbody tr')]
                 .map(r => r.cells[8].dataset.v).filter(v => v !== '').map(Number)"""
        )
        assert values == sorted(values) and len(values) > 50
        page.click("#sel-none")
        page.locator("#runs-table input.sel").first.check()
        series = page.evaluate("document.querySelector('.rl-overlay').dataset.series")
        assert series == "1"

        target = page.locator("section.run", has_text="rl503-cnn-negative-bias").first
        target.scroll_into_view_if_needed()
        target.screenshot(path=str(ARTIFACTS / "report-corpus-run.png"))
    assert (ARTIFACTS / "report-corpus-run.png").stat().st_size > 10_000
    print(f"screenshots: {ARTIFACTS}")
