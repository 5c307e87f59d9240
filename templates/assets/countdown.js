/* Countdowns: "in 12 min", "overdue by 3 min". Without script the times still read plainly. */
(function () {
  if (!document.querySelector("[data-countdown]")) { return; }
  function fmt(ms) {
    var s = Math.round(Math.abs(ms) / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + " h " : "") + (h || m ? m + " min " : "") + (h ? "" : r + " s");
  }
  function tick() {
    // Looked up on every tick: the dashboard's live list replaces its elements.
    var els = document.querySelectorAll("[data-countdown]"), now = Date.now();
    for (var i = 0; i < els.length; i++) {
      var el = els[i], at = Date.parse(el.getAttribute("data-countdown"));
      if (isNaN(at)) { continue; }
      var left = at - now;
      el.textContent = left >= 0 ? "in " + fmt(left) : "overdue by " + fmt(left);
      el.className = left >= 0 ? "count" : "overdue";
    }
  }
  tick(); setInterval(tick, 1000);
})();
