/* The mirror's own staleness. A copy of this page on object storage or a plain web server can't
   tell that it stopped being updated, so Candor rewrites /heartbeat.json every minute while it
   runs and the copy is current. This fetches it on load and every minute (not while the tab is
   hidden) and, when it is older than data-after seconds, says so above the page. "Now" is the
   server's clock (the Date header, plus Age from a cache) when it sends one, so a visitor's wrong
   clock never fakes staleness. A missing or unreadable heartbeat says nothing. Without script the
   page is still the page. */
(function () {
  var box = document.getElementById("heartbeat-banner");
  if (!box || !window.fetch) { return; }
  var after = parseInt(box.getAttribute("data-after"), 10);
  if (!(after > 0)) { return; }
  var text = box.getElementsByTagName("p")[0] || box, asked = 0;
  function ago(ms) {
    var m = Math.max(1, Math.floor(ms / 60000)), h = Math.floor(m / 60);
    if (m <= 120) { return m === 1 ? "1 minute" : m + " minutes"; }
    if (h <= 48) { return h + " hours"; }
    return Math.floor(h / 24) + " days";
  }
  function show(age) {
    if (age === null || !(age > after * 1000)) { box.setAttribute("hidden", ""); return; }
    var words = "This page was last updated " + ago(age) + " ago; we may be having trouble updating it.";
    if (text.textContent !== words) { text.textContent = words; }
    box.removeAttribute("hidden");
  }
  function serverNow(r) {
    var date = Date.parse(r.headers.get("Date") || ""), age = parseInt(r.headers.get("Age") || "", 10);
    if (isNaN(date)) { return Date.now(); }
    return age > 0 ? date + age * 1000 : date;
  }
  function check() {
    if (document.hidden) { return; }
    // A newer check supersedes one still waiting on a slow network.
    var mine = ++asked;
    fetch("/heartbeat.json", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { return null; }
        var now = serverNow(r);
        return r.json().then(function (beat) {
          var at = beat && typeof beat.updated_at === "string" ? Date.parse(beat.updated_at) : NaN;
          return isNaN(at) ? null : now - at;
        });
      })
      .catch(function () { return null; })
      .then(function (age) { if (mine === asked) { show(age); } });
  }
  check();
  setInterval(check, 60000);
  document.addEventListener("visibilitychange", check);
})();
