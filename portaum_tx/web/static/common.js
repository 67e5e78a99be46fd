/* Shared helpers: DOM building (text only, never HTML strings), the API client, status. */
"use strict";

const Portaum = (() => {
  let csrf = null;

  /* h("a", {href: "#"}, "text", child) -> element; strings become text nodes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  class ApiError extends Error {
    constructor(status, error) {
      super(error && error.message ? error.message : `request failed (${status})`);
      this.status = status;
      this.code = error && error.code;
      this.field = error && error.field;
    }
  }

  async function api(method, path, body, options) {
    const headers = {};
    let payload;
    if (body instanceof Blob || body instanceof ArrayBuffer) {
      payload = body;
      if (body.type) headers["Content-Type"] = body.type;
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    const response = await fetch(path, {method, headers, body: payload, credentials: "same-origin"});
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) {
      const error = new ApiError(response.status, data && data.error);
      if (response.status === 401 && !(options && options.quiet401) && Portaum.onSignedOut) {
        Portaum.onSignedOut(error);
      }
      throw error;
    }
    if (data && data.csrf_token) csrf = data.csrf_token;
    return data;
  }

  function setCsrf(token) { csrf = token; }

  let statusTimer = null;
  let saidAt = 0;
  function say(text, isError) {
    saidAt = Date.now();
    const box = document.getElementById("status");
    box.textContent = text;
    box.classList.toggle("error", Boolean(isError));
    box.setAttribute("role", isError ? "alert" : "status");
    box.hidden = false;
    clearTimeout(statusTimer);
    if (!isError) statusTimer = setTimeout(() => { box.hidden = true; }, 5000);
  }
  /* On navigation: a message said just before (e.g. "sent") stays for the next view. */
  function clearStatus() {
    if (Date.now() - saidAt > 1500) document.getElementById("status").hidden = true;
  }
  /* Says what went wrong; when the API names the field, that input is marked and focused. */
  function fail(error) {
    say(error.message || String(error), true);
    for (const marked of document.querySelectorAll("#main [aria-invalid='true']")) {
      marked.removeAttribute("aria-invalid");
    }
    if (error.field) {
      const input = document.querySelector(`#main [name="${CSS.escape(error.field)}"]`);
      if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    }
  }

  /* Dates are shown in the subscriber's own time zone (a setting), not the browser's. */
  let zone;
  function setZone(name) {
    try { new Intl.DateTimeFormat([], {timeZone: name}); zone = name; } catch (e) { zone = undefined; }
  }
  function when(seconds) {
    const date = new Date(seconds * 1000);
    const day = (d) => d.toLocaleDateString("en-CA", {timeZone: zone});
    if (day(date) === day(new Date())) {
      return date.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", timeZone: zone});
    }
    return date.toLocaleDateString([], {year: "numeric", month: "short", day: "numeric", timeZone: zone});
  }
  function fullDate(seconds) {
    return new Date(seconds * 1000).toLocaleString([], {dateStyle: "medium", timeStyle: "short",
                                                        timeZone: zone});
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const m = Math.floor(seconds / 60), s = seconds % 60;
    return m ? `${m}:${String(s).padStart(2, "0")}` : `${s} s`;
  }
  function bytes(n) {
    if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MB`;
    if (n >= 1024) return `${Math.round(n / 1024)} KB`;
    return `${n} B`;
  }
  function enc(value) { return encodeURIComponent(value); }

  function show(main, ...children) {
    main.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  }

  function field(label, input, help) {
    const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
    input.id = id;
    const helpId = help ? `${id}-help` : null;
    if (helpId) input.setAttribute("aria-describedby", helpId);
    return h("div", {class: "field"}, h("label", {for: id}, label), input,
      help ? h("span", {class: "help", id: helpId}, help) : null);
  }

  function formValues(form) {
    const values = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      if (el.type === "checkbox") values[el.name] = el.checked;
      else values[el.name] = el.value;
    }
    return values;
  }

  function markNav(name) {
    for (const link of document.querySelectorAll("#nav [data-nav]")) {
      if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  return {h, api, ApiError, setCsrf, say, clearStatus, fail, when, fullDate, duration, bytes, enc,
          show, field, formValues, markNav, setZone, onSignedOut: null};
})();
