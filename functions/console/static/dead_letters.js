// The dead-letters page: replay one dead letter with the operator's bearer token.
// The token is typed by the operator and kept in this tab's sessionStorage only: never in a URL,
// a cookie or the page. A 401 says plainly that the token is missing or wrong.
(function () {
  "use strict";
  var KEY = "warehouse-stock.operator-token";
  var form = document.getElementById("token-form");
  var input = document.getElementById("operator-token");
  var state = document.getElementById("token-state");
  var message = document.getElementById("replay-message");

  function token() {
    return sessionStorage.getItem(KEY) || "";
  }

  function showTokenState() {
    state.textContent = token() ? "a token is kept for this tab" : "no token kept";
  }

  function say(text, kind) {
    message.textContent = text;
    message.className = "message " + (kind || "");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var value = input.value.trim();
    if (value) {
      sessionStorage.setItem(KEY, value);
    }
    input.value = "";
    showTokenState();
  });
  document.getElementById("forget-token").addEventListener("click", function () {
    sessionStorage.removeItem(KEY);
    showTokenState();
  });
  showTokenState();

  async function replay(button) {
    var id = button.dataset.id;
    var row = document.getElementById("dl-" + id);
    var headers = { Accept: "application/json" };
    if (token()) {
      headers.Authorization = "Bearer " + token();
    }
    button.disabled = true;
    say("replaying dead letter " + id + "…");
    try {
      var response = await fetch("/api/v1/rejected-events/" + encodeURIComponent(id) + "/replay", {
        method: "POST",
        headers: headers,
        credentials: "omit"
      });
      var body = null;
      try {
        body = await response.json();
      } catch (ignored) {
        body = null;
      }
      if (response.status === 401) {
        say("401 Unauthorized: the operator token is missing or wrong. Type it above and replay again.", "error");
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

  document.querySelectorAll("button.replay").forEach(function (button) {
    button.addEventListener("click", function () { replay(button); });
  });
})();
