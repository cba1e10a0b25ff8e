// Live progress of one run: poll its /live JSON while it moves; reload when it ends.
(function () {
  "use strict";
  var script = document.currentScript;
  var url = script.getAttribute("data-live");
  var moving = { pending: true, running: true };
  if (!moving[script.getAttribute("data-state")]) return;

  function text(el, value) { if (el) el.textContent = value; }
  function duration(s) {
    if (s === null || s === undefined) return "";
    if (s < 10) return s.toFixed(1) + " s";
    var w = Math.round(s);
    if (w < 60) return w + " s";
    var m = Math.floor(w / 60);
    return m < 60 ? m + " min " + (w % 60) + " s" : Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  function update(status) {
    status.stages.forEach(function (s) {
      var li = document.querySelector('#stages li[data-stage="' + s.stage + '"]');
      if (!li) return;
      li.className = "stage stage-" + s.state;
      var badge = li.querySelector(".stage-state .badge");
      if (badge) { badge.className = "badge state-" + s.state; text(badge, s.state); }
      var p = li.querySelector(".stage-progress");
      if (p) {
        p.textContent = "";
        if (s.state === "running" && s.done !== null) {
          var wrap = document.createElement("span");
          wrap.className = "progress";
          if (s.percent !== null) {
            var bar = document.createElement("span"), fill = document.createElement("span");
            bar.className = "bar"; fill.style.width = s.percent.toFixed(1) + "%";
            bar.appendChild(fill); wrap.appendChild(bar);
            wrap.appendChild(document.createTextNode(" " + Math.round(s.percent) + "%"));
          } else {
            wrap.appendChild(document.createTextNode(String(s.done)));
          }
          wrap.setAttribute("data-done", String(s.done));
          p.appendChild(wrap);
        }
      }
      text(li.querySelector(".seconds"), duration(s.seconds));
    });
    text(document.getElementById("run-duration"), duration(status.seconds) || "–");
    if (!moving[status.state]) window.location.reload();
  }
  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (status) { if (status) update(status); })
      .catch(function () {})
      .then(function () { window.setTimeout(poll, 1000); });
  }
  window.setTimeout(poll, 1000);
})();
