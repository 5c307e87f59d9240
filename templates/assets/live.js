/* The dashboard's live list: every second, fetch /admin/live (the same list, rendered by the
   server) and swap it in when it changed. Without script the page has a "Reload" link. */
(function () {
  var box = document.getElementById("live");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-live"), last = null, busy = false;
  function poll() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401 || r.redirected) { clearInterval(timer); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== last) {
          // Keep the operator's place: do not swap while they are on a control in the list.
          if (box.contains(document.activeElement) && document.activeElement !== box) { return; }
          last = html;
          box.innerHTML = html;
        }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  var timer = setInterval(poll, 1000);
  document.addEventListener("visibilitychange", poll);
})();
