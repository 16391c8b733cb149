/* runlint: sortable tables, shared by the run report and the sweep page. Click a header to
   sort by its column; a header with data-sort="num" (or "sev") sorts by the cells' data-v,
   missing values last. */
(function () {
  "use strict";
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, col) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var numeric = th.dataset.sort === "num" || th.dataset.sort === "sev";
        var dir = th.dataset.dir === "asc" ? -1 : 1;
        table.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
        th.dataset.dir = dir === 1 ? "asc" : "desc";
        rows.sort(function (a, b) {
          var ca = a.cells[col], cb = b.cells[col];
          if (numeric) {
            var va = ca.dataset.v === "" || ca.dataset.v == null ? NaN : +ca.dataset.v;
            var vb = cb.dataset.v === "" || cb.dataset.v == null ? NaN : +cb.dataset.v;
            if (isNaN(va) && isNaN(vb)) return 0;
            if (isNaN(va)) return 1;
            if (isNaN(vb)) return -1;
            return (va - vb) * dir;
          }
          return ca.textContent.localeCompare(cb.textContent) * dir;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
