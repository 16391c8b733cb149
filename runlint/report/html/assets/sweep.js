/* runlint sweep page: draws the plots of runlint/report/html/sweep.py with uPlot.
 * Data: <script type="application/json" id="rl-sweep">. window.runlintSweep exposes drawAll()
 * and counters for tests. */
(function () {
  "use strict";
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
  var BEST = "#d62728";
  var state = { drawn: 0, errors: [], plots: [] };
  window.runlintSweep = state;
  var data = JSON.parse(document.getElementById("rl-sweep").textContent);

  function fmt(v) {
    if (v == null || isNaN(v)) return "–";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return String(+v.toPrecision(4));
  }

  function decades(u, vals) {
    return vals.map(function (v) {
      if (v == null || v <= 0) return "";
      var e = Math.log10(v);
      return Math.abs(e - Math.round(e)) < 1e-6 ? (Math.abs(e) < 3 ? fmt(v) : "1e" + Math.round(e)) : "";
    });
  }

  function widthOf(el) { return Math.max(280, el.clientWidth || 520); }

  function noLine() { return null; }

  /* the searched range: its ends as dashed lines, the border (edge share at each end) shaded */
  function borderPlugin(dim) {
    return {
      hooks: {
        drawClear: [function (u) {
          if (dim.low == null || dim.high == null || !(dim.high > dim.low)) return;
          var ctx = u.ctx, b = u.bbox, lo = dim.low, hi = dim.high, e = dim.edge;
          var inner = dim.log
            ? [Math.pow(10, Math.log10(lo) + e * (Math.log10(hi) - Math.log10(lo))),
               Math.pow(10, Math.log10(hi) - e * (Math.log10(hi) - Math.log10(lo)))]
            : [lo + e * (hi - lo), hi - e * (hi - lo)];
          var xs = [lo, inner[0], inner[1], hi].map(function (v) { return u.valToPos(v, "x", true); });
          ctx.save();
          ctx.fillStyle = "rgba(217,119,6,0.10)";
          [[xs[0], xs[1]], [xs[2], xs[3]]].forEach(function (p) {
            var a = Math.max(b.left, p[0]), z = Math.min(b.left + b.width, p[1]);
            if (z > a) ctx.fillRect(a, b.top, z - a, b.height);
          });
          ctx.strokeStyle = "rgba(217,119,6,0.9)";
          ctx.setLineDash([5, 4]);
          ctx.lineWidth = 1.5;
          [xs[0], xs[3]].forEach(function (x) {
            if (x < b.left - 1 || x > b.left + b.width + 1) return;
            ctx.beginPath(); ctx.moveTo(x, b.top); ctx.lineTo(x, b.top + b.height); ctx.stroke();
          });
          ctx.restore();
        }]
      }
    };
  }

  function dimPlot(el, dim) {
    var series = [{ label: dim.name, value: function (u, v) { return fmt(v); } }];
    var rows = [dim.x];
    dim.series.forEach(function (s, j) {
      rows.push(s.y);
      series.push({
        label: s.label, stroke: s.best ? BEST : PALETTE[j % PALETTE.length],
        paths: noLine, value: function (u, v) { return fmt(v); },
        points: { show: true, size: s.best ? 12 : 6, fill: s.best ? BEST : PALETTE[j % PALETTE.length] }
      });
    });
    var pad = dim.log ? null : (dim.high - dim.low) * 0.04;
    var xscale = dim.log ? { time: false, distr: 3, log: 10 } : { time: false };
    if (dim.low != null && dim.high != null && dim.high > dim.low) {
      xscale.range = dim.log
        ? [dim.low / Math.pow(dim.high / dim.low, 0.04), dim.high * Math.pow(dim.high / dim.low, 0.04)]
        : [dim.low - pad, dim.high + pad];
    }
    return new uPlot({
      width: widthOf(el), height: 280,
      scales: { x: xscale, y: {} },
      axes: [
        { label: dim.name + (dim.log ? " (log scale)" : ""), size: 36, labelSize: 14,
          values: dim.log ? decades : function (u, vals) { return vals.map(fmt); } },
        { size: 58, label: data.objective, labelSize: 14, values: function (u, vals) { return vals.map(fmt); } }
      ],
      series: series,
      cursor: { drag: { x: true, y: false } },
      plugins: [borderPlugin(dim)]
    }, rows, el);
  }

  function timePlot(el) {
    var t = data.time;
    return new uPlot({
      width: widthOf(el), height: 280,
      scales: { x: { time: false }, y: {} },
      axes: [{ label: t.unit, size: 36, labelSize: 14 },
             { size: 58, label: data.objective, labelSize: 14, values: function (u, vals) { return vals.map(fmt); } }],
      series: [
        { label: t.unit, value: function (u, v) { return fmt(v); } },
        { label: "trial", stroke: PALETTE[0], paths: noLine, points: { show: true, size: 6, fill: PALETTE[0] },
          value: function (u, v) { return fmt(v); } },
        { label: "best so far", stroke: BEST, width: 2, spanGaps: true, points: { show: false },
          value: function (u, v) { return fmt(v); } }
      ],
      cursor: { drag: { x: true, y: false } }
    }, [t.x, t.y, t.best], el);
  }

  function epochsPlot(el) {
    var e = data.epochs, rows = [e.x], series = [{ label: "epoch" }];
    e.series.forEach(function (s, j) {
      rows.push(s.y);
      series.push({ label: s.label, stroke: s.best ? BEST : "rgba(31,119,180,0.45)",
                    width: s.best ? 2.5 : 1, points: { show: e.x.length < 30, size: 3 },
                    value: function (u, v) { return fmt(v); } });
    });
    return new uPlot({
      width: widthOf(el), height: 280,
      scales: { x: { time: false }, y: {} },
      axes: [{ label: "epoch", size: 36, labelSize: 14 },
             { size: 58, label: data.objective, labelSize: 14, values: function (u, vals) { return vals.map(fmt); } }],
      series: series, legend: { show: e.series.length <= 12 },
      cursor: { drag: { x: true, y: false } }
    }, rows, el);
  }

  function draw(el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = "1";
    try {
      var kind = el.dataset.plot, u;
      if (kind === "dim") u = dimPlot(el, data.dims[+el.dataset.index]);
      else if (kind === "time") u = timePlot(el);
      else u = epochsPlot(el);
      state.plots.push([u, el]);
      state.drawn++;
    } catch (err) {
      el.dataset.error = String(err);
      el.textContent = "could not draw this plot: " + err;
      state.errors.push(String(err));
      if (window.console) console.error(err);
    }
  }

  var els = document.querySelectorAll(".rl-sweep-plot");
  state.total = els.length;
  els.forEach(draw);
  state.drawAll = function () { els.forEach(draw); return state.drawn; };
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      state.plots.forEach(function (p) { p[0].setSize({ width: widthOf(p[1]), height: p[0].height }); });
    }, 150);
  });
  state.ready = true;
})();
