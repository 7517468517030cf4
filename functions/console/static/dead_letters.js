// The dead-letters page: list the dead letters and replay one, with the operator's bearer token.
// The rows (raw payloads included) and the replay are operator routes, so both requests carry the
// token the operator typed. It is kept in this tab's sessionStorage only: never in a URL, a cookie
// or the page. A 401 or 403 says plainly what is wrong.
(function () {
  "use strict";
  var KEY = "warehouse-stock.operator-token";
  var form = document.getElementById("token-form");
  var input = document.getElementById("operator-token");
  var state = document.getElementById("token-state");
  var message = document.getElementById("replay-message");
  var rows = document.getElementById("dead-letter-rows");

  function token() {
    return sessionStorage.getItem(KEY) || "";
  }

  function headers() {
    var result = { Accept: "application/json, text/html" };
    if (token()) {
      result.Authorization = "Bearer " + token();
    }
    return result;
  }

  function showTokenState() {
    state.textContent = token() ? "a token is kept for this tab" : "no token kept";
  }

  function say(text, kind) {
    message.textContent = text;
    message.className = "message " + (kind || "");
  }

  function refused(status, what) {
    if (status === 401) {
      return "401 Unauthorized: the operator token is missing or wrong. Type it above and " + what + " again.";
    }
    if (status === 403) {
      return "403 Forbidden: API Gateway refused the request (operators authorized by IAM need signed " +
        "requests, which a browser cannot make; a JWT must be valid for this API).";
    }
    return null;
  }

  async function loadRows() {
    var response;
    try {
      response = await fetch(rows.dataset.src, { headers: headers(), credentials: "omit" });
    } catch (error) {
      say("could not list the dead letters: " + error, "error");
      return;
    }
    var problem = refused(response.status, "list them");
    if (problem) {
      say(problem, "error");
      return;
    }
    rows.innerHTML = await response.text();  // server-rendered, escaped
    rows.dataset.loaded = "true";
    rows.querySelectorAll("button.replay").forEach(function (button) {
      button.addEventListener("click", function () { replay(button); });
    });
    if (response.ok) {
      say("");
    }
  }

  async function replay(button) {
    var id = button.dataset.id;
    var row = document.getElementById("dl-" + id);
    button.disabled = true;
    say("replaying dead letter " + id + "…");
    try {
      var response = await fetch("/api/v1/rejected-events/" + encodeURIComponent(id) + "/replay", {
        method: "POST",
        headers: headers(),
        credentials: "omit"
      });
      var body = null;
      try {
        body = await response.json();
      } catch (ignored) {
        body = null;
      }
      var problem = refused(response.status, "replay");
      if (problem) {
        say(problem, "error");
        return;
      }
      if (!response.ok) {
        say("replay of " + id + " failed: HTTP " + response.status + (body && body.detail ? ": " + body.detail : ""), "error");
        return;
      }
      var cell = row.querySelector(".replay-status");
      cell.textContent = body.status + (body.reason ? " (" + body.reason + ")" : "");
      row.dataset.replayStatus = body.status;
      say("dead letter " + id + ": " + body.status + (body.detail ? ": " + body.detail : ""),
          body.status === "rejected" ? "error" : "ok");
    } catch (error) {
      say("replay of " + id + " failed: " + error, "error");
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var value = input.value.trim();
    if (value) {
      sessionStorage.setItem(KEY, value);
    }
    input.value = "";
    showTokenState();
    if (rows.dataset.loaded !== "true") {
      loadRows();
    }
  });
  document.getElementById("forget-token").addEventListener("click", function () {
    sessionStorage.removeItem(KEY);
    showTokenState();
  });
  showTokenState();
  if (token() || rows.dataset.tokenRequired !== "true") {
    loadRows();
  }
})();
