/* SEMC dashboard: keeps the live part of a page up to date without reloading it.
 *
 * The element #live names its fragment URL (data-fragment-url) and poll period in seconds (data-poll-s);
 * every period the fragment is fetched with the page's current query (run, exposure) and swapped in.
 * Clicking a micrograph selects it (its drift, CTF fit and spectrum) without a reload, and the requeue
 * buttons post in the background. Plain JavaScript, no library, nothing from the internet.
 */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) { return; }
  var base = (live.getAttribute("data-fragment-url") || "").split("?")[0];
  var period = Math.max(1, parseFloat(live.getAttribute("data-poll-s")) || 5) * 1000;
  var busy = false;
  var stopped = false;
  var timer = null;

  function status(text, kind) {
    var note = document.getElementById("live-status");
    if (!note) {
      note = document.createElement("p");
      note.id = "live-status";
      live.parentNode.insertBefore(note, live);
    }
    note.className = "live-status " + (kind || "");
    note.textContent = text;
  }

  function loggedOut(response) {
    return response.status === 401 || response.status === 403 ||
      (response.redirected && response.url.indexOf("/login/") !== -1);
  }

  function refresh() {
    if (busy || stopped) { return; }
    busy = true;
    fetch(base + window.location.search, {
      credentials: "same-origin", cache: "no-store", headers: {"X-Requested-With": "fetch"}
    }).then(function (response) {
      if (loggedOut(response)) {
        stopped = true;
        status("Logged out: reload the page to log in again.", "bad");
        return null;
      }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(function (html) {
      if (html === null || html === undefined) { return; }
      live.innerHTML = html;
      live.setAttribute("data-refreshed", String(Date.now()));
      var note = document.getElementById("live-status");
      if (note) { note.remove(); }
    }).catch(function (error) {
      status("Cannot reach the server (" + error.message + "); retrying.", "stale");
    }).then(function () {
      busy = false;
    });
  }

  function select(imageId) {
    var params = new URLSearchParams(window.location.search);
    params.set("exposure", imageId);
    window.history.replaceState(null, "", window.location.pathname + "?" + params.toString());
    refresh();
  }

  live.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-exposure]") : null;
    if (!link) { return; }
    event.preventDefault();
    select(link.getAttribute("data-exposure"));
  });

  live.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.action || form.action.indexOf("/requeue/") === -1) { return; }
    event.preventDefault();
    var button = form.querySelector("button");
    if (button) { button.disabled = true; }
    fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: {"Accept": "application/json", "X-Requested-With": "fetch"}
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    }).then(function (answer) {
      status(answer.message, "ok");
      refresh();
    }).catch(function (error) {
      status("Requeue failed (" + error.message + ").", "bad");
      if (button) { button.disabled = false; }
    });
  });

  timer = window.setInterval(refresh, period);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { refresh(); }
  });
  window.semcDashboard = {refresh: refresh, stop: function () { stopped = true; window.clearInterval(timer); }};
}());
