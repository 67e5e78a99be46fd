/* Auto attendant editor: menus (period builder, event table, prompts), queues, directory. */
"use strict";

(() => {
  const {h, api, say, fail, enc, show, field} = Portaum;
  const AA = "/api/v1/attendant";
  const EVENT_LABEL = {timeout: "No key (timeout)", fax: "Fax tone", not_active: "Menu not active"};
  const ACTION_LABEL = {
    default: "Default (replay the menu)", transfer: "Transfer", transfer_e164: "Transfer to E.164",
    transfer_extension: "Transfer to extension", transfer_voicemail: "Transfer to voicemail",
    menu: "Go to menu", directory: "Dial-by-name directory", queue: "Call queue", disconnect: "Hang up"};
  const PROMPT_LABEL = {intro: "Intro (first entry only)", menu: "Menu", timeout: "Timeout / default",
                        unavailable: "Unavailable (not active)"};
  const DAYS = ["su", "mo", "tu", "we", "th", "fr", "sa"];
  const DAY_NAMES = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

  function hourWord(hour) {
    if (hour === 0) return "12am";
    if (hour < 12) return `${hour}am`;
    if (hour === 12) return "12pm";
    return `${hour - 12}pm`;
  }
  function hourValue(word) {
    const m = /^(\d{1,2})(am|pm|noon)?$/.exec(word);
    if (!m) return null;
    let n = Number(m[1]);
    if (m[2] === "am") n = n === 12 ? 0 : n;
    else if (m[2] === "pm" || m[2] === "noon") n = n === 12 ? 12 : n + 12;
    return n >= 0 && n < 24 ? n : null;
  }

  /* Consecutive runs written as ranges: [1,2,3,5] -> "mo-we fr". */
  function runs(indexes, word) {
    const out = [];
    for (let i = 0; i < indexes.length; i += 1) {
      let j = i;
      while (j + 1 < indexes.length && indexes[j + 1] === indexes[j] + 1) j += 1;
      out.push(j > i + 1 ? `${word(indexes[i])}-${word(indexes[j])}`
        : j === i + 1 ? `${word(indexes[i])} ${word(indexes[j])}` : word(indexes[i]));
      i = j;
    }
    return out.join(" ");
  }

  /* The builder: hours from/until, weekdays, months, days of the month -> one alternative. */
  function periodBuilder(menuName, input, onChange) {
    const id = (s) => `pb-${menuName.replace(/\W/g, "_")}-${s}`;
    const hourSelect = (name, label) => h("select", {id: id(name), "aria-label": label},
      h("option", {value: ""}, "any time"),
      Array.from({length: 24}, (_, hour) => h("option", {value: hour}, hourWord(hour))));
    const from = hourSelect("from", "From"), until = hourSelect("until", "Until");
    const dayBoxes = DAYS.map((d, i) => h("label", {class: "check"},
      h("input", {type: "checkbox", value: d, id: id(`wd-${d}`)}), ` ${DAY_NAMES[i]} `));
    const monthBoxes = MONTHS.map((m) => h("label", {class: "check"},
      h("input", {type: "checkbox", value: m, id: id(`mo-${m}`)}), ` ${m} `));
    const mdays = h("input", {id: id("md"), placeholder: "e.g. 1 24-26", inputmode: "numeric"});

    function build() {
      const parts = [];
      if (from.value !== "" && until.value !== "") {
        const first = Number(from.value), last = (Number(until.value) + 23) % 24;
        parts.push(`hr{${hourWord(first)}-${hourWord(last)}}`);
      }
      const days = dayBoxes.map((b, i) => (b.firstChild.checked ? i : -1)).filter((i) => i >= 0);
      if (days.length && days.length < 7) parts.push(`wd{${runs(days, (i) => DAYS[i])}}`);
      if (mdays.value.trim()) parts.push(`md{${mdays.value.trim()}}`);
      const months = monthBoxes.map((b, i) => (b.firstChild.checked ? i : -1)).filter((i) => i >= 0);
      if (months.length && months.length < 12) parts.push(`mo{${runs(months, (i) => MONTHS[i])}}`);
      return parts.join(" ");
    }

    /* Reads one simple alternative back into the builder; false when it cannot. */
    function read(text) {
      from.value = ""; until.value = ""; mdays.value = "";
      dayBoxes.concat(monthBoxes).forEach((b) => { b.firstChild.checked = false; });
      const trimmed = text.trim();
      if (!trimmed) return true;
      if (trimmed.includes(",")) return false;
      const groups = [...trimmed.matchAll(/(\w+)\s*\{([^}]*)\}/g)];
      if (groups.map((g) => g[0]).join(" ").replace(/\s+/g, "") !== trimmed.replace(/\s+/g, "")) return false;
      for (const [, scale, values] of groups) {
        const items = values.trim().split(/\s+/);
        if (scale === "hr" || scale === "hour") {
          if (items.length !== 1) return false;
          const [a, b = a] = items[0].split("-");
          const lo = hourValue(a), hi = hourValue(b);
          if (lo === null || hi === null) return false;
          from.value = lo; until.value = (hi + 1) % 24;
        } else if (scale === "wd" || scale === "wday" || scale === "mo" || scale === "month") {
          const weekday = scale.startsWith("w");
          const names = weekday ? DAYS : MONTHS;
          const boxes = weekday ? dayBoxes : monthBoxes;
          const index = (t) => (/^\d+$/.test(t) ? Number(t) - 1 : names.indexOf(t.slice(0, weekday ? 2 : 3)));
          for (const item of items) {
            const [a, b = a] = item.toLowerCase().split("-");
            const lo = index(a), hi = index(b);
            if (lo < 0 || hi < 0 || lo >= names.length || hi >= names.length) return false;
            for (let i = lo; ; i = (i + 1) % names.length) { boxes[i].firstChild.checked = true; if (i === hi) break; }
          }
        } else if (scale === "md" || scale === "mday") {
          mdays.value = values.trim();
        } else {
          return false;
        }
      }
      return true;
    }

    const replace = h("button", {type: "button", class: "secondary", id: id("replace")}, "Use this period");
    const orButton = h("button", {type: "button", class: "secondary", id: id("or")}, "Add as alternative (OR)");
    replace.addEventListener("click", () => { input.value = build(); onChange(); });
    orButton.addEventListener("click", () => {
      const part = build();
      input.value = input.value.trim() ? `${input.value.trim()}, ${part}` : part;
      onChange();
    });
    const fits = read(input.value);
    return h("details", {class: "builder"},
      h("summary", {id: id("open")}, "Period builder"),
      h("p", {class: "help"}, fits ? "The builder shows the period above." :
        "This period has several alternatives or scales the builder does not show; edit it as text, or build a new one."),
      h("div", {class: "row2"}, field("From", from), field("Until", until)),
      h("fieldset", {}, h("legend", {}, "Days of the week (none: any day)"), dayBoxes),
      field("Days of the month", mdays, "Numbers or ranges; empty: any."),
      h("fieldset", {}, h("legend", {}, "Months (none: any month)"), monthBoxes),
      h("div", {class: "actions"}, replace, orButton));
  }

  function describer(input, output) {
    let timer = null;
    const run = async () => {
      try {
        const words = await api("GET", `${AA}/period?text=${enc(input.value)}`);
        output.textContent = words.description;
        output.classList.remove("error-text");
        input.setAttribute("aria-invalid", "false");
      } catch (error) {
        output.textContent = error.message;
        output.classList.add("error-text");
        input.setAttribute("aria-invalid", "true");
      }
    };
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 250); });
    run();
    return run;
  }

  function eventRow(menu, event, data, names) {
    const current = menu.events[event] || {action: "default"};
    const action = h("select", {name: `action-${event}`, "aria-label": `Action for ${event}`},
      data.actions.map((a) => h("option", {value: a, selected: a === current.action}, ACTION_LABEL[a] || a)));
    const target = h("input", {name: `target-${event}`, value: current.target || "", list: `targets-${menu.name}`,
                               "aria-label": `Target for ${event}`, size: 12});
    const digits = h("input", {name: `digits-${event}`, type: "number", min: 1, max: 15,
                               value: current.max_digits || "", placeholder: "max digits",
                               "aria-label": `Maximum digits for ${event}`});
    const before = h("input", {type: "checkbox", name: `before-${event}`, checked: Boolean(current.play_before),
                               "aria-label": `Play a prompt before the action of ${event}`});
    const refresh = () => {
      const a = action.value;
      target.hidden = !["transfer", "transfer_e164", "transfer_voicemail", "menu", "directory", "queue"].includes(a);
      target.placeholder = {transfer: "number", transfer_e164: "16045551234", transfer_voicemail: "account (own)",
                            menu: names.menus.join(" / "), directory: "account (own)", queue: names.queues.join(" / ")}[a] || "";
      target.setAttribute("list", a === "menu" ? `menus-${menu.name}` : a === "queue" ? `queues-${menu.name}` : "");
      digits.hidden = a !== "transfer_extension";
    };
    action.addEventListener("change", refresh);
    refresh();
    return h("tr", {dataset: {event}},
      h("th", {scope: "row"}, EVENT_LABEL[event] || `Key ${event}`),
      h("td", {}, action), h("td", {}, target, digits), h("td", {}, before));
  }

  function collectEvents(form, data) {
    const events = {};
    for (const event of data.events) {
      const action = form.querySelector(`[name="action-${CSS.escape(event)}"]`).value;
      const target = form.querySelector(`[name="target-${CSS.escape(event)}"]`);
      const digits = form.querySelector(`[name="digits-${CSS.escape(event)}"]`);
      const before = form.querySelector(`[name="before-${CSS.escape(event)}"]`).checked;
      const entry = {action};
      if (!target.hidden && target.value.trim()) entry.target = target.value.trim();
      if (!digits.hidden && digits.value) entry.max_digits = Number(digits.value);
      if (before) entry.play_before = true;
      events[event] = entry;
    }
    return events;
  }

  function promptList(menu) {
    return h("div", {class: "prompts"}, h("h3", {}, "Prompts"), Object.keys(PROMPT_LABEL).map((kind) => {
      const path = `${AA}/menus/${enc(menu.name)}/prompts/${kind}`;
      const file = h("input", {type: "file", accept: "audio/*", id: `prompt-${menu.name.replace(/\W/g, "_")}-${kind}`,
                               "aria-label": `Upload ${PROMPT_LABEL[kind]} prompt for ${menu.name}`});
      file.addEventListener("change", async () => {
        try { await api("PUT", path, file.files[0]); say(`${PROMPT_LABEL[kind]} prompt of ${menu.name} saved.`); attendantView(); }
        catch (error) { fail(error); }
      });
      const recorded = menu.prompts.includes(kind);
      return h("div", {class: "prompt-row"}, h("strong", {}, PROMPT_LABEL[kind]), " ",
        recorded ? h("audio", {controls: true, preload: "none", src: path, "aria-label": `${kind} prompt`})
          : h("span", {class: "help"}, "system prompt"), file);
    }));
  }

  function menuCard(menu, data, names) {
    const safe = menu.name.replace(/\W/g, "_");
    const nameInput = h("input", {name: "name", value: menu.name, id: `menu-name-${safe}`, disabled: menu.name === "ROOT"});
    const period = h("input", {name: "period", value: menu.period, id: `period-${safe}`, spellcheck: "false",
                               autocomplete: "off", placeholder: "empty: always"});
    const words = h("pre", {class: "period-words", id: `period-words-${safe}`, "aria-live": "polite"});
    const describe = describer(period, words);
    const table = h("table", {class: "events"},
      h("thead", {}, h("tr", {}, ["Event", "Action", "Target", "Prompt first"].map((c) => h("th", {scope: "col"}, c)))),
      h("tbody", {}, data.events.map((event) => eventRow(menu, event, data, names))));
    const form = h("form", {class: "card menu", id: `menu-${safe}`, dataset: {menu: menu.name}},
      h("h2", {}, menu.name === "ROOT" ? "ROOT (where every call starts)" : `Menu ${menu.name}`),
      menu.name === "ROOT" ? null : field("Name", nameInput),
      field("Active period", period, "The guide's syntax, e.g. hr{8am-4pm} wd{mo-fr}; empty: always; none: never."),
      words,
      periodBuilder(menu.name, period, describe),
      h("datalist", {id: `menus-${menu.name}`}, names.menus.map((n) => h("option", {value: n}))),
      h("datalist", {id: `queues-${menu.name}`}, names.queues.map((n) => h("option", {value: n}))),
      h("h3", {}, "Events"), h("div", {class: "table-wrap"}, table),
      h("div", {class: "actions"}, h("button", {type: "submit", id: `save-${safe}`}, `Save ${menu.name}`),
        menu.name === "ROOT" ? null : h("button", {type: "button", class: "danger", id: `remove-${safe}`,
          onclick: async () => {
            if (!window.confirm(`Remove menu ${menu.name}?`)) return;
            try { await api("DELETE", `${AA}/menus/${enc(menu.name)}`); say(`Menu ${menu.name} removed.`); attendantView(); }
            catch (error) { fail(error); }
          }}, "Remove menu")),
      promptList(menu));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {period: period.value, events: collectEvents(form, data)};
      if (menu.name !== "ROOT" && nameInput.value.trim() !== menu.name) body.name = nameInput.value.trim();
      try {
        const saved = await api("PATCH", `${AA}/menus/${enc(menu.name)}`, body);
        say(`Menu ${saved.name} saved.`);
        attendantView();
      } catch (error) { fail(error); }
    });
    return form;
  }

  function queueSection(data) {
    const form = h("form", {class: "card", id: "new-queue"}, h("h3", {}, "New queue"), h("div", {class: "row2"},
      field("Name", h("input", {name: "name", required: true})),
      field("Destination", h("input", {name: "destination", required: true, inputmode: "tel"}), "The number agents answer."),
      field("Calls connected at once", h("input", {name: "max_connected", type: "number", min: 1, value: 1})),
      field("Average call (seconds)", h("input", {name: "average_seconds", type: "number", min: 1, value: 180}),
            "For the wait callers are told.")),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Add queue")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const v = Portaum.formValues(form);
      try {
        await api("POST", `${AA}/queues`, {name: v.name, destination: v.destination,
          max_connected: Number(v.max_connected), average_seconds: Number(v.average_seconds)});
        say(`Queue ${v.name} added.`); attendantView();
      } catch (error) { fail(error); }
    });
    const rows = data.queues.map((q) => h("tr", {}, h("td", {}, q.name), h("td", {}, q.destination),
      h("td", {}, q.max_connected), h("td", {}, `${q.average_seconds} s`), h("td", {}, q.connected),
      h("td", {}, h("button", {type: "button", class: "danger", onclick: async () => {
        try { await api("DELETE", `${AA}/queues/${enc(q.name)}`); say("Queue removed."); attendantView(); }
        catch (error) { fail(error); }
      }}, "Remove"))));
    return h("section", {"aria-labelledby": "queues-title"}, h("h2", {id: "queues-title"}, "Call queues"),
      rows.length ? h("div", {class: "table-wrap"}, h("table", {},
        h("thead", {}, h("tr", {}, ["Queue", "Destination", "At once", "Average", "Connected now", ""].map((c) => h("th", {scope: "col"}, c)))),
        h("tbody", {}, rows))) : h("p", {class: "help"}, "No queues."), form);
  }

  function directorySection(data) {
    const form = h("form", {class: "card", id: "new-entry"}, h("h3", {}, "New directory entry"), h("div", {class: "row2"},
      field("Extension", h("input", {name: "extension", required: true, inputmode: "numeric"})),
      field("First name", h("input", {name: "first_name"})),
      field("Last name", h("input", {name: "last_name", required: true}), "Callers key its first three letters.")),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Add entry"),
        h("button", {type: "button", class: "secondary", onclick: async () => {
          try { const r = await api("POST", `${AA}/directory/import`); say(`${r.added.length} entries added.`); attendantView(); }
          catch (error) { fail(error); }
        }}, "Add my colleagues")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try { await api("POST", `${AA}/directory`, Portaum.formValues(form)); say("Entry added."); attendantView(); }
      catch (error) { fail(error); }
    });
    const hide = h("input", {type: "checkbox", id: "hide-extensions", checked: data.hide_extensions});
    hide.addEventListener("change", () => api("PUT", `${AA}/directory-settings`, {hide_extensions: hide.checked})
      .then(() => say("Saved."), fail));
    const rows = data.directory.map((e) => {
      const path = `${AA}/directory/${enc(e.extension)}`;
      const file = h("input", {type: "file", accept: "audio/*", "aria-label": `Name prompt for ${e.extension}`});
      file.addEventListener("change", async () => {
        try { await api("PUT", `${path}/name`, file.files[0]); say("Name saved."); attendantView(); } catch (error) { fail(error); }
      });
      const excluded = h("input", {type: "checkbox", checked: e.excluded, "aria-label": `Exclude ${e.extension}`});
      excluded.addEventListener("change", () => api("PATCH", path, {excluded: excluded.checked}).then(() => say("Saved."), fail));
      return h("tr", {}, h("td", {}, e.extension), h("td", {}, `${e.first_name} ${e.last_name}`.trim()),
        h("td", {}, e.name_recorded ? h("audio", {controls: true, preload: "none", src: `${path}/name`}) : "", file),
        h("td", {}, excluded),
        h("td", {}, h("button", {type: "button", class: "danger", onclick: async () => {
          try { await api("DELETE", path); say("Entry removed."); attendantView(); } catch (error) { fail(error); }
        }}, "Remove")));
    });
    return h("section", {"aria-labelledby": "directory-title"}, h("h2", {id: "directory-title"}, "Dial-by-name directory"),
      h("label", {class: "check"}, hide, " Read out sequence numbers instead of extensions"),
      rows.length ? h("div", {class: "table-wrap"}, h("table", {},
        h("thead", {}, h("tr", {}, ["Extension", "Name", "Recorded name", "Excluded", ""].map((c) => h("th", {scope: "col"}, c)))),
        h("tbody", {}, rows))) : h("p", {class: "help"}, "No entries."), form);
  }

  async function attendantView() {
    const main = document.getElementById("main");
    const data = await api("GET", AA);
    const names = {menus: data.menus.map((m) => m.name), queues: data.queues.map((q) => q.name)};
    const add = h("form", {class: "card", id: "new-menu"}, h("h3", {}, "New menu"), h("div", {class: "row2"},
      field("Name", h("input", {name: "name", required: true, id: "new-menu-name"})),
      field("Active period", h("input", {name: "period", id: "new-menu-period", placeholder: "empty: always"}))),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Add menu")));
    add.addEventListener("submit", async (event) => {
      event.preventDefault();
      try { const m = await api("POST", `${AA}/menus`, Portaum.formValues(add)); say(`Menu ${m.name} added.`); attendantView(); }
      catch (error) { fail(error); }
    });
    show(main, h("h1", {}, "Auto attendant"),
      h("p", {class: "help"}, "Callers to your auto attendant number start in ROOT. Outside its active period a menu does what its “Menu not active” event says."),
      data.menus.map((menu) => menuCard(menu, data, names)), add, queueSection(data), directorySection(data));
  }

  Portaum.attendantView = attendantView;
})();
