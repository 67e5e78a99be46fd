/* Subscriber self-care: messages, compose, greetings, settings. */
"use strict";

(() => {
  const {h, api, say, fail, clearStatus, enc, show, field, formValues, markNav} = Portaum;
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  let me = null;
  let folders = [];

  Portaum.onSignedOut = () => { me = null; nav.hidden = true; signInView(); };

  function route() {
    clearStatus();
    if (!me) return signInView();
    const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
    const [view, ...rest] = hash.split("/");
    markNav(view || "folder");
    const go = {
      "": () => folderView("INBOX"),
      folder: () => folderView(rest.join("/") || "INBOX"),
      message: () => messageView(rest.slice(0, -1).join("/"), Number(rest[rest.length - 1])),
      compose: () => composeView(new URLSearchParams(location.hash.split("?")[1] || "")),
      settings: settingsView,
      greetings: greetingsView,
      attendant: () => Portaum.attendantView(),
    }[view.split("?")[0]] || (() => folderView("INBOX"));
    Promise.resolve(go()).catch(fail).finally(() => main.focus());
  }

  /* --- sign-in --------------------------------------------------------- */

  function signInView() {
    const login = h("input", {name: "login", autocomplete: "username", required: true,
                              autocapitalize: "none", spellcheck: "false"});
    const password = h("input", {name: "password", type: "password", autocomplete: "current-password",
                                 required: true});
    const form = h("form", {class: "card login", id: "sign-in"},
      h("h1", {}, "Sign in"),
      field("Account number or e-mail", login),
      field("Password", password),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Sign in")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        me = await api("POST", "/api/v1/session", {login: login.value, password: password.value},
                       {quiet401: true});
        Portaum.setZone(me.timezone);
        nav.hidden = false;
        if (!location.hash || location.hash === "#/") location.hash = "#/folder/INBOX";
        else route();
      } catch (error) {
        password.value = "";
        fail(error);
      }
    });
    show(main, form);
    login.focus();
  }

  document.getElementById("sign-out").addEventListener("click", async () => {
    try { await api("DELETE", "/api/v1/session"); } catch (e) { /* signed out anyway */ }
    me = null; nav.hidden = true; location.hash = ""; signInView();
  });

  /* --- mailbox ----------------------------------------------------------- */

  const KIND_LABEL = {voice: "Voice", fax: "Fax", email: "Mail"};

  function folderList(current, data) {
    return h("nav", {"aria-label": "Folders"},
      h("ul", {class: "folders"}, data.folders.map((f) => h("li", {},
        h("a", {href: `#/folder/${enc(f.name)}`, "aria-current": f.name === current ? "page" : null},
          h("span", {}, f.name),
          f.unseen ? h("span", {class: "count", "aria-label": `${f.unseen} new`}, f.unseen) : null)))),
      h("p", {class: "quota"}, `${Portaum.bytes(data.used_bytes)} of ${Portaum.bytes(data.quota_bytes)} used`));
  }

  function messageRow(folder, m) {
    const detail = m.kind === "voice" ? Portaum.duration(m.duration)
      : m.kind === "fax" && m.pages ? `${m.pages} page${m.pages === 1 ? "" : "s"}` : "";
    return h("li", {class: m.seen ? "seen" : "new", dataset: {uid: m.uid, kind: m.kind}},
      h("a", {href: `#/message/${enc(folder)}/${m.uid}`},
        h("span", {class: `kind ${m.kind}`, "aria-hidden": "true"}, KIND_LABEL[m.kind]),
        h("span", {class: "who"},
          h("span", {class: "visually-hidden"}, `${m.seen ? "" : "New "}${KIND_LABEL[m.kind]} from `),
          m.from || "unknown"),
        h("span", {class: "when"}, Portaum.when(m.date), detail ? ` · ${detail}` : ""),
        h("span", {class: "subject"}, m.urgent ? "Urgent · " : "", m.subject || "(no subject)")));
  }

  async function folderView(folder) {
    const [data, listing] = await Promise.all([
      api("GET", "/api/v1/folders"),
      api("GET", `/api/v1/folders/${enc(folder)}/messages`)]);
    folders = data.folders.map((f) => f.name);
    const list = h("ul", {class: "messages", id: "messages", "aria-label": `Messages in ${folder}`},
      listing.messages.map((m) => messageRow(folder, m)));
    const more = h("button", {type: "button", class: "secondary", hidden: !listing.more}, "Older messages");
    let before = listing.next_before;
    more.addEventListener("click", async () => {
      const page = await api("GET", `/api/v1/folders/${enc(folder)}/messages?before=${before}`);
      list.append(...page.messages.map((m) => messageRow(folder, m)));
      before = page.next_before;
      more.hidden = !page.more;
    });
    show(main, h("div", {class: "mailbox"}, folderList(folder, data),
      h("section", {"aria-labelledby": "folder-title"},
        h("h1", {id: "folder-title"}, folder),
        listing.messages.length ? list : h("p", {class: "empty card"}, "No messages here."),
        h("div", {class: "actions"}, more))));
  }

  async function messageView(folder, uid) {
    const base = `/api/v1/folders/${enc(folder)}/messages/${uid}`;
    const m = await api("GET", base);
    if (!folders.length) folders = (await api("GET", "/api/v1/folders")).folders.map((f) => f.name);
    const body = [];
    if (m.kind === "voice") {
      const audio = h("audio", {controls: true, preload: "metadata", src: `${base}/audio`,
                                id: "voice-player", "aria-label": "Voice message"});
      audio.addEventListener("play", () => { if (!m.seen) markSeen(true); }, {once: true});
      body.push(audio);
    } else if (m.kind === "fax") {
      body.push(h("p", {}, h("a", {class: "button", href: `${base}/document`, target: "_blank",
                                   rel: "noopener", id: "fax-pdf"}, "Open as PDF")));
      const pages = h("div", {class: "pages", id: "fax-pages"});
      for (let page = 1; page <= (m.pages || 0); page += 1) {
        pages.append(h("img", {src: `${base}/pages/${page}`, alt: `Fax page ${page} of ${m.pages}`,
                               loading: "lazy"}));
      }
      if (!m.pages) pages.append(h("p", {class: "notice"}, "No page preview; open the PDF."));
      body.push(pages);
    }
    if (m.kind === "email" && m.has_html) {
      const frame = h("iframe", {class: "mailhtml", sandbox: "allow-popups allow-popups-to-escape-sandbox",
                                 title: "Message", src: `${base}/html`, referrerpolicy: "no-referrer",
                                 id: "mail-html"});
      const images = h("button", {type: "button", class: "secondary"}, "Show remote images");
      images.addEventListener("click", () => { frame.src = `${base}/html?images=1`; images.disabled = true; });
      const plain = h("pre", {class: "mailtext", hidden: true}, m.text);
      const toggle = h("button", {type: "button", class: "secondary"}, "Plain text");
      toggle.addEventListener("click", () => {
        plain.hidden = !plain.hidden; frame.hidden = !frame.hidden;
        toggle.textContent = plain.hidden ? "Plain text" : "Formatted";
      });
      body.push(h("p", {class: "notice"}, "Remote images are blocked to protect your privacy. ", images, " ", toggle),
                frame, plain);
    } else if (m.kind === "email" || m.text) {
      body.push(h("pre", {class: "mailtext", id: "mail-text"}, m.text));
    }
    if (m.attachments.length) {
      body.push(h("h2", {}, "Attachments"), h("ul", {class: "attachments"}, m.attachments.map((a) =>
        h("li", {}, h("a", {href: `${base}/parts/${a.index}?download=1`},
          a.filename || `part ${a.index}`), ` (${a.content_type}, ${Portaum.bytes(a.size)})`))));
    }
    const seenButton = h("button", {type: "button", class: "secondary", id: "toggle-seen"},
                         m.seen ? "Mark as new" : "Mark as read");
    async function markSeen(value) {
      const row = await api("PATCH", base, {seen: value});
      m.seen = row.seen;
      seenButton.textContent = m.seen ? "Mark as new" : "Mark as read";
    }
    seenButton.addEventListener("click", () => markSeen(!m.seen).then(
      () => say(m.seen ? "Marked as read." : "Marked as new."), fail));
    const moveTo = h("select", {id: "move-to", "aria-label": "Move to folder"},
      folders.filter((f) => f !== folder).map((f) => h("option", {value: f}, f)));
    const moveButton = h("button", {type: "button", class: "secondary"}, "Move");
    moveButton.addEventListener("click", async () => {
      try {
        await api("POST", `${base}/move`, {to: moveTo.value});
        say(`Moved to ${moveTo.value}.`);
        location.hash = `#/folder/${enc(folder)}`;
      } catch (error) { fail(error); }
    });
    const deleteButton = h("button", {type: "button", class: "danger", id: "delete"}, "Delete");
    deleteButton.addEventListener("click", async () => {
      try {
        const result = await api("DELETE", base);
        say(result.deleted ? "Deleted." : "Moved to Trash.");
        location.hash = `#/folder/${enc(folder)}`;
      } catch (error) { fail(error); }
    });
    const replyLink = m.kind === "email" ? h("a", {class: "button secondary",
      href: `#/compose?reply=${enc(folder)}/${uid}`}, "Reply") : null;
    const forwardLink = h("a", {class: "button secondary", id: "forward",
      href: `#/compose?forward=${enc(folder)}/${uid}`}, "Forward");
    show(main, h("article", {class: "card", "aria-labelledby": "message-title", dataset: {kind: m.kind}},
      h("p", {}, h("a", {href: `#/folder/${enc(folder)}`}, `← ${folder}`)),
      h("h1", {id: "message-title"}, m.subject || "(no subject)"),
      h("dl", {class: "meta"},
        h("dt", {}, "From"), h("dd", {}, m.from_address && m.from !== m.from_address
          ? `${m.from} <${m.from_address}>` : m.from),
        h("dt", {}, "To"), h("dd", {}, m.to),
        m.cc ? [h("dt", {}, "Cc"), h("dd", {}, m.cc)] : null,
        h("dt", {}, "Date"), h("dd", {}, Portaum.fullDate(m.date)),
        m.kind === "voice" ? [h("dt", {}, "Length"), h("dd", {}, Portaum.duration(m.duration))] : null,
        m.kind === "fax" ? [h("dt", {}, "Pages"), h("dd", {}, m.pages)] : null),
      body,
      h("div", {class: "actions"}, replyLink, forwardLink, seenButton, moveTo, moveButton,
        h("a", {class: "button secondary", href: `${base}/raw`}, "Download"), deleteButton)));
    if (!m.seen && m.kind !== "voice") markSeen(true).catch(fail);
  }

  /* --- compose --------------------------------------------------------- */

  function addresses(text) {
    return text.split(/[,;\n]/).map((s) => s.trim()).filter(Boolean);
  }

  async function composeView(params) {
    const to = h("input", {name: "to", id: "compose-to", autocomplete: "email", required: true,
                           inputmode: "email"});
    const cc = h("input", {name: "cc", id: "compose-cc", inputmode: "email"});
    const subject = h("input", {name: "subject", id: "compose-subject"});
    const text = h("textarea", {name: "text", id: "compose-text"});
    const extra = {};
    let title = "New message";
    for (const mode of ["reply", "forward"]) {
      const ref = params.get(mode);
      if (!ref) continue;
      const cut = ref.lastIndexOf("/");
      const folder = ref.slice(0, cut), uid = Number(ref.slice(cut + 1));
      const original = await api("GET", `/api/v1/folders/${enc(folder)}/messages/${uid}`);
      extra[`${mode}_folder`] = folder;
      extra[`${mode}_uid`] = uid;
      if (mode === "reply") {
        title = "Reply";
        to.value = original.reply_to || original.from_address;
        subject.value = /^re:/i.test(original.subject) ? original.subject : `Re: ${original.subject}`;
        text.value = `\n\n${original.from} wrote:\n` + original.text.split("\n").map((l) => `> ${l}`).join("\n");
      } else {
        title = original.kind === "voice" ? "Forward voice message" : "Forward";
        subject.value = `Fwd: ${original.subject}`;
        text.value = original.attachments.length
          ? `\n\n(${original.attachments.length} attachment${original.attachments.length === 1 ? "" : "s"} forwarded)`
          : `\n\n---- Forwarded message ----\n${original.text}`;
      }
    }
    const form = h("form", {class: "card", id: "compose"},
      h("h1", {}, title),
      field("To", to, "Separate several addresses with commas."),
      field("Cc", cc),
      field("Subject", subject),
      field("Message", text),
      h("div", {class: "actions"}, h("button", {type: "submit", id: "send"}, "Send")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const result = await api("POST", "/api/v1/messages", {
          to: addresses(to.value), cc: addresses(cc.value), subject: subject.value, text: text.value, ...extra});
        const refused = Object.keys(result.refused || {});
        say(refused.length ? `Sent, but not delivered to ${refused.join(", ")}.` : "Message sent.", refused.length > 0);
        location.hash = "#/folder/Sent";
      } catch (error) {
        fail(error);
        button.disabled = false;
      }
    });
    show(main, form);
  }

  /* --- settings ---------------------------------------------------------- */

  const ZONES = (typeof Intl.supportedValuesOf === "function") ? Intl.supportedValuesOf("timeZone") : [];

  function choice(name, value, options, labels) {
    return h("select", {name, id: `set-${name}`}, options.map((o) =>
      h("option", {value: o, selected: o === value}, (labels && labels[o]) || o)));
  }

  async function settingsView() {
    const s = await api("GET", "/api/v1/settings");
    const zone = h("input", {name: "timezone", id: "set-timezone", value: s.timezone, list: "zones",
                             autocomplete: "off"});
    const zones = h("datalist", {id: "zones"}, ZONES.map((z) => h("option", {value: z})));
    const forwardAddress = h("input", {name: "forward_address", id: "set-forward_address", type: "email",
                                       value: s.forward_address || ""});
    const prefs = h("form", {class: "card", id: "settings"},
      h("h1", {}, "Settings"),
      h("div", {class: "row2"},
        field("E-mail address", h("input", {name: "email", type: "email", value: s.email || "",
                                            id: "set-email"}), "Also lets you sign in with it."),
        field("Language", choice("language", s.language, s.choices.language,
                                 {en: "English", es: "Español"})),
        field("Time zone", zone, "For message dates and times, e.g. America/New_York."),
        field("Voice message format", choice("attachment_format", s.attachment_format,
          s.choices.attachment_format, {wav: "WAV", mp3: "MP3 (smaller, plays on more phones)"})),
        field("Fax format", choice("fax_format", s.fax_format, s.choices.fax_format,
                                   {pdf: "PDF", tiff: "TIFF"})),
        field("Forward new messages", choice("forward_mode", s.forward_mode, s.choices.forward_mode,
          {none: "Do not forward", copy: "Send a full copy", notify: "Send a short notification"})),
        field("Forward to", forwardAddress, "The address copies or notifications go to.")),
      zones,
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Save settings")));
    prefs.addEventListener("submit", async (event) => {
      event.preventDefault();
      const values = formValues(prefs);
      for (const key of ["email", "forward_address"]) if (values[key] === "") values[key] = null;
      try {
        const saved = await api("PATCH", "/api/v1/settings", values);
        Portaum.setZone(saved.timezone);
        say("Settings saved.");
      } catch (error) { fail(error); }
    });
    const current = h("input", {name: "current_password", type: "password", autocomplete: "current-password",
                                required: true});
    const pin = h("input", {name: "pin", inputmode: "numeric", autocomplete: "off", pattern: "[0-9]{4,10}"});
    const password = h("input", {name: "password", type: "password", autocomplete: "new-password",
                                 minlength: 6});
    const secrets = h("form", {class: "card", id: "secrets"},
      h("h2", {}, "PIN and password"),
      field("Current password", current),
      h("div", {class: "row2"},
        field("New voicemail PIN", pin, "4 to 10 digits. Leave empty to keep it."),
        field("New password", password, "At least 6 characters. Leave empty to keep it.")),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Change")));
    secrets.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {current_password: current.value};
      if (pin.value) body.pin = pin.value;
      if (password.value) body.password = password.value;
      try {
        await api("POST", "/api/v1/settings/secrets", body);
        say("Changed.");
        secrets.reset();
      } catch (error) { fail(error); }
    });
    show(main, prefs, secrets);
  }

  /* --- greetings ---------------------------------------------------------- */

  const GREETING_TEXT = {
    unavailable: ["Unavailable greeting", "Played when you do not answer."],
    busy: ["Busy greeting", "Played when you are on another call."],
    name: ["Your name", "Said inside the system greeting."],
  };

  /* Records from the microphone as 16-bit WAV (converted on upload like any file). */
  async function record(button, done) {
    const stream = await navigator.mediaDevices.getUserMedia({audio: true});
    const context = new AudioContext();
    const source = context.createMediaStreamSource(stream);
    const processor = context.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    processor.onaudioprocess = (event) => chunks.push(new Float32Array(event.inputBuffer.getChannelData(0)));
    source.connect(processor);
    processor.connect(context.destination);
    return () => {
      processor.disconnect(); source.disconnect();
      stream.getTracks().forEach((t) => t.stop());
      const rate = context.sampleRate;
      context.close();
      done(wav(chunks, rate));
    };
  }

  function wav(chunks, rate) {
    const length = chunks.reduce((n, c) => n + c.length, 0);
    const view = new DataView(new ArrayBuffer(44 + length * 2));
    const text = (offset, s) => { for (let i = 0; i < s.length; i += 1) view.setUint8(offset + i, s.charCodeAt(i)); };
    text(0, "RIFF"); view.setUint32(4, 36 + length * 2, true); text(8, "WAVE"); text(12, "fmt ");
    view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
    view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
    view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, length * 2, true);
    let offset = 44;
    for (const chunk of chunks) {
      for (let i = 0; i < chunk.length; i += 1) {
        view.setInt16(offset, Math.max(-1, Math.min(1, chunk[i])) * 32767, true);
        offset += 2;
      }
    }
    return new Blob([view.buffer], {type: "audio/wav"});
  }

  async function greetingsView() {
    const data = await api("GET", "/api/v1/greetings");
    const upload = async (kind, blob) => {
      try {
        say("Converting…");
        await api("PUT", `/api/v1/greetings/${kind}`, blob);
        say(`${GREETING_TEXT[kind][0]} saved.`);
        greetingsView().catch(fail);
      } catch (error) { fail(error); }
    };
    const cards = data.greetings.map((g) => {
      const [title, help] = GREETING_TEXT[g.kind];
      const file = h("input", {type: "file", accept: "audio/*,.wav,.mp3,.ogg,.aiff,.au,.flac,.gsm",
                               id: `upload-${g.kind}`});
      file.addEventListener("change", () => { if (file.files[0]) upload(g.kind, file.files[0]); });
      const recordButton = h("button", {type: "button", class: "secondary", id: `record-${g.kind}`}, "Record");
      let stop = null;
      recordButton.addEventListener("click", async () => {
        if (stop) { stop(); stop = null; recordButton.textContent = "Record"; return; }
        try {
          stop = await record(recordButton, (blob) => upload(g.kind, blob));
          recordButton.textContent = "Stop recording";
          say("Recording… press Stop when done.");
        } catch (error) { fail(new Error(`The microphone is not available: ${error.message}`)); }
      });
      const remove = h("button", {type: "button", class: "danger", hidden: !g.present}, "Remove");
      remove.addEventListener("click", async () => {
        try { await api("DELETE", `/api/v1/greetings/${g.kind}`); say("Removed."); greetingsView().catch(fail); }
        catch (error) { fail(error); }
      });
      return h("section", {class: "card greeting", id: `greeting-${g.kind}`, dataset: {present: g.present}},
        h("h2", {}, title), h("p", {class: "help"}, help),
        g.present ? [h("p", {}, `Recorded, ${g.seconds} s.`),
                     h("audio", {controls: true, preload: "metadata", "aria-label": title,
                                 src: `/api/v1/greetings/${g.kind}?v=${Date.now()}`})]
          : h("p", {}, "Not recorded."),
        field("Upload an audio file", file, "WAV, MP3, OGG, AIFF, AU, FLAC or GSM; converted for the phone."),
        h("div", {class: "actions"}, recordButton, remove));
    });
    const chooser = h("form", {class: "card", id: "greeting-choice"},
      h("h1", {}, "Greetings"),
      field("Callers hear", choice("greeting", data.greeting, ["personal", "name", "system"], {
        personal: "My personal greeting", name: "The system greeting with my name",
        system: "The system greeting with my number"})),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Save")));
    chooser.addEventListener("submit", async (event) => {
      event.preventDefault();
      try { await api("PATCH", "/api/v1/settings", formValues(chooser)); say("Saved."); }
      catch (error) { fail(error); }
    });
    show(main, chooser, ...cards);
  }

  /* --- start ----------------------------------------------------------------- */

  window.addEventListener("hashchange", route);
  api("GET", "/api/v1/session", undefined, {quiet401: true})
    .then((session) => { me = session; Portaum.setZone(me.timezone); nav.hidden = false; route(); })
    .catch(() => signInView());
})();
