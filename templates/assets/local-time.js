/* Progressive enhancement: show times in the reader's own zone, in the page's own format
   ("14:30 UTC today", "Tue 24 Nov, 14:30 UTC", 24-hour). "today", "yesterday" and "tomorrow"
   are used only when the reader's day is also the site's day for that moment; otherwise the
   date is written, so a reader never misplaces a time. The site's wording stays in the title.
   The page reads fine without it. */
(function () {
  if (!window.Intl || !document.querySelectorAll || !Intl.DateTimeFormat.prototype.formatToParts) { return; }
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var WORDS = { "0": "today", "-1": "yesterday", "1": "tomorrow" };
  function format(zone) {
    var o = { weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit",
      minute: "2-digit", hourCycle: "h23", timeZoneName: "short" };
    if (zone) { o.timeZone = zone; }
    try { return new Intl.DateTimeFormat("en-US", o); } catch (e) { return null; }
  }
  var reader = format(), site = format(document.documentElement.getAttribute("data-zone") || "UTC");
  if (!reader || !site) { return; }
  function parts(f, d) {
    var p = {}, list = f.formatToParts(d);
    for (var i = 0; i < list.length; i++) { p[list[i].type] = list[i].value; }
    return p;
  }
  function dayNumber(p) { return Date.UTC(+p.year, MONTHS.indexOf(p.month), +p.day) / 864e5; }
  var now = parts(reader, new Date());
  function hm(p) { return (p.hour === "24" ? "00" : p.hour) + ":" + p.minute; }
  function zone(p) { return p.timeZoneName.replace(/^GMT(?=[+-])/, "UTC"); }
  function date(p) { return p.weekday + " " + p.day + " " + p.month + (p.year === now.year ? "" : " " + p.year); }
  function word(d, p) {
    if (dayNumber(p) !== dayNumber(parts(site, d))) { return null; }
    return WORDS[String(dayNumber(p) - dayNumber(now))] || null;
  }
  function one(d) {
    var p = parts(reader, d), w = word(d, p);
    return w ? hm(p) + " " + zone(p) + " " + w : date(p) + ", " + hm(p) + " " + zone(p);
  }
  function span(a, b) {
    var p = parts(reader, a), q = parts(reader, b);
    if (dayNumber(p) !== dayNumber(q) || zone(p) !== zone(q)) { return one(a) + " to " + one(b); }
    var hours = hm(p) + "\u2013" + hm(q) + " " + zone(q), w = word(a, p);
    return w ? hours + " " + w : date(p) + ", " + hours;
  }
  var times = document.querySelectorAll("time[datetime][data-local]");
  for (var i = 0; i < times.length; i++) {
    var el = times[i], d = new Date(el.getAttribute("datetime"));
    var end = el.hasAttribute("data-end") ? new Date(el.getAttribute("data-end")) : null;
    if (isNaN(d.getTime()) || (end && isNaN(end.getTime()))) { continue; }
    el.setAttribute("title", el.textContent);
    el.textContent = end ? span(d, end) : one(d);
  }
})();
