/* bench/report_speed.py --library plotly: the report's plots drawn by Plotly instead of uPlot.
 * Same data, same lazy drawing, same finding bands (layout shapes); used only to measure. */
(function () {
  "use strict";
  var SEV = { error: "220,38,38", warning: "217,119,6", info: "37,99,235" };
  var state = { drawn: 0, errors: [], runs: {} };
  window.runlintReport = state;
  function dec(e) {
    var bin = atob(e.b), n = bin.length >> 1, out = new Array(n), i, v;
    for (i = 0; i < n; i++) {
      v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
      out[i] = v === 65535 ? null : (e.l ? Math.pow(10, e.o + v * e.s) : e.o + v * e.s);
    }
    return out;
  }
  function cum(d) { var a = 0; return d.map(function (v) { a += v; return a; }); }
  function interp(x, xp, fp) {
    var n = xp.length, i = 1;
    if (x <= xp[0]) return fp[0];
    while (i < n - 1 && xp[i] < x) i++;
    return fp[i - 1] + (x - xp[i - 1]) * (fp[i] - fp[i - 1]) / (xp[i] - xp[i - 1]);
  }
  function runData(i) {
    if (!state.runs[i]) state.runs[i] = JSON.parse(document.getElementById("rl-run-" + i).textContent);
    return state.runs[i];
  }
  function toX(run, s) { return run.epochs ? interp(s, run.epochs.xp, run.epochs.fp) : s; }
  var CONFIG = { responsive: false, displaylogo: false };
  function shapes(run, pid) {
    return run.findings.filter(function (m) { return m.plots.indexOf(pid) >= 0; }).map(function (m) {
      var a = m.steps ? toX(run, m.steps[0]) : 0, b = m.steps ? toX(run, m.steps[1]) : 1;
      return { type: "rect", xref: m.steps ? "x" : "paper", yref: "paper", x0: a, x1: b, y0: 0, y1: 1,
               fillcolor: "rgba(" + SEV[m.sev] + ",0.14)", line: { width: 1, color: "rgba(" + SEV[m.sev] + ",0.8)" } };
    });
  }
  function line(el, run, pid, spec) {
    var xs = spec.xf ? spec.xf : cum(spec.x).map(function (s) { return toX(run, s); });
    var traces = spec.series.map(function (s) {
      return { type: "scatter", mode: "lines", name: s.label, x: xs, y: dec(s.y), line: { width: 1.2 } };
    });
    Plotly.newPlot(el, traces, {
      width: Math.max(280, el.clientWidth || 520), height: 280, margin: { l: 50, r: 10, t: 10, b: 40 },
      xaxis: { title: { text: run.epochs ? "epoch" : "step" } },
      yaxis: { type: spec.log ? "log" : "linear" }, shapes: shapes(run, pid), showlegend: true
    }, CONFIG);
  }
  function heat(el, run, pid, spec) {
    spec.maps.forEach(function (m) {
      var d = document.createElement("div");
      el.appendChild(d);
      var steps = cum(m.x), z = [], b, c;
      for (b = 0; b < m.bins; b++) {
        var row = [];
        for (c = 0; c < steps.length; c++) row.push("0123456789abcdefghijklmnopqrstuvwxyz".indexOf(m.cells.charAt(c * m.bins + b)));
        z.push(row);
      }
      Plotly.newPlot(d, [{ type: "heatmap", z: z, x: steps, showscale: false, colorscale: "Blues" }], {
        width: 230, height: 110, margin: { l: 20, r: 5, t: 18, b: 20 }, title: { text: m.name, font: { size: 11 } },
        shapes: shapes(run, pid)
      }, CONFIG);
    });
  }
  function images(el, run, pid, spec) {
    spec.snapshots.forEach(function (snap) {
      var raw = atob(snap.data), per = Math.ceil(Math.sqrt(snap.n)), z = [], f, y, x, k;
      for (f = 0; f < snap.n; f++) {
        for (y = 0; y < spec.h; y++) {
          var r = Math.floor(f / per) * (spec.h + 1) + y;
          z[r] = z[r] || [];
          for (x = 0; x < spec.w; x++) {
            k = ((f * spec.h + y) * spec.w + x) * spec.c;
            z[r][(f % per) * (spec.w + 1) + x] = [raw.charCodeAt(k), raw.charCodeAt(k + (spec.c - 1 ? 1 : 0)), raw.charCodeAt(k + (spec.c - 1 ? 2 : 0))];
          }
        }
      }
      var d = document.createElement("div");
      el.appendChild(d);
      Plotly.newPlot(d, [{ type: "image", z: z }], { width: 240, height: 240, margin: { l: 5, r: 5, t: 5, b: 5 } }, CONFIG);
    });
  }
  var overview = JSON.parse(document.getElementById("rl-overview").textContent);
  function overlay(el) {
    var spec = overview.plots[el.dataset.plot];
    var traces = spec.series.map(function (s) {
      return { type: "scatter", mode: "lines", name: overview.names[s.run], x: spec.xf, y: dec(s.y) };
    });
    Plotly.newPlot(el, traces, { width: Math.max(280, el.clientWidth || 520), height: 300 }, CONFIG);
  }
  function draw(el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = "1";
    try {
      if (el.classList.contains("rl-overlay")) overlay(el);
      else {
        var run = runData(+el.dataset.run), pid = el.dataset.plot, spec = run.plots[pid];
        if (spec.maps) heat(el, run, pid, spec);
        else if (spec.snapshots) images(el, run, pid, spec);
        else line(el, run, pid, spec);
      }
      state.drawn++;
    } catch (err) { state.errors.push(String(err)); console.error(err); }
  }
  var els = document.querySelectorAll(".rl-plot");
  state.total = els.length;
  var io = new IntersectionObserver(function (entries) {
    entries.forEach(function (e) { if (e.isIntersecting) { io.unobserve(e.target); draw(e.target); } });
  }, { rootMargin: "800px 0px" });
  els.forEach(function (el) { io.observe(el); });
  state.drawAll = function () { els.forEach(draw); return state.drawn; };
  state.ready = true;
})();
