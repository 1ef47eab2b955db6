// botfleet sandbox: chat with the emulated bots as a Telegram user.
//
// Talks only to the emulator's control API (/sandbox/...). Everything a bot or a user wrote reaches
// the DOM as text nodes (textContent / append(string)); formatting comes from Telegram entities,
// mapped to a short list of elements, and links only keep http(s)/tg/mailto URLs.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const DEFAULT_PHONE = "+79990000000";
  const POLL_SECONDS = 25;
  // The languages a person can give a user's Telegram app; bots get it as language_code.
  const LANGUAGES = [
    ["en", "English"],
    ["ru", "Русский"],
  ];
  // A tab opened from a chat's link (a checkout page) that comes back to the page without a chat
  // in its address (the payment's return URL) opens that chat again, for this long.
  const RETURN_KEY = "botfleet-sandbox-return";
  const RETURN_FOR_MS = 60 * 60 * 1000;

  const state = {
    users: [],
    bots: [],
    chats: [],
    userId: null,
    botId: null,
    chat: null, // the open chat as the control API shows it
    rendered: new Map(), // message_id -> {key, el}
    lastMessageId: 0,
    stickToBottom: true, // the person is reading the newest messages: keep them in view
  };

  // ----- control API ------------------------------------------------------------------------

  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch("/sandbox" + path, init);
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.error || `${resp.status} ${resp.statusText}`);
    return data;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const chatPath = () => `/chats/${state.botId}/${state.userId}`;

  function setConnected(ok) {
    const conn = $("conn");
    conn.classList.toggle("down", !ok);
    conn.title = ok ? "Connected to the emulator" : "The emulator does not answer; retrying…";
  }

  // ----- formatting: Telegram entities -> DOM ----------------------------------------------

  const SIMPLE_TAGS = {
    bold: "b",
    italic: "i",
    underline: "u",
    strikethrough: "s",
    code: "code",
    spoiler: "tg-spoiler",
    blockquote: "blockquote",
    expandable_blockquote: "blockquote",
  };
  const SAFE_PROTOCOLS = new Set(["http:", "https:", "tg:", "mailto:"]);

  /** The URL if it is a link a user may follow, else null (no javascript:, data:, ...). */
  function safeUrl(raw) {
    if (typeof raw !== "string" || raw === "") return null;
    try {
      const url = new URL(raw);
      return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
    } catch {
      return null;
    }
  }

  function link(href, external = true) {
    const a = document.createElement("a");
    a.href = href;
    if (external) {
      a.target = "_blank";
      a.rel = "noopener noreferrer";
    }
    return a;
  }

  /** The element for one entity (its text is appended by the caller). */
  function entityElement(entity, text) {
    const tag = SIMPLE_TAGS[entity.type];
    if (tag) return document.createElement(tag);
    if (entity.type === "pre") {
      const pre = document.createElement("pre");
      if (typeof entity.language === "string") pre.dataset.language = entity.language;
      return pre;
    }
    if (entity.type === "text_link" || entity.type === "url") {
      const href = safeUrl(entity.type === "url" ? text : entity.url);
      if (href) return link(href);
      const span = document.createElement("span");
      span.className = "bad-link";
      span.title = "link removed: not an http(s) URL";
      return span;
    }
    if (entity.type === "bot_command") {
      const a = link("#", false);
      a.className = "command";
      a.addEventListener("click", (event) => {
        event.preventDefault();
        sendText(text.split("@")[0]);
      });
      return a;
    }
    const span = document.createElement("span");
    span.className = "entity-" + String(entity.type).replace(/[^a-z_]/g, "");
    return span;
  }

  /**
   * Text plus entities (offsets in UTF-16 units, which are JavaScript string indices) as a
   * fragment. Entities nest; one that crosses its parent's end is clipped, as clients do.
   */
  function renderText(text, entities) {
    const root = { start: 0, end: text.length, entity: null, children: [] };
    const valid = (entities || []).filter(
      (e) =>
        e &&
        Number.isInteger(e.offset) &&
        Number.isInteger(e.length) &&
        e.offset >= 0 &&
        e.length > 0 &&
        e.offset < text.length,
    );
    valid.sort((a, b) => a.offset - b.offset || b.length - a.length);
    const stack = [root];
    for (const entity of valid) {
      const node = { start: entity.offset, end: entity.offset + entity.length, entity, children: [] };
      while (stack.length > 1 && stack[stack.length - 1].end <= node.start) stack.pop();
      const parent = stack[stack.length - 1];
      node.end = Math.min(node.end, parent.end);
      if (node.end <= node.start) continue;
      parent.children.push(node);
      stack.push(node);
    }
    const fragment = document.createDocumentFragment();
    appendNode(fragment, text, root);
    return fragment;
  }

  function appendNode(parent, text, node) {
    let pos = node.start;
    for (const child of node.children) {
      if (child.start > pos) parent.append(text.slice(pos, child.start));
      const el = entityElement(child.entity, text.slice(child.start, child.end));
      appendNode(el, text, child);
      parent.append(el);
      pos = child.end;
    }
    if (pos < node.end) parent.append(text.slice(pos, node.end));
  }

  // ----- messages -----------------------------------------------------------------------------

  function formatTime(unix) {
    return new Date(unix * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function formatSize(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  function div(className, text) {
    const el = document.createElement("div");
    el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function documentElement(doc) {
    const a = link(doc.download_url, false);
    a.className = "document";
    a.download = doc.file_name || "file";
    a.append(div("doc-icon", "⬇"));
    const info = div("doc-info");
    info.append(div("doc-name", doc.file_name || "file"));
    info.append(div("doc-size muted", `${formatSize(doc.file_size)} · ${doc.mime_type || ""}`));
    a.append(info);
    return a;
  }

  function formatAmount(minor, currency) {
    return `${(minor / 100).toFixed(2)} ${currency}`;
  }

  /** An invoice as Telegram shows it: title, description, total, and Pay (or Decline) until paid. */
  function invoiceElement(m) {
    const inv = m.invoice;
    const card = div("invoice");
    card.append(div("invoice-title", inv.title), div("invoice-description", inv.description));
    card.append(div("invoice-total", formatAmount(inv.total_amount, inv.currency)));
    if (inv.state === "paid") {
      card.append(div("invoice-state paid", "Paid"));
      return card;
    }
    const actions = div("invoice-actions");
    const pay = document.createElement("button");
    pay.type = "button";
    pay.className = "kb-button invoice-pay";
    pay.textContent = `Pay ${formatAmount(inv.total_amount, inv.currency)}`;
    pay.addEventListener("click", () => payInvoice(pay, m.message_id, "success"));
    const decline = document.createElement("button");
    decline.type = "button";
    decline.className = "kb-button invoice-decline";
    decline.textContent = "Decline card";
    decline.title = "The bot approves the order, then the card is declined: nothing is charged";
    decline.addEventListener("click", () => payInvoice(decline, m.message_id, "declined"));
    actions.append(pay, decline);
    card.append(actions);
    return card;
  }

  async function payInvoice(button, messageId, outcome) {
    button.classList.add("pending");
    try {
      // The bot has 10 seconds to approve the order (pre_checkout_query) before the payment fails.
      const result = await act("/pay", { message_id: messageId, outcome });
      if (!result) return;
      if (result.status === "paid") toast("Payment successful");
      else toast(`Payment failed: ${result.error_message || result.status}`, { error: true });
    } finally {
      button.classList.remove("pending");
    }
  }

  function inlineKeyboard(message) {
    const keyboard = div("inline-keyboard");
    for (const row of message.inline_keyboard || []) {
      const rowEl = div("kb-row");
      for (const button of row) rowEl.append(inlineButton(message, button));
      keyboard.append(rowEl);
    }
    return keyboard;
  }

  function inlineButton(message, button) {
    const label = String(button.text ?? "");
    const target = button.url || button.web_app?.url || button.login_url?.url;
    if (target) {
      const href = safeUrl(target);
      if (href) {
        const a = link(href);
        a.className = "kb-button url";
        a.textContent = label;
        a.addEventListener("click", rememberChat);
        return a;
      }
    }
    const el = document.createElement("button");
    el.type = "button";
    el.className = "kb-button";
    el.textContent = label;
    if (button.pay && message.invoice && message.invoice.state !== "paid") {
      el.addEventListener("click", () => payInvoice(el, message.message_id, "success"));
    } else if (typeof button.callback_data === "string") {
      el.addEventListener("click", () => pressInline(el, message.message_id, button.callback_data));
    } else {
      el.disabled = true;
      el.title = "This kind of button is not emulated";
    }
    return el;
  }

  function messageElement(m) {
    const li = document.createElement("li");
    li.className = `message from-${m.from === "bot" ? "bot" : "user"}`;
    if (m.inline_keyboard && m.inline_keyboard.length) li.classList.add("has-keyboard");
    li.dataset.messageId = String(m.message_id);
    const bubble = div("bubble");
    if (m.reply_to_message_id) {
      const quoted = state.chat?.messages.find((x) => x.message_id === m.reply_to_message_id);
      const preview = quoted ? quoted.text || quoted.caption || "message" : "deleted message";
      bubble.append(div("reply-quote", preview.slice(0, 80)));
    }
    if (m.photo) {
      const img = document.createElement("img");
      img.src = m.photo.download_url;
      img.alt = "photo";
      img.className = "photo";
      bubble.append(img);
    }
    if (m.document) bubble.append(documentElement(m.document));
    if (m.contact) {
      const name = [m.contact.first_name, m.contact.last_name].filter(Boolean).join(" ");
      const card = div("contact-card");
      card.append(div("contact-icon", "☎"), div("", `${name}\n${m.contact.phone_number}`));
      bubble.append(card);
    }
    if (m.invoice) bubble.append(invoiceElement(m));
    if (m.successful_payment) {
      const paid = m.successful_payment;
      bubble.append(div("payment-receipt", `✔ Paid ${formatAmount(paid.total_amount, paid.currency)}`));
    }
    const body = m.text ?? m.caption;
    if (body) {
      const text = div("text");
      text.append(renderText(body, m.text != null ? m.entities : m.caption_entities));
      bubble.append(text);
    }
    const meta = div("meta", (m.edited ? "edited " : "") + formatTime(m.edit_date || m.date));
    bubble.append(meta);
    li.append(bubble);
    if (m.inline_keyboard && m.inline_keyboard.length) li.append(inlineKeyboard(m));
    return li;
  }

  /** Update the list in place: only new or changed messages are rebuilt. */
  function renderMessages(messages) {
    const list = $("messages");
    const seen = new Set();
    let previous = null;
    for (const m of messages) {
      const key = JSON.stringify(m);
      let entry = state.rendered.get(m.message_id);
      if (!entry || entry.key !== key) {
        const el = messageElement(m);
        if (entry) entry.el.replaceWith(el);
        entry = { key, el };
        state.rendered.set(m.message_id, entry);
      }
      const expected = previous ? previous.nextSibling : list.firstChild;
      if (expected !== entry.el) list.insertBefore(entry.el, expected);
      previous = entry.el;
      seen.add(m.message_id);
    }
    for (const [id, entry] of state.rendered) {
      if (!seen.has(id)) {
        entry.el.remove();
        state.rendered.delete(id);
      }
    }
    const last = messages.length ? messages[messages.length - 1].message_id : 0;
    if (state.stickToBottom || last > state.lastMessageId) list.scrollTop = list.scrollHeight;
    state.lastMessageId = last;
  }

  // ----- reply keyboard, commands, header -----------------------------------------------

  function renderReplyKeyboard(markup) {
    const box = $("reply-keyboard");
    box.replaceChildren();
    const rows = markup?.keyboard || [];
    box.hidden = rows.length === 0;
    $("input").placeholder = markup?.input_field_placeholder || "Message";
    for (const row of rows) {
      const rowEl = div("kb-row");
      for (const raw of row) {
        const button = typeof raw === "string" ? { text: raw } : raw || {};
        const el = document.createElement("button");
        el.type = "button";
        el.className = "kb-button";
        el.textContent = String(button.text ?? "");
        if (button.request_contact) {
          el.classList.add("contact");
          el.addEventListener("click", askContact);
        } else {
          el.addEventListener("click", () => act("/press", { text: String(button.text ?? "") }));
        }
        rowEl.append(el);
      }
      box.append(rowEl);
    }
  }

  function botCommands(bot) {
    const entries = bot?.commands || [];
    const byDefault = entries.find((c) => c.scope?.type === "default" && !c.language_code);
    return (byDefault || entries[0])?.commands || [];
  }

  let commandsKey = "";

  function renderCommands() {
    const commands = botCommands(state.bots.find((b) => b.id === state.botId));
    const key = JSON.stringify(commands);
    if (key === commandsKey) return;
    commandsKey = key;
    const menu = $("commands");
    $("menu").hidden = commands.length === 0;
    if (commands.length === 0) menu.hidden = true;
    menu.replaceChildren();
    for (const c of commands) {
      const item = document.createElement("button");
      item.type = "button";
      item.setAttribute("role", "menuitem");
      item.append(div("command-name", "/" + c.command), div("muted", c.description || ""));
      item.addEventListener("click", () => {
        menu.hidden = true;
        sendText("/" + c.command);
      });
      menu.append(item);
    }
  }

  function renderHeader() {
    const bot = state.bots.find((b) => b.id === state.botId);
    const chat = state.chat;
    $("chat-name").textContent = bot ? bot.first_name : "";
    $("chat-avatar").textContent = bot ? (bot.first_name || "?").slice(0, 1).toUpperCase() : "";
    $("chat-avatar").hidden = !bot;
    let status = bot ? "@" + bot.username : "";
    const action = chat?.chat_actions?.[chat.chat_actions.length - 1];
    if (action && Date.now() / 1000 - action.date < 5) status = action.action.replace(/_/g, " ") + "…";
    $("chat-status").textContent = status;
    const block = $("block");
    block.hidden = !chat;
    block.textContent = chat?.blocked ? "Unblock" : "Block";
    $("blocked-note").hidden = !chat?.blocked;
  }

  function applyChat(chat) {
    state.chat = chat;
    renderHeader();
    renderMessages(chat.messages);
    renderReplyKeyboard(chat.reply_keyboard);
    // A bot never written to shows Start instead of the input, as Telegram does.
    const fresh = chat.messages.length === 0 && !chat.blocked;
    const appearing = fresh ? $("start-bar").hidden : $("composer").hidden;
    $("start-bar").hidden = !fresh;
    $("composer").hidden = fresh;
    if (appearing) (fresh ? $("start") : $("input")).focus();
    markRead();
  }

  let readSent = 0;

  /** Tell the emulator the person has seen the open chat (what the sidebar badges count). */
  async function markRead() {
    const chat = state.chat;
    if (!chat || document.visibilityState !== "visible") return;
    const last = chat.messages.length ? chat.messages[chat.messages.length - 1].message_id : 0;
    if (last <= chat.read_up_to || last <= readSent) return;
    readSent = last;
    try {
      await api("POST", `/chats/${chat.bot_id}/${chat.user_id}/read`, { message_id: last });
    } catch {
      readSent = 0; // the long poll retries on the next change
    }
  }

  /** Remember the open chat for a tab that comes back from a link (the checkout's return URL). */
  function rememberChat() {
    if (state.userId === null || state.botId === null) return;
    const chat = { user: state.userId, bot: state.botId, at: Date.now() };
    try {
      localStorage.setItem(RETURN_KEY, JSON.stringify(chat));
    } catch {
      // storage disabled: the return tab opens the first user, as before
    }
  }

  /** The chat a link was opened from, once, if it was recent. */
  function takeReturnChat() {
    try {
      const saved = JSON.parse(localStorage.getItem(RETURN_KEY) || "null");
      localStorage.removeItem(RETURN_KEY);
      if (saved && Date.now() - saved.at < RETURN_FOR_MS && saved.user > 0 && saved.bot > 0) {
        return { user: saved.user, bot: saved.bot };
      }
    } catch {
      // nothing usable saved
    }
    return null;
  }

  // ----- sidebar: users and bots ----------------------------------------------------------

  let usersKey = "";
  let botsKey = "";

  function renderUsers() {
    // Rebuilt only when something changed, so an open <select> is not closed under the user.
    const key = JSON.stringify([state.users, state.userId]);
    if (key === usersKey) return;
    usersKey = key;
    const select = $("user-select");
    select.replaceChildren();
    if (state.users.length === 0) {
      const none = document.createElement("option");
      none.textContent = "— create a user —";
      none.value = "";
      select.append(none);
      $("new-user").open = true;
    }
    for (const u of state.users) {
      const option = document.createElement("option");
      option.value = String(u.id);
      const name = [u.first_name, u.last_name].filter(Boolean).join(" ");
      option.textContent = `${name}${u.username ? " @" + u.username : ""} · ${u.id}`;
      select.append(option);
    }
    if (state.userId !== null) select.value = String(state.userId);
    const me = state.users.find((u) => u.id === state.userId);
    const lang = $("user-lang");
    fillLanguages(lang, me?.language_code);
    lang.disabled = !me;
  }

  function fillLanguages(select, current) {
    const known = LANGUAGES.map(([code]) => code);
    const options = current && !known.includes(current) ? [...LANGUAGES, [current, current]] : LANGUAGES;
    select.replaceChildren();
    for (const [code, name] of options) {
      const option = document.createElement("option");
      option.value = code;
      option.textContent = name;
      select.append(option);
    }
    select.value = current || "en";
  }

  async function changeLanguage(code) {
    const me = state.users.find((u) => u.id === state.userId);
    if (!me) return;
    try {
      const user = await api("PATCH", `/users/${me.id}`, { language_code: code });
      Object.assign(me, user);
      usersKey = "";
      renderUsers();
      const name = LANGUAGES.find(([c]) => c === code)?.[1] || code;
      toast(`${user.first_name}'s Telegram is in ${name} now: bots see language_code "${code}".`);
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  function renderBots() {
    const mine = state.chats
      .filter((c) => c.user_id === state.userId)
      .map((c) => ({ bot_id: c.bot_id, blocked: c.blocked, unread: c.unread_count }));
    const key = JSON.stringify([state.bots, mine, state.botId]);
    if (key === botsKey) return;
    botsKey = key;
    const list = $("bot-list");
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.botId : null;
    list.replaceChildren();
    $("no-bots").hidden = state.bots.length > 0;
    for (const bot of state.bots) {
      const chat = mine.find((c) => c.bot_id === bot.id);
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "bot";
      button.dataset.botId = String(bot.id);
      if (bot.id === state.botId) button.setAttribute("aria-current", "true");
      const avatar = div("avatar", (bot.first_name || "?").slice(0, 1).toUpperCase());
      const info = div("bot-info");
      info.append(div("bot-name", bot.first_name), div("muted", "@" + bot.username));
      button.append(avatar, info);
      if (chat?.blocked) button.append(div("tag", "blocked"));
      else if (chat?.unread) {
        const badge = div("tag count", String(chat.unread));
        badge.title = `${chat.unread} unread`;
        button.append(badge);
      }
      button.addEventListener("click", () => openChat(bot.id));
      li.append(button);
      list.append(li);
      if (focused === button.dataset.botId) button.focus();
    }
  }

  function applyWorld(world) {
    state.users = world.users;
    state.bots = world.bots;
    state.chats = world.chats;
    if (state.userId !== null && !state.users.some((u) => u.id === state.userId)) {
      state.userId = null;
    }
    if (state.userId === null && state.users.length) selectUser(state.users[0].id);
    if (state.botId !== null && !state.bots.some((b) => b.id === state.botId)) closeChat();
    renderUsers();
    renderBots();
    renderCommands();
    renderHeader();
  }

  // One long poll per tab, on the emulator-wide version, keeps everything live: browsers open at
  // most six connections per host, and people keep a tab per user (an owner and a customer).
  async function worldLoop() {
    let version = -1;
    for (;;) {
      try {
        if (version >= 0) {
          const waited = await api("GET", `/wait?version=${version}&timeout=${POLL_SECONDS}`);
          if (!waited.changed) continue;
        }
        const world = await api("GET", "/state");
        version = world.version;
        setConnected(true);
        applyWorld(world);
        refreshChatIfChanged();
      } catch (error) {
        setConnected(false);
        version = -1;
        await sleep(1500);
      }
    }
  }

  // ----- the open chat ------------------------------------------------------------------------

  function saveLocation() {
    const params = new URLSearchParams();
    if (state.userId !== null) params.set("user", String(state.userId));
    if (state.botId !== null) params.set("bot", String(state.botId));
    history.replaceState(null, "", "#" + params.toString());
  }

  function selectUser(userId) {
    state.userId = userId;
    saveLocation();
    renderBots();
    if (state.botId !== null) openChat(state.botId);
  }

  function closeChat() {
    chatTicket++;
    state.botId = null;
    state.chat = null;
    state.rendered.clear();
    $("messages").replaceChildren();
    $("messages").hidden = true;
    $("composer").hidden = true;
    $("start-bar").hidden = true;
    $("empty").hidden = false;
    $("app").classList.remove("in-chat");
    renderReplyKeyboard(null);
    renderHeader();
    saveLocation();
  }

  function openChat(botId) {
    if (state.userId === null) {
      toast("Create a user first.");
      $("user-first-name").focus();
      return;
    }
    state.botId = botId;
    state.chat = null;
    state.rendered.clear();
    state.lastMessageId = 0;
    state.stickToBottom = true;
    readSent = 0;
    $("messages").replaceChildren();
    $("messages").hidden = false;
    // The input or Start (for a bot never written to) shows once the chat has loaded.
    $("composer").hidden = true;
    $("start-bar").hidden = true;
    $("empty").hidden = true;
    $("commands").hidden = true;
    $("app").classList.add("in-chat");
    saveLocation();
    renderBots();
    renderCommands();
    renderHeader();
    loadChat();
  }

  function refreshChatIfChanged() {
    if (state.botId === null) return;
    const summary = state.chats.find((c) => c.bot_id === state.botId && c.user_id === state.userId);
    if (state.chat && state.chat.version === (summary ? summary.version : 0)) return;
    loadChat();
  }

  let chatTicket = 0;

  async function loadChat() {
    const ticket = ++chatTicket;
    try {
      const chat = await api("GET", chatPath());
      if (ticket === chatTicket) applyChat(chat); // else another load or chat superseded it
    } catch (error) {
      if (ticket === chatTicket) toast(error.message, { error: true });
    }
  }

  /** A user action in the open chat; the long poll then shows its effect. */
  async function act(suffix, body) {
    if (state.botId === null || state.userId === null) return null;
    try {
      return await api("POST", chatPath() + suffix, body);
    } catch (error) {
      toast(error.message, { error: true });
      return null;
    }
  }

  async function sendText(text) {
    if (!text.trim()) return false;
    return (await act("/messages", { text })) !== null;
  }

  // A photo as Telegram sends it: the bytes (base64) and the text typed so far as its caption.
  async function sendPhoto(file, caption) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    let binary = "";
    for (let at = 0; at < bytes.length; at += 0x8000) {
      binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
    }
    const body = { data_base64: btoa(binary), filename: file.name };
    if (caption.trim()) body.caption = caption;
    return (await act("/photo", body)) !== null;
  }

  async function pressInline(button, messageId, data) {
    button.classList.add("pending");
    try {
      const pressed = await act("/callback", { message_id: messageId, data });
      if (!pressed) return;
      // Telegram shows a spinner on the button until the bot answers the callback query.
      const id = encodeURIComponent(pressed.callback_query_id);
      const result = await api("GET", `/callbacks/${id}?wait=10`);
      const answer = result.answer;
      if (answer?.text) toast(answer.text, { alert: Boolean(answer.show_alert) });
      const url = safeUrl(answer?.url);
      if (url) {
        rememberChat();
        window.open(url, "_blank", "noopener");
      }
    } catch (error) {
      toast(error.message, { error: true });
    } finally {
      button.classList.remove("pending");
    }
  }

  function askContact() {
    const me = state.users.find((u) => u.id === state.userId);
    $("contact-phone").value = me?.phone_number || DEFAULT_PHONE;
    $("contact-dialog").showModal();
    $("contact-phone").select();
  }

  // ----- toast --------------------------------------------------------------------------------

  let toastTimer = null;

  /**
   * Show a note above the chat (never over it); ✕ or Escape dismisses it. An alert (a callback
   * answer with show_alert) and an error stay until dismissed, other notes go after a few seconds.
   */
  function toast(text, { alert = false, error = false } = {}) {
    const box = $("toast");
    $("toast-text").textContent = text;
    box.classList.toggle("alert", alert);
    box.classList.toggle("error", error);
    box.setAttribute("role", alert || error ? "alert" : "status");
    box.hidden = false;
    clearTimeout(toastTimer);
    if (!alert && !error) toastTimer = setTimeout(dismissToast, 3500);
  }

  function dismissToast() {
    clearTimeout(toastTimer);
    $("toast").hidden = true;
  }

  // ----- wiring -------------------------------------------------------------------------------

  function autoGrow() {
    const input = $("input");
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }

  function wire() {
    $("user-select").addEventListener("change", (event) => {
      if (event.target.value) selectUser(Number(event.target.value));
    });
    fillLanguages($("user-form-lang"), "en");
    $("user-lang").addEventListener("change", (event) => changeLanguage(event.target.value));
    $("start").addEventListener("click", async () => {
      $("start").disabled = true;
      try {
        await sendText("/start");
      } finally {
        $("start").disabled = false;
      }
    });
    document.addEventListener("visibilitychange", markRead);
    // A hash typed or followed (#user=..&bot=..) opens that chat, as on a fresh load. (The page
    // writes its own hash with replaceState, which fires no hashchange.)
    window.addEventListener("hashchange", () => location.reload());

    $("user-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { first_name: $("user-first-name").value.trim() };
      const id = $("user-id").value.trim();
      const phone = $("user-phone").value.trim();
      if (id) body.id = Number(id);
      if (phone) body.phone_number = phone;
      body.language_code = $("user-form-lang").value;
      try {
        const user = await api("POST", "/users", body);
        state.users.push(user);
        event.target.reset();
        fillLanguages($("user-form-lang"), "en");
        $("new-user").open = false;
        selectUser(user.id);
        renderUsers();
        toast(`You are now ${user.first_name} (${user.id}).`);
      } catch (error) {
        toast(error.message, { error: true });
      }
    });

    $("composer").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("input");
      const text = input.value;
      if (!text.trim()) return;
      input.value = "";
      autoGrow();
      if (!(await sendText(text))) input.value = text;
      input.focus();
    });

    $("attach").addEventListener("click", () => $("photo-file").click());
    $("photo-file").addEventListener("change", async (event) => {
      const file = event.target.files[0];
      event.target.value = "";
      if (!file) return;
      const input = $("input");
      const caption = input.value;
      if (await sendPhoto(file, caption)) {
        input.value = "";
        autoGrow();
      }
      input.focus();
    });

    $("input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      } else if (event.key === "Escape") {
        $("commands").hidden = true;
      }
    });
    $("input").addEventListener("input", autoGrow);

    // Keep the newest message in view when the list shrinks (a reply keyboard, a phone rotating).
    const list = $("messages");
    list.addEventListener("scroll", () => {
      state.stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    });
    new ResizeObserver(() => {
      if (state.stickToBottom) list.scrollTop = list.scrollHeight;
    }).observe(list);

    $("menu").addEventListener("click", () => {
      const menu = $("commands");
      menu.hidden = !menu.hidden;
      if (!menu.hidden) menu.querySelector("button")?.focus();
    });
    $("commands").addEventListener("keydown", (event) => {
      const items = [...$("commands").querySelectorAll("button")];
      const at = items.indexOf(document.activeElement);
      if (event.key === "ArrowDown") items[(at + 1) % items.length]?.focus();
      else if (event.key === "ArrowUp") items[(at - 1 + items.length) % items.length]?.focus();
      else if (event.key === "Escape") {
        $("commands").hidden = true;
        $("input").focus();
      } else return;
      event.preventDefault();
    });

    $("block").addEventListener("click", () => act(state.chat?.blocked ? "/unblock" : "/block", {}));
    $("back").addEventListener("click", closeChat);

    $("contact-dialog").addEventListener("close", async () => {
      if ($("contact-dialog").returnValue !== "share") return;
      const phone = $("contact-phone").value.trim() || DEFAULT_PHONE;
      await act("/contact", { phone_number: phone });
      $("input").focus();
    });

    $("toast-ok").addEventListener("click", dismissToast);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !$("toast").hidden) dismissToast();
    });
    // Let "typing…" expire even when nothing else changes.
    setInterval(renderHeader, 2000);
  }

  function restoreLocation() {
    const params = new URLSearchParams(location.hash.slice(1));
    const user = Number(params.get("user"));
    const bot = Number(params.get("bot"));
    return { user: user > 0 ? user : null, bot: bot > 0 ? bot : null };
  }

  async function main() {
    wire();
    let wanted = restoreLocation();
    if (wanted.user === null && wanted.bot === null) wanted = takeReturnChat() || wanted;
    state.userId = wanted.user; // applyWorld forgets it when no such user exists
    try {
      applyWorld(await api("GET", "/state"));
      setConnected(true);
    } catch {
      setConnected(false);
    }
    if (wanted.bot !== null && state.bots.some((b) => b.id === wanted.bot)) openChat(wanted.bot);
    worldLoop();
  }

  main();
})();
