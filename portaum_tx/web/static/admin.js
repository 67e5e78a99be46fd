/* Operator admin: customers, accounts, aliases, access numbers, prompts, calls. */
"use strict";

(() => {
  const {h, api, say, fail, clearStatus, enc, show, field, formValues, markNav} = Portaum;
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const A = "/api/v1/admin";
  let signedIn = false;
  let catalogue = null;

  Portaum.onSignedOut = () => { signedIn = false; nav.hidden = true; signInView(); };

  function route() {
    clearStatus();
    if (!signedIn) return signInView();
    const [path, ...rest] = decodeURIComponent(location.hash.replace(/^#\/?/, "")).split("/");
    const view = path.split("?")[0];
    const go = {customers, accounts, account: () => accountView(rest[0]), aliases, numbers,
                number: () => numberView(rest.join("/")), prompts, calls}[view] || customers;
    markNav(view === "account" ? "accounts" : view === "number" ? "numbers" : (view || "customers"));
    Promise.resolve(go()).catch(fail).finally(() => main.focus());
  }

  function signInView() {
    const password = h("input", {type: "password", name: "password", autocomplete: "current-password",
                                 required: true});
    const form = h("form", {class: "card login", id: "admin-sign-in"}, h("h1", {}, "Operator sign-in"),
      field("Operator password", password),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Sign in")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("POST", `${A}/session`, {password: password.value}, {quiet401: true});
        signedIn = true; nav.hidden = false; route();
      } catch (error) { password.value = ""; fail(error); }
    });
    show(main, form);
    password.focus();
  }

  document.getElementById("sign-out").addEventListener("click", async () => {
    try { await api("DELETE", `${A}/session`); } catch (e) { /* gone anyway */ }
    signedIn = false; nav.hidden = true; signInView();
  });

  function table(columns, rows) {
    return h("div", {class: "table-wrap"}, h("table", {},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {scope: "col"}, c)))),
      h("tbody", {}, rows.length ? rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))
        : h("tr", {}, h("td", {colspan: columns.length}, "None yet.")))));
  }

  function removeButton(label, path, after) {
    const button = h("button", {type: "button", class: "danger"}, "Remove");
    button.setAttribute("aria-label", `Remove ${label}`);
    button.addEventListener("click", async () => {
      if (!window.confirm(`Remove ${label}?`)) return;
      try { await api("DELETE", path); say(`${label} removed.`); after(); } catch (error) { fail(error); }
    });
    return button;
  }

  function submitForm(form, handler) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try { await handler(formValues(form)); } catch (error) { fail(error); }
    });
    return form;
  }

  /* customers */
  async function customers() {
    const data = await api("GET", `${A}/customers`);
    const form = submitForm(h("form", {class: "card"}, h("h2", {}, "New customer"),
      field("Name", h("input", {name: "name", required: true})),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Create"))), async (v) => {
      await api("POST", `${A}/customers`, v); say(`Customer ${v.name} created.`); customers().catch(fail);
    });
    show(main, h("h1", {}, "Customers"), table(["Name", "Accounts", "Created", ""],
      data.customers.map((c) => [h("a", {href: `#/accounts?customer=${enc(c.name)}`}, c.name), c.accounts,
        Portaum.fullDate(c.created), removeButton(`customer ${c.name}`, `${A}/customers/${enc(c.name)}`, customers)])),
      form);
  }

  /* accounts */
  async function accounts() {
    const customer = new URLSearchParams(location.hash.split("?")[1] || "").get("customer");
    const [data, owners] = await Promise.all([
      api("GET", `${A}/accounts${customer ? `?customer=${enc(customer)}` : ""}`),
      api("GET", `${A}/customers`)]);
    const form = submitForm(h("form", {class: "card", id: "new-account"}, h("h2", {}, "New account"),
      h("div", {class: "row2"},
        field("Account ID", h("input", {name: "id", required: true, inputmode: "tel"}), "The phone number."),
        field("Customer", h("select", {name: "customer"}, owners.customers.map((c) =>
          h("option", {value: c.name, selected: c.name === customer}, c.name)))),
        field("Password", h("input", {name: "password", type: "password", autocomplete: "new-password"})),
        field("PIN", h("input", {name: "pin", inputmode: "numeric"})),
        field("E-mail", h("input", {name: "email", type: "email"})),
        field("Quota", h("input", {name: "quota", placeholder: "100M"}))),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Create"))), async (v) => {
      const body = Object.fromEntries(Object.entries(v).filter(([, value]) => value !== ""));
      await api("POST", `${A}/accounts`, body); say(`Account ${v.id} created.`); accounts().catch(fail);
    });
    show(main, h("h1", {}, customer ? `Accounts of ${customer}` : "Accounts"),
      table(["Account", "Customer", "E-mail", "Language", "Mailbox", ""], data.accounts.map((a) => [
        h("a", {href: `#/account/${enc(a.id)}`}, a.id), a.customer, a.email || "", a.language,
        a.unified_messaging ? "yes" : "no", removeButton(`account ${a.id}`, `${A}/accounts/${enc(a.id)}`, accounts)])),
      form);
  }

  async function accountView(id) {
    const a = await api("GET", `${A}/accounts/${enc(id)}`);
    const text = (name, label, help) => field(label, h("input", {name, value: a[name] || ""}), help);
    const select = (name, label, options) => field(label, h("select", {name}, options.map((o) =>
      h("option", {value: o, selected: a[name] === o}, o))));
    const form = submitForm(h("form", {class: "card"}, h("h1", {}, `Account ${a.id}`),
      h("p", {}, `Customer ${a.customer}; aliases: ${a.aliases.join(", ") || "none"}; `,
        a.quota_bytes ? `mailbox ${Portaum.bytes(a.used_bytes)} of ${Portaum.bytes(a.quota_bytes)}` : "no mailbox"),
      h("div", {class: "row2"},
        text("email", "E-mail"), text("language", "Language"), text("timezone", "Time zone"),
        select("attachment_format", "Voice attachments", ["wav", "mp3"]),
        select("fax_format", "Fax format", ["pdf", "tiff"]),
        select("forward_mode", "Forwarding", ["none", "copy", "notify"]),
        text("forward_address", "Forward to"),
        select("greeting", "Greeting", ["personal", "name", "system"]),
        text("associated_number", "Associated number", "Prefixes PIN auth IDs."),
        text("mwi_contact", "MWI contact", "sip: URI for unsolicited NOTIFY."),
        field("New PIN", h("input", {name: "pin", inputmode: "numeric"}), "Leave empty to keep."),
        field("New password", h("input", {name: "password", type: "password", autocomplete: "new-password"}),
              "Leave empty to keep."),
        field("Quota", h("input", {name: "quota", placeholder: Portaum.bytes(a.quota_bytes || 0)}),
              "e.g. 200M; leave empty to keep.")),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Save"))), async (v) => {
      const body = {};
      for (const [key, value] of Object.entries(v)) {
        if (["pin", "password", "quota"].includes(key)) { if (value) body[key] = value; }
        else if (value !== (a[key] || "")) body[key] = value === "" ? null : value;
      }
      await api("PATCH", `${A}/accounts/${enc(id)}`, body); say("Saved."); accountView(id).catch(fail);
    });
    show(main, h("p", {}, h("a", {href: "#/accounts"}, "← Accounts")), form);
  }

  /* aliases */
  async function aliases() {
    const data = await api("GET", `${A}/aliases`);
    const form = submitForm(h("form", {class: "card"}, h("h2", {}, "New alias"), h("div", {class: "row2"},
      field("Alias", h("input", {name: "alias", required: true}), "Extension, PIN auth ID (1206555#4545), …"),
      field("Account", h("input", {name: "account", required: true, inputmode: "tel"}))),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Add"))), async (v) => {
      await api("POST", `${A}/aliases`, v); say(`Alias ${v.alias} added.`); aliases().catch(fail);
    });
    show(main, h("h1", {}, "Aliases"), table(["Alias", "Account", "Created", ""], data.aliases.map((a) => [
      a.alias, h("a", {href: `#/account/${enc(a.account)}`}, a.account), Portaum.fullDate(a.created),
      removeButton(`alias ${a.alias}`, `${A}/aliases/${enc(a.alias)}`, aliases)])), form);
  }

  /* access numbers */
  async function loadCatalogue() {
    if (!catalogue) catalogue = (await api("GET", `${A}/applications`)).applications;
    return catalogue;
  }

  function optionInput(option, value) {
    const name = `option:${option.name}`;
    const shown = value === undefined ? "" : String(value);
    if (option.type === "bool" || option.type === "choice") {
      const choices = option.type === "bool" ? ["yes", "no"] : (option.choices || []);
      const fallback = option.type === "bool" ? (option.default ? "yes" : "no") : option.default;
      return h("select", {name}, h("option", {value: "", selected: shown === ""}, `default (${fallback})`),
        choices.map((c) => h("option", {value: c, selected: shown === c}, c)));
    }
    return h("input", {name, value: shown, placeholder: option.default === "" ? "" : `default: ${option.default}`,
                       inputmode: option.type === "int" ? "numeric" : null});
  }

  function optionFields(app, values) {
    return h("div", {class: "options", id: "option-fields"}, app.options.map((o) =>
      field(o.name.replace(/_/g, " "), optionInput(o, values[o.name]), `${o.help} Default: ${
        o.type === "bool" ? (o.default ? "yes" : "no") : (o.default === "" ? "none" : o.default)}.`)));
  }

  function numberForm(apps, number, save) {
    const select = h("select", {name: "application", id: "number-application"}, apps.map((a) =>
      h("option", {value: a.name, selected: number && number.application === a.name}, a.name)));
    const description = h("p", {class: "help"});
    const holder = h("div", {});
    const render = () => {
      const app = apps.find((a) => a.name === select.value);
      description.textContent = app.description;
      holder.replaceChildren(optionFields(app, number && number.application === app.name ? number.options : {}));
    };
    select.addEventListener("change", render);
    render();
    return submitForm(h("form", {class: "card", id: "number-form"},
      number ? null : field("Number or prefix", h("input", {name: "pattern", required: true}),
                            "Digits, or a prefix followed by % (AD%)."),
      field("Application", select), description, holder,
      h("div", {class: "actions"}, h("button", {type: "submit"}, number ? "Save" : "Create"))), async (v) => {
      const options = {};
      for (const [key, value] of Object.entries(v)) {
        if (key.startsWith("option:") && value !== "") options[key.slice(7)] = value;
      }
      await save({pattern: v.pattern, application: v.application, options});
    });
  }

  async function numbers() {
    const [data, apps] = await Promise.all([api("GET", `${A}/access-numbers`), loadCatalogue()]);
    show(main, h("h1", {}, "Access numbers"),
      table(["Number", "Application", "Options", ""], data.access_numbers.map((n) => [
        h("a", {href: `#/number/${enc(n.pattern)}`}, n.pattern), n.application,
        Object.entries(n.options).map(([k, v]) => `${k}=${v}`).join(", ") || "defaults",
        removeButton(`access number ${n.pattern}`, `${A}/access-numbers/${enc(n.pattern)}`, numbers)])),
      h("h2", {}, "New access number"),
      numberForm(apps, null, async (body) => {
        await api("POST", `${A}/access-numbers`, body); say(`Access number ${body.pattern} created.`);
        numbers().catch(fail);
      }));
  }

  async function numberView(pattern) {
    const [number, apps] = await Promise.all([api("GET", `${A}/access-numbers/${enc(pattern)}`), loadCatalogue()]);
    show(main, h("p", {}, h("a", {href: "#/numbers"}, "← Access numbers")),
      h("h1", {}, `Access number ${number.pattern}`),
      numberForm(apps, number, async (body) => {
        await api("PATCH", `${A}/access-numbers/${enc(pattern)}`,
                  {application: body.application, options: body.options});
        say("Saved."); numberView(pattern).catch(fail);
      }));
  }

  /* prompts */
  async function prompts() {
    const data = await api("GET", `${A}/prompts`);
    const path = (p) => `${A}/prompts/${enc(p.brand)}/${enc(p.language)}/${enc(p.name)}`;
    const file = h("input", {type: "file", name: "file", accept: "audio/*", required: true, id: "prompt-file"});
    const form = h("form", {class: "card", id: "prompt-upload"}, h("h2", {}, "Upload or replace a prompt"),
      h("div", {class: "row2"},
        field("Brand", h("input", {name: "brand", value: "default", required: true}),
              "default, or the access number's prompts brand."),
        field("Language", h("input", {name: "language", value: "en", required: true})),
        field("Prompt name", h("input", {name: "name", required: true}), "e.g. vm-leave-message."),
        field("Audio file", file, "WAV, MP3, OGG, AIFF, AU, FLAC or GSM; converted to 8 kHz u-law.")),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Upload")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const v = formValues(form);
      try {
        await api("PUT", path(v), file.files[0]);
        say(`Prompt ${v.name} saved.`); prompts().catch(fail);
      } catch (error) { fail(error); }
    });
    show(main, h("h1", {}, "Prompts"),
      table(["Brand", "Language", "Name", "Length", "Play", ""], data.prompts.map((p) => [
        p.brand, p.language, p.name, `${p.seconds} s`,
        h("audio", {controls: true, preload: "none", src: path(p), "aria-label": `Play ${p.name}`}),
        removeButton(`prompt ${p.name}`, path(p), prompts)])),
      form);
  }

  /* calls */
  async function calls() {
    try {
      const data = await api("GET", `${A}/calls`);
      show(main, h("h1", {}, `Active calls on ${data.node}`),
        h("p", {class: "help"}, "Calls on the node serving this page; refresh to update."),
        table(["Call", "From", "To", "Diverted from", "State"], data.calls.map((c) => [
          c.call_id || "", c.caller_name ? `${c.caller_name} (${c.caller || ""})` : (c.caller || ""),
          c.called || "", c.original_called ? `${c.original_called} (${c.diversion_reason || "?"})` : "",
          c.answered ? "answered" : "ringing"])));
    } catch (error) {
      if (error.status !== 503) throw error;
      show(main, h("h1", {}, "Active calls"), h("p", {class: "notice"}, error.message));
    }
  }

  window.addEventListener("hashchange", route);
  api("GET", `${A}/session`, undefined, {quiet401: true})
    .then(() => { signedIn = true; nav.hidden = false; route(); })
    .catch(() => signInView());
})();
