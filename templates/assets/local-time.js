/* Progressive enhancement: show times in the reader's own zone. The page reads fine without it. */
(function () {
  if (!window.Intl || !document.querySelectorAll) { return; }
  var today = new Date().toDateString();
  var short = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  var long = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  var times = document.querySelectorAll("time[datetime][data-local]");
  for (var i = 0; i < times.length; i++) {
    var el = times[i], d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) { continue; }
    el.setAttribute("title", el.textContent);
    el.textContent = (d.toDateString() === today ? short : long).format(d);
  }
})();
