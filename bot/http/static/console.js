// The review console: renders the bot's Adaptive Cards with Microsoft's renderer (vendor/adaptivecards.min.js)
// and sends each button press back to the service, which runs the same handlers as a Webex press.
// No card is drawn by hand here; this file only lays the cards out as a space and carries the presses.
(function () {
  "use strict";

  const view = document.getElementById("view");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const POLL_MS = { timeline: 3000, alert: 3000, watchlist: 5000, stats: 0 };
  const shown = new Map(); // item id -> {version, element}

  const hostConfig = new AdaptiveCards.HostConfig({
    fontFamily: "'Segoe UI', 'Helvetica Neue', Arial, sans-serif",
    supportsInteractivity: true,
    spacing: { small: 4, default: 8, medium: 16, large: 24, extraLarge: 32, padding: 16 },
    actions: { maxActions: 5, spacing: "default", buttonSpacing: 8, actionsOrientation: "horizontal",
               actionAlignment: "left", showCard: { actionMode: "inline", inlineTopMargin: 12 } },
    containerStyles: {
      default: {
        backgroundColor: "#FFFFFF",
        foregroundColors: {
          default: { default: "#1F2328", subtle: "#5E6670" },
          accent: { default: "#0B5CAD", subtle: "#3E7BBF" },
          good: { default: "#1A7F37", subtle: "#2F9E4F" },
          warning: { default: "#9A6700", subtle: "#B58105" },
          attention: { default: "#C9252C", subtle: "#D8474D" },
        },
      },
    },
  });

  // TextBlocks and replies use a small Markdown subset (bold, italic, code, lists), escaped first.
  AdaptiveCards.AdaptiveCard.onProcessMarkdown = function (text, result) {
    result.outputHtml = markdown(text);
    result.didProcess = true;
  };

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function inline(text) {
    return text
      .replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
      .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>");
  }

  function markdown(text) {
    const out = [];
    let list = false;
    for (const line of escapeHtml(text).split("\n")) {
      const item = line.match(/^\s*[-*] (.*)$/);
      if (item && !list) { out.push("<ul>"); list = true; }
      if (!item && list) { out.push("</ul>"); list = false; }
      out.push(item ? `<li>${inline(item[1])}</li>` : `${inline(line)}<br>`);
    }
    if (list) out.push("</ul>");
    return out.join("").replace(/(<br>)+$/, "");
  }

  function renderCard(card, onPress) {
    const adaptive = new AdaptiveCards.AdaptiveCard();
    adaptive.hostConfig = hostConfig;
    adaptive.onExecuteAction = onPress;
    try {
      adaptive.parse(card);
      return adaptive.render();
    } catch (error) {
      const fallback = document.createElement("p");
      fallback.className = "error";
      fallback.textContent = card.fallbackText || "This card could not be shown.";
      return fallback;
    }
  }

  function when(iso) {
    if (!iso) return "";
    const moment = new Date(iso);
    return moment.toLocaleString(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function newEventId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "console:" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function botReply(reply, onPress) {
    const box = element("div", "bot-reply");
    box.appendChild(element("div", "meta", "Loss Prevention bot"));
    if (reply.markdown) {
      const text = element("div", "text");
      text.innerHTML = markdown(reply.markdown);
      box.appendChild(text);
    }
    if (reply.card) {
      const host = element("div", "card-host");
      host.appendChild(renderCard(reply.card, onPress));
      box.appendChild(host);
    }
    return box;
  }

  function renderItem(item) {
    const article = element("article", "message");
    article.dataset.item = item.id;
    article.id = "item-" + item.id;
    const onPress = (action) => press(action, article);
    const header = element("header", "meta");
    header.appendChild(element("span", "sender", "Loss Prevention bot"));
    if (item.at) header.appendChild(element("time", "", when(item.at)));
    if (item.decided) {
      const badge = element("span", "badge " + item.decided.status,
        `${item.decided.status} by ${item.decided.by || "someone"}` + (item.decided.reason ? ` (${item.decided.reason})` : ""));
      header.appendChild(badge);
    } else if (item.status === "open") {
      header.appendChild(element("span", "badge open", "open"));
    }
    if (item.url) {
      const link = element("a", "open", "Open alert");
      link.href = item.url;
      header.appendChild(link);
    }
    article.appendChild(header);
    if (item.markdown && !item.card) {
      const text = element("div", "text");
      text.innerHTML = markdown(item.markdown);
      article.appendChild(text);
    }
    if (item.card) {
      const host = element("div", "card-host");
      host.appendChild(renderCard(item.card, onPress));
      article.appendChild(host);
    }
    if (item.facts && item.facts.length) {
      const facts = element("details", "facts");
      facts.appendChild(element("summary", "", "Why: the facts the rule saw"));
      const table = element("table");
      for (const fact of item.facts) {
        const row = element("tr");
        row.appendChild(element("th", "", fact.name));
        row.appendChild(element("td", "", fact.value === null ? "—" : String(fact.value)));
        table.appendChild(row);
      }
      facts.appendChild(table);
      article.appendChild(facts);
    }
    for (const notice of item.notices || []) article.appendChild(element("p", "notice", notice));
    const thread = element("ol", "thread");
    for (const entry of item.thread || []) {
      const li = element("li", "reply");
      const meta = element("div", "meta");
      meta.appendChild(element("strong", "", entry.person_email));
      meta.appendChild(document.createTextNode(" pressed "));
      meta.appendChild(element("q", "", entry.title));
      meta.appendChild(element("time", "", when(entry.at)));
      li.appendChild(meta);
      for (const reply of entry.replies || []) li.appendChild(botReply(reply, onPress));
      thread.appendChild(li);
    }
    article.appendChild(thread);
    article.appendChild(element("p", "status"));
    return article;
  }

  async function press(action, article) {
    if (action instanceof AdaptiveCards.OpenUrlAction) {
      window.open(action.url, "_blank", "noopener");
      return;
    }
    if (!(action instanceof AdaptiveCards.SubmitAction) || typeof action.data !== "object") return;
    const status = article.querySelector(".status");
    article.classList.add("busy");
    status.textContent = "Sending…";
    try {
      const response = await fetch(view.dataset.actions, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ event_id: newEventId(), data: action.data, title: action.title || "" }),
      });
      if (response.status === 401) { window.location.reload(); return; }
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        status.textContent = "Not sent: " + (problem.detail || response.statusText);
        return;
      }
      status.textContent = "";
      await refresh();
    } catch (error) {
      status.textContent = "Not sent: the console cannot reach the service.";
    } finally {
      article.classList.remove("busy");
    }
  }

  function versionOf(item) {
    return item.version || JSON.stringify(item);
  }

  async function refresh() {
    let response;
    try {
      response = await fetch(view.dataset.source, { credentials: "same-origin", cache: "no-store" });
    } catch (error) {
      return;
    }
    if (response.status === 401) { window.location.reload(); return; }
    if (!response.ok) return;
    const { items } = await response.json();
    if (!shown.size) view.textContent = "";
    if (!items.length && !view.querySelector(".empty")) {
      view.appendChild(element("p", "empty quiet", "Nothing here yet. The bot posts here when a checkout needs a look."));
    }
    if (items.length) view.querySelectorAll(".empty").forEach((node) => node.remove());
    const wanted = new Set(items.map((item) => item.id));
    for (const [id, entry] of shown) {
      if (!wanted.has(id)) { entry.element.remove(); shown.delete(id); }
    }
    let previous = null;
    for (const item of items) {
      const entry = shown.get(item.id);
      const version = versionOf(item);
      let node = entry && entry.element;
      if (!entry || entry.version !== version) {
        const fresh = renderItem(item);
        if (node) node.replaceWith(fresh); else view.appendChild(fresh);
        node = fresh;
        shown.set(item.id, { version, element: node });
      }
      if (previous && previous.nextSibling !== node) previous.after(node);
      previous = node;
    }
  }

  refresh();
  const every = POLL_MS[view.dataset.view];
  if (every) window.setInterval(refresh, every);
})();
