/* runlint HTML report: draws the plots of runlint/report/html (uPlot), lazily, run by run.
 * Data: <script type="application/json" id="rl-overview"> and one id="rl-run-N" per run.
 * Series are quantized ({o, s, b[, l]}: b is base64 of little-endian uint16 q, value = o + q*s,
 * 10**value when l; q = 65535 is a gap);
 * steps come as differences. window.runlintReport exposes drawAll() and counters for tests. */
(function () {
  "use strict";
  var SEV = { error: "220,38,38", warning: "217,119,6", info: "37,99,235" };
  var PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173",
    "#3182bd", "#e6550d", "#31a354", "#756bb1"
  ];
  var CHARS = "0123456789abcdefghijklmnopqrstuvwxyz";
  var state = { drawn: 0, errors: [], runs: {}, plots: [] };
  window.runlintReport = state;

  function color(j) { return PALETTE[j % PALETTE.length]; }

  var MISSING = 65535;
  function dec(e) {
    var bin = atob(e.b), n = bin.length >> 1, out = new Array(n), o = e.o, s = e.s, i, v;
    for (i = 0; i < n; i++) {
      v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);  // little-endian uint16
      out[i] = v === MISSING ? null : (e.l ? Math.pow(10, o + v * s) : o + v * s);
    }
    return out;
  }

  function cum(d) {
    var out = new Array(d.length), acc = 0, i;
    for (i = 0; i < d.length; i++) { acc += d[i]; out[i] = acc; }
    return out;
  }

  function interp(x, xp, fp) {
    var n = xp.length, lo = 0, hi = n - 1, mid;
    if (n < 2) return x;
    if (x <= xp[0]) return fp[0] + (x - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0]);
    if (x >= xp[n - 1]) {
      return fp[n - 1] + (x - xp[n - 1]) * (fp[n - 1] - fp[n - 2]) / (xp[n - 1] - xp[n - 2]);
    }
    while (hi - lo > 1) { mid = (lo + hi) >> 1; if (xp[mid] <= x) lo = mid; else hi = mid; }
    return fp[lo] + (x - xp[lo]) * (fp[hi] - fp[lo]) / (xp[hi] - xp[lo]);
  }

  function fmt(v) {
    if (v == null || isNaN(v)) return "–";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return String(+v.toPrecision(4));
  }

  function runData(i) {
    if (!state.runs[i]) {
      var el = document.getElementById("rl-run-" + i);
      state.runs[i] = JSON.parse(el.textContent);
    }
    return state.runs[i];
  }

  function toX(run, step) {
    return run.epochs ? interp(step, run.epochs.xp, run.epochs.fp) : step;
  }

  function toStep(run, x) {
    return run.epochs ? interp(x, run.epochs.fp, run.epochs.xp) : x;
  }

  function marksFor(run, pid) {
    return run.findings.filter(function (m) { return m.plots.indexOf(pid) >= 0; });
  }

  function goTo(k) {
    var el = document.getElementById("f" + k);
    if (el) { el.scrollIntoView({ block: "center" }); el.classList.add("flash"); }
  }

  function bandDiv(m, label) {
    var d = document.createElement("div");
    d.className = "rl-band sev-" + m.sev + (m.steps ? "" : " rl-whole");
    d.dataset.finding = m.k;
    d.dataset.code = m.code;
    d.style.background = "rgba(" + SEV[m.sev] + ",0.10)";
    d.style.borderColor = "rgba(" + SEV[m.sev] + ",0.8)";
    d.title = m.code + (m.layer ? " (" + m.layer + ")" : "") + ": " + m.msg;
    var chip = document.createElement("span");
    chip.className = "rl-chip";
    chip.textContent = label || m.code;
    chip.style.background = "rgb(" + SEV[m.sev] + ")";
    d.appendChild(chip);
    d.addEventListener("click", function () { goTo(m.k); });
    return d;
  }

  /* finding spans as DOM bands over the plot area, repositioned after every redraw (zoom) */
  function bandsPlugin(run, marks, xIsEpochRow) {
    var divs = [];
    function span(m) {
      if (!m.steps) return null;
      var a = toX(run, m.steps[0]), b = toX(run, m.steps[1]);
      if (xIsEpochRow && !run.epochs) return null;
      return [Math.min(a, b), Math.max(a, b)];
    }
    function position(u) {
      var w = u.bbox.width / uPlot.pxRatio;  // no layout read: drawing many plots stays fast
      divs.forEach(function (pair) {
        var d = pair[0], s = pair[1], left = 0, right = w;
        if (s) {
          left = u.valToPos(s[0], "x");
          right = u.valToPos(s[1], "x");
        }
        if (right < 0 || left > w) { d.style.display = "none"; return; }
        left = Math.max(0, left); right = Math.min(w, right);
        if (right - left < 3) { left = Math.max(0, Math.min(w - 3, left - 1.5)); right = left + 3; }
        d.style.display = "";
        d.style.left = left + "px";
        d.style.width = (right - left) + "px";
      });
    }
    return {
      hooks: {
        ready: [function (u) {  // after the first draw: place the bands now
          marks.forEach(function (m, j) {
            var d = bandDiv(m, m.code + (m.layer ? " " + m.layer : ""));
            d.firstChild.style.top = (2 + 15 * (j % 6)) + "px";  // bands on one span: chips stack
            u.over.appendChild(d);
            divs.push([d, span(m)]);
          });
          position(u);
        }],
        draw: [position]
      }
    };
  }

  function targetPlugin(spec) {
    return {
      hooks: {
        drawClear: [function (u) {
          if (!spec.band) return;
          var ctx = u.ctx, b = u.bbox;
          var y0 = u.valToPos(spec.band[1], "y", true), y1 = u.valToPos(spec.band[0], "y", true);
          var top = Math.max(b.top, Math.min(y0, y1)), bot = Math.min(b.top + b.height, Math.max(y0, y1));
          ctx.save();
          if (bot > top) {
            ctx.fillStyle = "rgba(34,197,94,0.10)";
            ctx.fillRect(b.left, top, b.width, bot - top);
          }
          var yt = u.valToPos(spec.target, "y", true);
          if (yt >= b.top && yt <= b.top + b.height) {
            ctx.strokeStyle = "rgba(22,163,74,0.9)";
            ctx.setLineDash([6, 4]);
            ctx.lineWidth = 1.5;
            ctx.beginPath(); ctx.moveTo(b.left, yt); ctx.lineTo(b.left + b.width, yt); ctx.stroke();
          }
          ctx.restore();
        }]
      }
    };
  }

  /* log axes: label the decades only */
  function decades(u, vals) {
    return vals.map(function (v) {
      if (v == null || v <= 0) return "";
      var e = Math.log10(v);
      return Math.abs(e - Math.round(e)) < 1e-6 ? (Math.abs(e) < 3 ? fmt(v) : "1e" + Math.round(e)) : "";
    });
  }

  function axisLabel(run) { return run.epochs ? "epoch" : "step"; }

  function linePlot(el, run, pid, spec) {
    var epochRows = !!spec.xf;
    var xs = epochRows ? spec.xf : cum(spec.x).map(function (s) { return toX(run, s); });
    var marks = marksFor(run, pid);
    var hot = {};
    marks.forEach(function (m) { if (m.layer) hot[m.layer] = true; });
    var data = [xs];
    var series = [{ label: axisLabel(run), value: function (u, v) { return fmt(v); } }];
    spec.series.forEach(function (s, j) {
      data.push(dec(s.y));
      var raw = pid === "loss" && s.label === "loss";
      // integer widths: fractional ones cost ~10x to rasterize without a GPU
      var width = hot[s.label] ? 2 : 1;
      var stroke = pid === "loss"
        ? (raw ? "rgba(31,119,180,0.35)" : (s.label === "smoothed" ? "#0b3c6f" : color(j + 1)))
        : color(j);
      series.push({
        label: s.label, stroke: stroke, width: pid === "loss" && !raw ? 2 : width,
        points: { show: false }, value: function (u, v) { return fmt(v); }
      });
    });
    var axes = [
      { label: axisLabel(run), size: 34, labelSize: 14 },
      { size: 58, values: spec.log ? decades : function (u, vals) { return vals.map(fmt); } }
    ];
    if (run.epochs) {
      axes.push({
        scale: "x", side: 0, label: "step", size: 30, labelSize: 14, grid: { show: false },
        values: function (u, vals) {
          var last = null;
          return vals.map(function (v) {
            var t = v == null ? "" : String(Math.round(toStep(run, v)));
            if (t === last) return "";  // a short run: no step label twice
            last = t;
            return t;
          });
        }
      });
    }
    var opts = {
      width: widthOf(el),
      height: 260,
      scales: { x: { time: false }, y: spec.log ? { distr: 3, log: 10 } : {} },
      axes: axes,
      series: series,
      cursor: { sync: { key: "run-" + run.i }, drag: { x: true, y: false } },
      legend: { live: true },
      plugins: [bandsPlugin(run, marks, epochRows), targetPlugin(spec)]
    };
    var u = new uPlot(opts, data, el);
    state.plots.push([u, el]);
    return u;
  }

  var RAMP = (function () {
    var out = [], i, t;
    for (i = 0; i < CHARS.length; i++) {
      t = i / (CHARS.length - 1);
      // white → blue → dark navy
      out.push([Math.round(255 - t * 225), Math.round(255 - t * 190), Math.round(255 - t * 120)]);
    }
    return out;
  })();

  function heatmaps(el, run, pid, spec) {
    var marks = marksFor(run, pid);
    var box = document.createElement("div");
    box.className = "rl-maps";
    spec.maps.forEach(function (m) {
      var steps = cum(m.x), cols = steps.length, bins = m.bins;
      var cell = document.createElement("div");
      cell.className = "rl-map";
      var cap = document.createElement("div");
      cap.className = "rl-map-name";
      cap.textContent = m.name;
      var wrap = document.createElement("div");
      wrap.className = "rl-map-wrap";
      var cv = document.createElement("canvas");
      cv.width = cols; cv.height = bins;
      var ctx = cv.getContext("2d"), img = ctx.createImageData(cols, bins), c, b, p, v;
      for (c = 0; c < cols; c++) {
        for (b = 0; b < bins; b++) {
          v = CHARS.indexOf(m.cells.charAt(c * bins + b));
          p = ((bins - 1 - b) * cols + c) * 4;  // high bins at the top
          img.data[p] = RAMP[v][0]; img.data[p + 1] = RAMP[v][1]; img.data[p + 2] = RAMP[v][2];
          img.data[p + 3] = 255;
        }
      }
      ctx.putImageData(img, 0, 0);
      wrap.appendChild(cv);
      var s0 = steps[0], s1 = steps[cols - 1];
      var lastStep = cols > 1 ? s1 + (s1 - steps[cols - 2]) : s0 + 1;
      marks.forEach(function (mk) {
        if (mk.layer && mk.layer !== m.name) return;
        var d = bandDiv(mk, mk.code);
        if (mk.steps) {
          var a = (mk.steps[0] - s0) / (lastStep - s0), z = (mk.steps[1] - s0) / (lastStep - s0);
          a = Math.max(0, Math.min(1, a)); z = Math.max(a, Math.min(1, z));
          d.style.left = (a * 100) + "%";
          d.style.width = "max(3px, " + ((z - a) * 100) + "%)";
        } else { d.style.left = "0"; d.style.width = "100%"; }
        wrap.appendChild(d);
      });
      cv.addEventListener("mousemove", function (ev) {
        var r = cv.getBoundingClientRect();
        var ci = Math.min(cols - 1, Math.floor((ev.clientX - r.left) / r.width * cols));
        var bi = bins - 1 - Math.min(bins - 1, Math.floor((ev.clientY - r.top) / r.height * bins));
        var width = (m.hi - m.lo) / (m.outer ? bins - 2 : bins);
        var lo = m.outer ? m.lo + (bi - 1) * width : m.lo + bi * width;
        var range = m.outer && bi === 0 ? "< " + fmt(m.lo)
          : (m.outer && bi === bins - 1 ? "> " + fmt(m.hi) : fmt(lo) + " … " + fmt(lo + width));
        var lvl = CHARS.indexOf(m.cells.charAt(ci * bins + bi)) / (CHARS.length - 1);
        cv.title = "step " + steps[ci] + ", bin " + range + ": " + Math.round(lvl * lvl * 100) +
          "% of the column's largest bin";
      });
      var axis = document.createElement("div");
      axis.className = "rl-map-axis";
      axis.textContent = "steps " + s0 + "–" + s1 + " · bins " + fmt(m.lo) + " … " + fmt(m.hi);
      cell.appendChild(cap); cell.appendChild(wrap); cell.appendChild(axis);
      box.appendChild(cell);
    });
    el.appendChild(box);
  }

  function images(el, run, pid, spec) {
    var marks = marksFor(run, pid);
    var box = document.createElement("div");
    box.className = "rl-images";
    spec.snapshots.forEach(function (snap) {
      var raw = atob(snap.data), n = snap.n, h = spec.h, w = spec.w, c = spec.c;
      var per = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / per);
      var cv = document.createElement("canvas");
      cv.width = per * (w + 1) - 1; cv.height = rows * (h + 1) - 1;
      var ctx = cv.getContext("2d"), img = ctx.createImageData(cv.width, cv.height);
      var f, y, x, src, dst, g;
      for (f = 0; f < n; f++) {
        var ox = (f % per) * (w + 1), oy = Math.floor(f / per) * (h + 1);
        for (y = 0; y < h; y++) {
          for (x = 0; x < w; x++) {
            src = ((f * h + y) * w + x) * c;
            dst = ((oy + y) * cv.width + ox + x) * 4;
            g = raw.charCodeAt(src);
            img.data[dst] = g;
            img.data[dst + 1] = c === 3 ? raw.charCodeAt(src + 1) : g;
            img.data[dst + 2] = c === 3 ? raw.charCodeAt(src + 2) : g;
            img.data[dst + 3] = 255;
          }
        }
      }
      ctx.putImageData(img, 0, 0);
      var fig = document.createElement("figure");
      fig.appendChild(cv);
      var cap = document.createElement("figcaption");
      cap.textContent = "step " + snap.step + " (" + n + " filters)";
      fig.appendChild(cap);
      box.appendChild(fig);
    });
    marks.forEach(function (m) {
      var d = bandDiv(m, m.code);
      d.classList.add("rl-badge");
      box.appendChild(d);
    });
    el.appendChild(box);
  }

  /* plot widths are read before drawing a batch (one layout, not one per plot) */
  function widthOf(el) {
    var w = +el.dataset.width || el.clientWidth || 520;
    return Math.max(280, w);
  }

  function measure(els) {
    els.forEach(function (el) { if (!el.dataset.drawn) el.dataset.width = el.clientWidth; });
  }

  function drawPlot(el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = "1";
    try {
      if (el.classList.contains("rl-overlay")) { drawOverlay(el); }
      else {
        var run = runData(+el.dataset.run), pid = el.dataset.plot, spec = run.plots[pid];
        if (spec.maps) heatmaps(el, run, pid, spec);
        else if (spec.snapshots) images(el, run, pid, spec);
        else linePlot(el, run, pid, spec);
      }
      state.drawn++;
    } catch (err) {
      el.dataset.error = String(err);
      el.textContent = "could not draw this plot: " + err;
      state.errors.push(String(err));
      if (window.console) console.error(err);
    }
  }

  /* overlays of the selected runs */
  var overview = JSON.parse(document.getElementById("rl-overview").textContent);
  var overlayPlots = {};

  function selected() {
    var out = {};
    document.querySelectorAll("input.sel").forEach(function (cb) {
      if (cb.checked) out[cb.dataset.run] = true;
    });
    return out;
  }

  function drawOverlay(el) {
    var key = el.dataset.plot, spec = overview.plots[key], sel = selected();
    if (overlayPlots[key]) { overlayPlots[key].destroy(); delete overlayPlots[key]; }
    var data = [spec.xf], series = [{ label: overview.xunit, value: function (u, v) { return fmt(v); } }];
    var log = false;
    spec.series.forEach(function (s) {
      if (!sel[s.run]) return;
      if (s.y.l) log = true;
      data.push(dec(s.y));
      series.push({
        label: overview.names[s.run], stroke: color(s.run), width: 1,
        points: { show: key !== "loss", size: 4 }, value: function (u, v) { return fmt(v); }
      });
    });
    el.dataset.series = String(series.length - 1);
    var opts = {
      width: widthOf(el), height: 260,
      scales: { x: { time: false }, y: log ? { distr: 3, log: 10 } : {} },
      axes: [{ label: overview.xunit, size: 34, labelSize: 14 },
             { size: 58, values: log ? decades : function (u, vals) { return vals.map(fmt); } }],
      series: series, legend: { live: true }, cursor: { sync: { key: "overlay" } }
    };
    overlayPlots[key] = new uPlot(opts, data, el);
  }

  function redrawOverlays() {
    document.querySelectorAll(".rl-overlay").forEach(function (el) {
      if (el.dataset.drawn) drawOverlay(el);
    });
  }

  document.querySelectorAll("input.sel").forEach(function (cb) {
    cb.addEventListener("change", redrawOverlays);
  });
  function setAll(v) {
    document.querySelectorAll("input.sel").forEach(function (cb) { cb.checked = v; });
    redrawOverlays();
  }
  var all = document.getElementById("sel-all"), none = document.getElementById("sel-none");
  if (all) all.addEventListener("click", function () { setAll(true); });
  if (none) none.addEventListener("click", function () { setAll(false); });

  /* draw plots as they come near the viewport */
  var plotEls = document.querySelectorAll(".rl-plot");
  state.total = plotEls.length;
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function (entries) {
      var batch = entries.filter(function (e) { return e.isIntersecting; })
        .map(function (e) { return e.target; });
      measure(batch);
      batch.forEach(function (el) { io.unobserve(el); drawPlot(el); });
    }, { rootMargin: "800px 0px" });
    plotEls.forEach(function (el) { io.observe(el); });
  } else {
    plotEls.forEach(drawPlot);
  }
  state.drawAll = function () {
    var els = Array.prototype.slice.call(plotEls);
    measure(els);
    els.forEach(drawPlot);
    return state.drawn;
  };
  /* a resized window: the drawn plots take their card's new width */
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      var sizes = state.plots.map(function (p) { return Math.max(280, p[1].clientWidth); });
      state.plots.forEach(function (p, j) { p[0].setSize({ width: sizes[j], height: p[0].height }); });
    }, 150);
  });
  state.ready = true;
})();
