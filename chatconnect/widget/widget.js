/* ChatConnect widget: <script src="https://chat.example.com/widget.js" data-chatconnect-key="pk_…" async></script>
 * One dependency-free file, no build step. It renders inside an open Shadow DOM, so the page's
 * CSS does not leak in and the widget's does not leak out. */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector("script[data-chatconnect-key]");
  if (!script || window.__chatconnectLoaded) return;
  window.__chatconnectLoaded = true;

  var KEY = script.getAttribute("data-chatconnect-key") || "";
  var API = (script.getAttribute("data-chatconnect-api") || new URL(script.src, location.href).origin).replace(/\/$/, "");
  var STORAGE_KEY = "chatconnect:" + KEY;
  var WAIT_SECONDS = 25;
  var SUGGEST_DELAY = 300;  // ms after the last keystroke
  var RECONNECT_MS = 2000;  // after the server ends an event stream (as its `retry:` says)
  var TYPING_EVERY_MS = 2000;
  var TYPING_SHOWN_MS = 5000;
  var FONTS = {
    system: 'system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif',
    "sans-serif": '"Helvetica Neue", Helvetica, Arial, sans-serif',
    serif: 'Georgia, Cambria, "Times New Roman", serif',
    monospace: 'ui-monospace, Menlo, Consolas, "Liberation Mono", monospace'
  };
  var ICONS = {
    chat: '<path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/>',
    help: '<circle cx="12" cy="12" r="10"/><path d="M9.1 9a3 3 0 0 1 5.8 1c0 2-3 3-3 3"/><path d="M12 17h.01"/>'
  };

  var warned = false;
  function warn(message) {
    if (warned) return;
    warned = true;
    console.warn("ChatConnect: " + message);
  }

  if (!/^[!-~]{1,200}$/.test(KEY)) {
    warn("the widget is not shown: the script tag has no valid data-chatconnect-key.");
    return;
  }

  // --- storage: the visitor's conversation for this key, shared by reloads and tabs ----------
  var memory = {};
  function load() {
    try { return JSON.parse(localStorage.getItem(STORAGE_KEY) || "null"); }
    catch (e) { return memory[STORAGE_KEY] || null; }
  }
  function save(value) {
    memory[STORAGE_KEY] = value;
    try {
      if (value) localStorage.setItem(STORAGE_KEY, JSON.stringify(value));
      else localStorage.removeItem(STORAGE_KEY);
    } catch (e) { /* storage disabled: this page view keeps it in memory */ }
  }

  // --- HTTP ------------------------------------------------------------------------------------
  function ApiError(status, body, retryAfter) {
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }

  function request(method, path, body, token, signal) {
    var headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers["X-Visitor-Token"] = token;
    return fetch(API + path, {
      method: method, headers: headers, signal: signal, credentials: "omit", mode: "cors",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
        if (response.ok) return data;
        throw new ApiError(response.status, data, parseInt(response.headers.get("Retry-After"), 10) || 0);
      });
    });
  }

  function backoff(attempt) {
    var base = Math.min(30000, 1000 * Math.pow(2, attempt));
    return base / 2 + Math.random() * base / 2;
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  // Fetches the config until it answers; refusals (403, 404) end in one warning and nothing shown.
  function fetchConfig(attempt) {
    return request("GET", "/api/public/widgets/" + encodeURIComponent(KEY)).catch(function (error) {
      if (error instanceof ApiError && error.status < 500 && error.status !== 429) {
        warn(error.status === 403
          ? "the widget is not shown: this site (" + location.origin + ") is not among the allowed domains of this key."
          : "the widget is not shown: the key is unknown, rotated, or its client is suspended.");
        return null;
      }
      return sleep(error instanceof ApiError && error.retryAfter ? error.retryAfter * 1000 : backoff(attempt))
        .then(function () { return fetchConfig(attempt + 1); });
    });
  }

  // --- rendering ---------------------------------------------------------------------------------
  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === "text") node.textContent = attributes[name];
      else node.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function icon(name) {
    var span = element("span", { "class": "icon", "aria-hidden": "true" });
    span.innerHTML = '<svg viewBox="0 0 24 24" width="26" height="26" fill="none" stroke="currentColor" ' +
      'stroke-width="2" stroke-linecap="round" stroke-linejoin="round">' + (ICONS[name] || "") + "</svg>";
    return span;
  }

  // Black or white text, whichever reads better on the brand colour (WCAG relative luminance).
  function textOn(hex) {
    var h = hex.replace("#", "");
    if (h.length === 3) h = h.replace(/./g, "$&$&");
    var channels = [0, 2, 4].map(function (i) {
      var c = parseInt(h.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
    return luminance > 0.179 ? "#111827" : "#ffffff";
  }

  function stylesheet(config) {
    var s = config.style, side = config.position === "bottom-left" ? "left" : "right";
    var light = "--bg:#ffffff;--fg:#111827;--muted:#6b7280;--bubble:#f3f4f6;--line:#e5e7eb;--warn-bg:#fef3c7;--warn-fg:#78350f;";
    var dark = "--bg:#1f2937;--fg:#f9fafb;--muted:#9ca3af;--bubble:#374151;--line:#4b5563;--warn-bg:#451a03;--warn-fg:#fde68a;";
    var r = s.border_radius + "px";
    return [
      ":host{all:initial !important;}",
      ".root{" + (s.theme === "dark" ? dark : light) + "--brand:" + config.primary_color + ";--on-brand:" + textOn(config.primary_color) + ";" +
        "font-family:" + FONTS[s.font_family] + ";font-size:14px;line-height:1.4;color:var(--fg);" +
        "position:fixed;z-index:2147483000;bottom:" + s.offset_y + "px;" + side + ":" + s.offset_x + "px;" +
        "display:flex;flex-direction:column;align-items:" + (side === "left" ? "flex-start" : "flex-end") + ";gap:12px;}",
      s.theme === "auto" ? "@media (prefers-color-scheme: dark){.root{" + dark + "}}" : "",
      s.show_on_mobile ? "" : "@media (max-width: 639px){.root{display:none !important;}}",
      ".root *{box-sizing:border-box;font:inherit;color:inherit;margin:0;}",
      "button{cursor:pointer;border:0;background:none;padding:0;}",
      ":focus-visible{outline:3px solid var(--brand);outline-offset:2px;}",
      ".launcher{background:var(--brand);color:var(--on-brand);min-width:56px;height:56px;border-radius:" +
        (s.border_radius >= 20 ? "28px" : r) + ";display:flex;align-items:center;justify-content:center;gap:8px;" +
        "padding:0;font-weight:600;box-shadow:0 4px 14px rgba(0,0,0,.25);transition:transform .15s ease;}",
      ".launcher.labelled{padding:0 18px;}",
      ".launcher:hover{transform:scale(1.05);}",
      ".launcher .icon{display:flex;}",
      ".launcher{position:relative;}",
      ".badge{position:absolute;top:-4px;" + (side === "left" ? "right" : "left") + ":-4px;min-width:20px;height:20px;" +
        "border-radius:10px;background:#dc2626;color:#fff;font-size:12px;font-weight:700;line-height:20px;padding:0 6px;}",
      ".badge[hidden]{display:none;}",
      ".panel{width:min(360px,calc(100vw - 24px));height:min(520px,calc(100vh - 110px));background:var(--bg);" +
        "border-radius:" + r + ";box-shadow:0 10px 40px rgba(0,0,0,.3);display:flex;flex-direction:column;overflow:hidden;" +
        "border:1px solid var(--line);animation:cc-in .18s ease-out;}",
      ".panel[hidden]{display:none;}",
      "@keyframes cc-in{from{opacity:0;transform:translateY(8px);}to{opacity:1;transform:none;}}",
      ".header{background:var(--brand);color:var(--on-brand);padding:14px 16px;display:flex;align-items:flex-start;gap:8px;}",
      ".header div{flex:1;min-width:0;}",
      ".title{font-size:16px;font-weight:700;}",
      ".subtitle{font-size:13px;opacity:.9;}",
      ".online{font-size:12px;opacity:.9;}",
      ".online::before{content:\"\";display:inline-block;width:8px;height:8px;border-radius:4px;background:#22c55e;margin-right:6px;}",
      ".online[hidden]{display:none;}",
      ".close{color:var(--on-brand);font-size:22px;line-height:1;width:32px;height:32px;border-radius:6px;}",
      ".offline{background:var(--warn-bg);color:var(--warn-fg);padding:10px 16px;font-size:13px;}",
      ".offline[hidden],.notice[hidden],.typing[hidden]{display:none;}",
      ".log{flex:1;overflow-y:auto;list-style:none;padding:16px;display:flex;flex-direction:column;gap:8px;}",
      ".msg{max-width:80%;padding:8px 12px;border-radius:" + Math.max(4, s.border_radius) + "px;white-space:pre-wrap;overflow-wrap:anywhere;}",
      ".msg.agent{background:var(--bubble);align-self:flex-start;}",
      ".msg.visitor{background:var(--brand);color:var(--on-brand);align-self:flex-end;}",
      ".msg.pending{opacity:.6;}",
      ".seen{align-self:flex-end;font-size:12px;color:var(--muted);}",
      ".typing{padding:0 16px 6px;font-size:12px;color:var(--muted);}",
      ".notice{padding:8px 16px;font-size:13px;color:var(--warn-fg);background:var(--warn-bg);}",
      "form{display:flex;gap:8px;padding:10px;border-top:1px solid var(--line);}",
      "textarea{flex:1;resize:none;height:42px;max-height:120px;padding:10px;border:1px solid var(--line);" +
        "border-radius:" + Math.min(12, s.border_radius) + "px;background:var(--bg);color:var(--fg);}",
      ".send{background:var(--brand);color:var(--on-brand);padding:0 14px;border-radius:" + Math.min(12, s.border_radius) + "px;font-weight:600;}",
      ".suggestions{padding:0 10px 6px;display:flex;flex-direction:column;gap:4px;}",
      ".suggestions[hidden],.article[hidden],.log[hidden]{display:none;}",
      ".hint{font-size:12px;color:var(--muted);}",
      ".suggestion{text-align:left;padding:6px 8px;border:1px solid var(--line);border-radius:" + Math.min(8, s.border_radius) + "px;}",
      ".suggestion b{display:block;font-weight:600;}",
      ".suggestion span{font-size:12px;color:var(--muted);}",
      "mark{background:#fde68a;color:#111827;}",
      ".article{flex:1;overflow-y:auto;padding:16px;}",
      ".article h3{font-size:16px;font-weight:700;margin:8px 0;}",
      ".article p,.article ul,.article ol{margin:0 0 8px;}",
      ".article a{color:var(--brand);text-decoration:underline;}",
      ".back{color:var(--brand);font-weight:600;}",
      ".sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;}",
      "@media (prefers-reduced-motion: reduce){.root *{animation:none !important;transition:none !important;}}"
    ].join("\n");
  }

  function Widget(config) {
    var self = this;
    this.config = config;
    this.rendered = {};
    this.lastId = 0;
    this.suggestion = 0;
    this.visitorIds = [];
    this.conversation = load();
    this.poller = null;

    this.host = element("div", { "data-chatconnect": "" });
    var shadow = this.host.attachShadow({ mode: "open" });
    shadow.appendChild(element("style", { text: stylesheet(config) }));

    var s = config.style;
    this.launcher = element("button", {
      type: "button", "class": "launcher", "aria-expanded": "false", "aria-controls": "chatconnect-panel",
      "aria-label": "Open chat: " + config.widget_name
    });
    if (s.launcher_icon === "none") {
      this.launcher.classList.add("labelled");
      this.launcher.appendChild(element("span", { text: config.widget_name }));
    }
    else this.launcher.appendChild(icon(s.launcher_icon));

    this.unread = 0;
    this.badge = element("span", { "class": "badge", "aria-hidden": "true" });
    this.badge.hidden = true;
    this.launcher.appendChild(this.badge);

    this.closeButton = element("button", { type: "button", "class": "close", "aria-label": "Close chat", text: "×" });
    this.online = element("span", { "class": "online", text: "Online" });
    this.online.hidden = true;
    var heading = element("div", {}, [element("h2", { "class": "title", id: "chatconnect-title", text: config.widget_name }),
                                      this.online]);
    if (s.header_text) heading.appendChild(element("p", { "class": "subtitle", text: s.header_text }));
    this.offline = element("p", { "class": "offline", role: "status", text: config.offline_message });
    this.offline.hidden = true;  // until the status says it is closed
    this.log = element("ol", { "class": "log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
    this.typing = element("p", { "class": "typing", "aria-live": "polite", text: config.widget_name + " is typing…" });
    this.typing.hidden = true;
    this.notice = element("p", { "class": "notice", role: "alert" });
    this.notice.hidden = true;
    this.input = element("textarea", { rows: "1", "aria-label": "Message", placeholder: "Write a message…", maxlength: "5000" });
    this.form = element("form", {}, [this.input, element("button", { type: "submit", "class": "send", text: "Send" })]);
    this.suggestions = element("div", { "class": "suggestions", role: "region", "aria-label": "Suggested articles" });
    this.suggestions.hidden = true;
    this.article = element("div", { "class": "article", role: "document", tabindex: "-1" });
    this.article.hidden = true;
    this.panel = element("div", {
      "class": "panel", id: "chatconnect-panel", role: "dialog", "aria-labelledby": "chatconnect-title"
    }, [element("div", { "class": "header" }, [heading, this.closeButton]), this.offline, this.log, this.article,
        this.typing, this.suggestions, this.notice, this.form]);
    this.panel.hidden = true;

    this.root = element("div", { "class": "root" }, [this.panel, this.launcher]);
    shadow.appendChild(this.root);
    this.addMessage({ id: "welcome", sender: "agent", body: config.welcome_message });

    this.launcher.addEventListener("click", function () { self.toggle(self.panel.hidden); });
    this.closeButton.addEventListener("click", function () { self.toggle(false); });
    this.panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") self.toggle(false);
    });
    this.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        self.send();
      }
    });
    this.form.addEventListener("submit", function (event) { event.preventDefault(); self.send(); });
    this.input.addEventListener("input", function () {
      self.sendTyping();
      clearTimeout(self.suggestTimer);
      self.suggestTimer = setTimeout(function () { self.suggest(); }, SUGGEST_DELAY);
    });
    // A conversation started or ended in another tab.
    window.addEventListener("storage", function (event) {
      if (event.key !== STORAGE_KEY) return;
      var stored = load();
      if (stored && (!self.conversation || stored.id !== self.conversation.id)) self.resume(stored);
    });

    document.body.appendChild(this.host);
    if (this.conversation) this.resume(this.conversation);
  }

  Widget.prototype.label = function () {
    var open = !this.panel.hidden;
    this.badge.textContent = String(this.unread);
    this.badge.hidden = open || !this.unread;
    this.launcher.setAttribute("aria-label", (open ? "Close chat: " : "Open chat: ") + this.config.widget_name +
      (!open && this.unread ? " (" + this.unread + (this.unread === 1 ? " new message)" : " new messages)") : ""));
  };

  Widget.prototype.toggle = function (open) {
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    if (open) this.unread = 0;
    this.label();
    if (open) {
      this.markSeen();
      this.input.focus();
      this.log.scrollTop = this.log.scrollHeight;
    } else {
      this.launcher.focus();
    }
  };

  Widget.prototype.addMessage = function (message) {
    if (this.rendered[message.id]) return this.rendered[message.id];
    // A reply that arrives while the panel is closed (not the history of a reload).
    if (message.sender === "agent" && this.panel && this.panel.hidden && this.live) {
      this.unread += 1;
      this.label();
    }
    var item = element("li", { "class": "msg " + message.sender });
    item.appendChild(element("span", { "class": "sr-only", text: message.sender === "visitor" ? "You: " : this.config.widget_name + ": " }));
    item.appendChild(element("span", { "class": "body", text: message.body }));
    this.rendered[message.id] = item;
    this.log.appendChild(item);
    this.log.scrollTop = this.log.scrollHeight;
    if (typeof message.id === "number" && message.id > this.lastId) this.lastId = message.id;
    if (typeof message.id === "number" && message.sender === "visitor") this.visitorIds.push(message.id);
    if (typeof message.id === "number" && message.sender === "agent") this.latestAgentId = message.id;
    return item;
  };

  Widget.prototype.showNotice = function (text) {
    this.notice.textContent = text || "";
    this.notice.hidden = !text;
  };

  // Continue a stored conversation: its messages, then live updates.
  Widget.prototype.resume = function (conversation) {
    this.conversation = conversation;
    this.listen();
  };

  Widget.prototype.forget = function () {
    save(null);
    this.conversation = null;
    this.stopListening();
  };

  Widget.prototype.stopListening = function () {
    if (this.poller) this.poller.abort();
    this.poller = null;
  };

  // Follows the conversation: its stored events first (a JSON list, page by page), then the
  // live stream of what comes next (Server-Sent Events read with fetch, since EventSource cannot
  // send the X-Visitor-Token header), resumed from the last event after every disconnection.
  Widget.prototype.listen = function () {
    var self = this, conversation = this.conversation, attempt = 0, cursor = 0, live = false;
    this.stopListening();
    var controller = this.poller = new AbortController();
    var path = "/api/public/conversations/" + conversation.id + "/events?after=";

    function history() {
      return request("GET", path + cursor + "&wait=0", undefined, conversation.token, controller.signal)
        .then(function (page) {
          page.items.forEach(function (event) { cursor = event.id; self.handle(event); });
          return page.next_cursor ? history() : null;
        });
    }

    function stream() {
      return fetch(API + path + cursor, {
        headers: { "Accept": "text/event-stream", "X-Visitor-Token": conversation.token },
        signal: controller.signal, credentials: "omit", mode: "cors"
      }).then(function (response) {
        if (!response.ok) {
          throw new ApiError(response.status, null, parseInt(response.headers.get("Retry-After"), 10) || 0);
        }
        attempt = 0;
        self.showNotice("");
        var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
        function read() {
          return reader.read().then(function (chunk) {
            if (chunk.done) return;
            buffer += decoder.decode(chunk.value, { stream: true });
            var blocks = buffer.split(/\r?\n\r?\n/);
            buffer = blocks.pop();
            blocks.forEach(function (block) {
              var data = [];
              block.split(/\r?\n/).forEach(function (line) {
                if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
                else if (line.indexOf("id:") === 0) cursor = parseInt(line.slice(3), 10) || cursor;
              });
              if (data.length) self.handle(JSON.parse(data.join("\n")));
            });
            return read();
          });
        }
        return read();
      });
    }

    function run() {
      if (controller.signal.aborted) return;
      (live ? stream() : history().then(function () { live = self.live = true; return stream(); }))
        .then(function () { return sleep(RECONNECT_MS); })  // the server ended the stream
        .then(run, function (error) {
          if (controller.signal.aborted) return;
          if (error instanceof ApiError && error.status === 404) {
            self.forget();  // the conversation is gone (deleted, or the key rotated away)
            return;
          }
          if (attempt > 1) self.showNotice("Connection lost. Reconnecting…");
          var delay = error instanceof ApiError && error.retryAfter ? error.retryAfter * 1000 : backoff(attempt++);
          sleep(delay).then(run);
        });
    }
    this.live = false;
    run();
  };

  Widget.prototype.handle = function (event) {
    if (event.type === "message.created") {
      this.addMessage(event.data);
      if (event.data.sender === "agent") {
        this.typing.hidden = true;
        this.markSeen();
      }
    } else if (event.type === "typing" && event.data.by === "agent") {
      var typing = this.typing;
      typing.hidden = false;
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(function () { typing.hidden = true; }, TYPING_SHOWN_MS);
    } else if (event.type === "conversation.seen" && event.data.by === "agent") {
      this.showSeen(event.data.message_id);
    }
  };

  // "Seen" under the visitor's latest message that the team has seen.
  Widget.prototype.showSeen = function (messageId) {
    if (this.seenId && this.seenId >= messageId) return;
    this.seenId = messageId;
    var seen = this.visitorIds.filter(function (id) { return id <= messageId; }).pop();
    if (!seen) return;
    if (!this.seenMark) this.seenMark = element("li", { "class": "seen", text: "Seen" });
    this.rendered[seen].after(this.seenMark);
  };

  // Tells the team which of their messages the visitor has seen: the latest, while the panel
  // is open.
  Widget.prototype.markSeen = function () {
    var conversation = this.conversation, latest = this.latestAgentId;
    if (!conversation || this.panel.hidden || !latest || latest <= (this.seenSent || 0)) return;
    this.seenSent = latest;
    request("POST", "/api/public/conversations/" + conversation.id + "/seen", { message_id: latest },
            conversation.token).catch(function () { /* a seen mark is best effort */ });
  };

  // Tells the team the visitor is typing, at most every TYPING_EVERY_MS.
  Widget.prototype.sendTyping = function () {
    var conversation = this.conversation, now = Date.now();
    if (!conversation || now - (this.typingSent || 0) < TYPING_EVERY_MS) return;
    this.typingSent = now;
    request("POST", "/api/public/conversations/" + conversation.id + "/typing", undefined,
            conversation.token).catch(function () { /* typing is best effort */ });
  };

  Widget.prototype.send = function () {
    var self = this, body = this.input.value.trim();
    if (!body || this.sending) return;
    this.sending = true;
    var pending = element("li", { "class": "msg visitor pending", text: body });
    this.log.appendChild(pending);
    this.log.scrollTop = this.log.scrollHeight;
    this.input.value = "";
    var conversation = this.conversation;
    var sent = conversation
      ? request("POST", "/api/public/conversations/" + conversation.id + "/messages", { body: body }, conversation.token)
          .then(function (message) { return [message]; })
      : this.start(body);
    sent.catch(function (error) {
      // A conversation the team closed (409) or that is gone (404): this message opens a new one.
      if (conversation && error instanceof ApiError && (error.status === 409 || error.status === 404)) {
        self.forget();
        return self.start(body);
      }
      throw error;
    }).then(function (messages) {
      pending.remove();
      messages.forEach(function (message) { self.addMessage(message); });
      self.showNotice("");
    }).catch(function (error) {
      pending.remove();
      if (!self.input.value) self.input.value = body;
      if (error instanceof ApiError && error.status === 429) {
        var seconds = error.retryAfter || 60;
        self.showNotice("You're sending messages too quickly. Please wait " +
          (seconds >= 120 ? Math.ceil(seconds / 60) + " minutes" : seconds + " seconds") + " and try again.");
      } else if (error instanceof ApiError && error.status === 422) {
        self.showNotice("That message can't be sent (at most 5,000 characters).");
      } else {
        self.showNotice("Your message could not be sent. Check your connection and try again.");
      }
    }).then(function () { self.sending = false; });
  };

  Widget.prototype.start = function (body) {
    var self = this;
    return request("POST", "/api/public/widgets/" + encodeURIComponent(KEY) + "/conversations", { message: body })
      .then(function (started) {
        var conversation = { id: started.conversation.id, token: started.visitor_token };
        save(conversation);
        self.suggestions.hidden = true;
        started.messages.forEach(function (message) { self.addMessage(message); });
        self.resume(conversation);
        return [];
      });
  };

  // --- knowledge base: articles suggested while the visitor writes the first message -----------
  // Only on servers with a knowledge base; anywhere else the request fails and nothing shows.
  Widget.prototype.suggest = function () {
    var self = this, query = this.input.value.trim(), asked = ++this.suggestion;
    if (this.conversation || query.length < 3 || this.noArticles) {
      this.suggestions.hidden = true;
      return;
    }
    request("GET", "/api/public/widgets/" + encodeURIComponent(KEY) + "/articles?limit=3&q=" + encodeURIComponent(query))
      .then(function (page) {
        if (asked !== self.suggestion) return;  // an answer to an older query
        self.suggestions.replaceChildren(element("p", { "class": "hint", text: "These articles may help:" }));
        page.items.forEach(function (item) {
          var link = element("button", { type: "button", "class": "suggestion" }, [element("b", { text: item.title })]);
          link.appendChild(element("span", {}, [marked(item.snippet)]));
          link.addEventListener("click", function () { self.showArticle(item.slug); });
          self.suggestions.appendChild(link);
        });
        self.suggestions.hidden = !page.items.length || !!self.conversation;
      }).catch(function (error) {
        if (error instanceof ApiError && error.status === 429) return;
        self.noArticles = true;  // no knowledge base here: stop asking
        self.suggestions.hidden = true;
      });
  };

  Widget.prototype.showArticle = function (slug) {
    var self = this;
    request("GET", "/api/public/widgets/" + encodeURIComponent(KEY) + "/articles/" + encodeURIComponent(slug))
      .then(function (article) {
        var back = element("button", { type: "button", "class": "back", text: "← Back to the chat" });
        back.addEventListener("click", function () {
          self.article.hidden = true;
          self.log.hidden = false;
          self.input.focus();
        });
        self.article.replaceChildren(back, element("h3", { text: article.title }), sanitized(article.body_html));
        self.log.hidden = true;
        self.article.hidden = false;
        self.article.focus();
      }).catch(function () { self.showNotice("That article could not be opened."); });
  };

  // The snippet is text with the matches in <mark>: rebuilt from text nodes, nothing else kept.
  function marked(snippet) {
    var template = document.createElement("template"), out = document.createDocumentFragment();
    template.innerHTML = snippet;
    template.content.childNodes.forEach(function (node) {
      out.appendChild(node.nodeName === "MARK" ? element("mark", { text: node.textContent })
                                                : document.createTextNode(node.textContent));
    });
    return out;
  }

  // Articles are sanitised by the server; scripts, handlers and javascript: links are dropped
  // here too, in case.
  function sanitized(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    template.content.querySelectorAll("script,style,iframe,object,embed,form,link,meta").forEach(function (node) { node.remove(); });
    template.content.querySelectorAll("*").forEach(function (node) {
      Array.prototype.slice.call(node.attributes).forEach(function (attribute) {
        if (/^on/i.test(attribute.name) || /^\s*javascript:/i.test(attribute.value)) node.removeAttribute(attribute.name);
      });
      if (node.tagName === "A") {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer");
      }
    });
    return template.content;
  }

  // Whether it is open now (business hours) and the team is online: asked at the start and
  // every minute (the answer may be cached for 15 s).
  Widget.prototype.refreshStatus = function () {
    var self = this;
    request("GET", "/api/public/widgets/" + encodeURIComponent(KEY) + "/status").then(function (status) {
      self.offline.hidden = status.open_now;
      self.online.hidden = !(status.open_now && status.agents_online);
    }).catch(function () { /* keep what is shown; the next refresh tries again */ });
  };

  function boot() {
    fetchConfig(0).then(function (config) {
      if (!config) return;
      var widget = new Widget(config);
      widget.refreshStatus();
      setInterval(function () { widget.refreshStatus(); }, 60000);
      window.ChatConnect = {
        open: function () { widget.toggle(true); },
        close: function () { widget.toggle(false); }
      };
    }).catch(function (error) { warn("the widget could not start: " + error); });
  }

  if (document.body) boot();
  else document.addEventListener("DOMContentLoaded", boot);
})();
