/* Live preview and calibration as the form changes. The form's own Preview button does the same
   without script. */
(function () {
  var form = document.querySelector("form[data-preview]");
  if (!form || !window.fetch || !window.URLSearchParams) { return; }
  var box = document.getElementById("previews"), cal = document.getElementById("calibration"), timer = null;
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) { e.className = cls; } if (text != null) { e.textContent = text; } return e; }
  function mins(m) { m = Math.round(m); return m >= 120 ? (Math.round(m / 6) / 10) + " h" : m + " min"; }
  function show(data) {
    if (box && data.previews) {
      var hint = document.getElementById("preview-hint");
      if (hint) { hint.parentNode.removeChild(hint); }
      box.textContent = "";
      data.previews.forEach(function (p) {
        var d = el("div", "preview"); d.setAttribute("data-channel", p.channel);
        d.appendChild(el("strong", null, p.channel)); d.appendChild(document.createTextNode(" "));
        d.appendChild(el("span", "hint", "(" + p.kind + ") "));
        d.appendChild(el("span", "count" + (p.over ? " over" : ""), p.length + (p.limit ? " / " + p.limit : "") + " characters" + (p.over ? ": too long, it will be cut" : "")));
        d.appendChild(el("pre", null, p.text));
        box.appendChild(d);
      });
    }
    var hon = document.getElementById("honesty");
    if (hon && data.warnings) {
      hon.textContent = "";
      data.warnings.forEach(function (w) {
        var p = el("p", "error", "Before you publish: " + w.message); p.setAttribute("data-warning", w.code);
        hon.appendChild(p);
      });
    }
    if (cal && data.estimates) {
      var e = data.estimates; cal.textContent = "";
      cal.appendChild(el("strong", null, "What history says"));
      cal.appendChild(el("p", null, e.explanation));
      if (e.median_minutes != null) {
        cal.appendChild(el("p", "hint", "Median " + mins(e.median_minutes) + " · 90th percentile " + mins(e.p90_minutes) +
          (e.median_overrun_ratio != null ? " · actual ÷ first estimate " + e.median_overrun_ratio.toFixed(1) + "×" : "") +
          " · " + e.sample_size + " incidents" + (e.suggested_minutes != null ? " · suggested ETA " + mins(e.suggested_minutes) : "")));
      }
    }
  }
  function refresh() {
    var body = new URLSearchParams(new FormData(form));
    body.delete("action");
    fetch("/admin/preview", { method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRF-Token": form.querySelector("input[name=csrf]").value } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d) { show(d); } })
      .catch(function () {});
  }
  form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 300); });
  if (form.querySelector("textarea[name=message]").value) { refresh(); }
  form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(refresh, 100); });
})();
