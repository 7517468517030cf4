// The dead-letters page: list the dead letters, replay or resolve one (with a note), act on every
// dead letter matching the filters at once, and download them as CSV, with the operator's bearer
// token. The rows (raw payloads included), the replay, the resolve and the CSV are operator routes,
// so every request carries the token the operator typed. It is kept in this tab's sessionStorage
// only: never in a URL, a cookie or the page (the cookies sent with the rows and the CSV hold only
// the operator's language and time zone). A 401 or 403 says plainly what is wrong. The texts
// come from the message catalogue (window.consoleMessages, console.js).
(function () {
  "use strict";
  var t = window.consoleMessages;
  var KEY = "warehouse-stock.operator-token";
  var NAME_KEY = "warehouse-stock.operator-name";  // not a secret: localStorage, kept across tabs
  var nameInput = document.getElementById("operator-name");
  var form = document.getElementById("token-form");
  var input = document.getElementById("operator-token");
  var state = document.getElementById("token-state");
  var message = document.getElementById("replay-message");
  var rows = document.getElementById("dead-letter-rows");
  var bulk = document.getElementById("bulk");

  function token() {
    return sessionStorage.getItem(KEY) || "";
  }

  function headers(json) {
    var result = { Accept: "application/json, text/html" };
    if (token()) {
      result.Authorization = "Bearer " + token();
    }
    if (json) {
      result["Content-Type"] = "application/json";
    }
    if (operatorName()) {
      result["X-Operator"] = operatorName();
    }
    return result;
  }

  function operatorName() {
    return (nameInput.value || "").trim().slice(0, 200);
  }

  function showTokenState() {
    state.textContent = token() ? t("js.token_kept") : t("js.no_token");
  }

  function say(text, kind) {
    message.textContent = text;
    message.className = "message " + (kind || "");
  }

  function refused(status) {
    if (status === 401) {
      return t("js.unauthorized");
    }
    if (status === 403) {
      return t("js.forbidden");
    }
    return null;
  }

  async function bodyOf(response) {
    try {
      return await response.json();
    } catch (ignored) {
      return null;
    }
  }

  function problemOf(response, body) {
    var detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : "";
    return "HTTP " + response.status + (detail ? ": " + detail : "");
  }

  async function loadRows() {
    var response;
    try {
      // same-origin: the console's cookies say only the language and the time zone to render in.
      response = await fetch(rows.dataset.src, { headers: headers(false), credentials: "same-origin" });
    } catch (error) {
      say(t("js.list_failed", { error: error }), "error");
      return;
    }
    var problem = refused(response.status);
    if (problem) {
      say(problem, "error");
      return;
    }
    rows.innerHTML = await response.text();  // server-rendered, escaped
    rows.dataset.loaded = "true";
    rows.querySelectorAll("button.replay").forEach(function (button) {
      button.addEventListener("click", function () { replay(button); });
    });
    rows.querySelectorAll("button.resolve").forEach(function (button) {
      button.addEventListener("click", function () { resolve(button); });
    });
    if (response.ok) {
      say("");
    }
  }

  async function post(url, payload) {
    var response = await fetch(url, {
      method: "POST",
      headers: headers(payload !== undefined),
      credentials: "omit",
      body: payload === undefined ? undefined : JSON.stringify(payload)
    });
    return { response: response, body: await bodyOf(response) };
  }

  async function replay(button) {
    var id = button.dataset.id;
    var row = document.getElementById("dl-" + id);
    button.disabled = true;
    say(t("js.replaying", { id: id }));
    try {
      var answer = await post("/api/v1/rejected-events/" + encodeURIComponent(id) + "/replay");
      var problem = refused(answer.response.status);
      if (problem) {
        say(problem, "error");
        return;
      }
      if (!answer.response.ok) {
        say(t("js.replay_failed", { id: id, error: problemOf(answer.response, answer.body) }), "error");
        return;
      }
      var body = answer.body;
      var status = t("outcome." + body.status);
      row.querySelector(".replay-status").textContent = status + (body.reason ? " (" + t("reason." + body.reason) + ")" : "");
      row.dataset.replayStatus = body.status;
      say(t("js.replayed", { id: id, status: status }) + (body.detail ? ": " + body.detail : ""),
          body.status === "rejected" ? "error" : "ok");
    } catch (error) {
      say(t("js.replay_failed", { id: id, error: error }), "error");
    } finally {
      button.disabled = false;
    }
  }

  async function resolve(button) {
    var id = button.dataset.id;
    var row = document.getElementById("dl-" + id);
    var note = row.querySelector(".note-input").value.trim();
    if (!note) {
      say(t("js.note_needed"), "error");
      row.querySelector(".note-input").focus();
      return;
    }
    button.disabled = true;
    say(t("js.resolving", { id: id }));
    try {
      var answer = await post("/api/v1/rejected-events/" + encodeURIComponent(id) + "/resolve", { note: note });
      var problem = refused(answer.response.status);
      if (problem) {
        say(problem, "error");
        return;
      }
      if (!answer.response.ok) {
        say(t("js.resolve_failed", { id: id, error: problemOf(answer.response, answer.body) }), "error");
        return;
      }
      row.querySelector(".replay-status").textContent = t("dead.resolved") + ": " + note;
      row.dataset.resolved = "true";
      say(t("js.resolved", { id: id }), "ok");
    } catch (error) {
      say(t("js.resolve_failed", { id: id, error: error }), "error");
    } finally {
      button.disabled = false;
    }
  }

  async function bulkAction(button) {
    var action = button.dataset.action;
    var label = button.textContent;
    var note = (document.getElementById("bulk-note") || {}).value || "";
    note = note.trim();
    if (action === "resolve" && !note) {
      say(t("js.note_needed"), "error");
      document.getElementById("bulk-note").focus();
      return;
    }
    if (!window.confirm(t("js.bulk_confirm", { action: label }))) {
      return;
    }
    button.disabled = true;
    try {
      var selection = {};
      if (bulk.dataset.reason) {
        selection.reason = bulk.dataset.reason;
      }
      if (bulk.dataset.movement) {
        selection.movement_id = bulk.dataset.movement;
      }
      if (action === "resolve") {
        selection.note = note;
      }
      var answer = await post("/api/v1/rejected-events/" + action, selection);
      var problem = refused(answer.response.status);
      if (problem) {
        say(problem, "error");
        return;
      }
      if (!answer.response.ok) {
        say(t("js.bulk_failed", { action: label, error: problemOf(answer.response, answer.body) }), "error");
        return;
      }
      var body = answer.body || {};
      var count = (body.resolved_ids || body.results || []).length;
      var done = t("js.bulk_done", { action: label, count: count }) + (body.more ? " " + t("js.bulk_more") : "");
      await loadRows();
      say(done, "ok");
    } catch (error) {
      say(t("js.bulk_failed", { action: label, error: error }), "error");
    } finally {
      button.disabled = false;
    }
  }

  async function download(event) {
    event.preventDefault();
    var link = event.currentTarget;
    try {
      var response = await fetch(link.href, { headers: { Authorization: "Bearer " + token() }, credentials: "same-origin" });
      var problem = refused(response.status);
      if (problem || !response.ok) {
        say(problem || t("js.export_failed", { error: "HTTP " + response.status }), "error");
        return;
      }
      var name = (/filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "") || [])[1] || "dead-letters.csv";
      var url = URL.createObjectURL(await response.blob());
      var save = document.createElement("a");
      save.href = url;
      save.download = name;
      document.body.appendChild(save);
      save.click();
      save.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
    } catch (error) {
      say(t("js.export_failed", { error: error }), "error");
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
  nameInput.value = localStorage.getItem(NAME_KEY) || "";
  nameInput.addEventListener("change", function () {
    localStorage.setItem(NAME_KEY, operatorName());
  });
  bulk.querySelectorAll("button").forEach(function (button) {
    button.addEventListener("click", function () { bulkAction(button); });
  });
  document.getElementById("dead-letters-csv").addEventListener("click", download);
  showTokenState();
  if (token() || rows.dataset.tokenRequired !== "true") {
    loadRows();
  }
})();
