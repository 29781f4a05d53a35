/* PlantBot review: keyboard-first moderation.  Actions are sent in the background and the next
   proposal gets the focus at once; each card shows "posting…" and then the result.  Every word the
   script shows comes from the page (data-i18n), translated on the server.  Without this script the
   forms still work (plain POST and redirect). */
(function () {
  "use strict";
  const T = JSON.parse(document.body.dataset.i18n || "{}");
  const TILES = document.body.dataset.tiles || "";
  const ATTRIBUTION = document.body.dataset.attribution || "";
  const container = document.querySelector(".cards");
  const keysDialog = document.querySelector("dialog.keys");
  const lightbox = document.querySelector("dialog.lightbox");
  let current = null;
  let fetchingMore = false;
  let noMore = false;

  const cards = () => Array.from(document.querySelectorAll("article.card"));
  const pending = () => cards().filter((c) => !c.dataset.state || c.dataset.state === "error" ||
                                              c.dataset.state === "invalid");

  function say(card, text, link) {
    const status = card.querySelector(".status");
    status.textContent = text;
    if (link) {
      const a = document.createElement("a");
      a.href = link; a.target = "_blank"; a.rel = "noopener noreferrer";
      a.textContent = T.view || "view";
      a.dataset.testid = "posted-link-" + card.dataset.id;
      status.append(" ", a);
    }
  }

  function focusCard(card, scroll) {
    if (!card) { return; }
    if (current) { current.classList.remove("current"); }
    current = card;
    card.classList.add("current");
    card.focus({ preventScroll: true });
    if (scroll !== false) { card.scrollIntoView({ block: "start", behavior: "instant" }); }
    initMap(card);
    const after = pending().filter((c) => c !== card && follows(card, c));
    if (after.length) { initMap(after[0]); }
    if (after.length < 6) { loadMore(); }
  }

  function follows(a, b) {
    return Boolean(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING);
  }

  function nextPending(from) {
    const list = pending();
    return list.find((c) => c !== from && follows(from, c)) || list.find((c) => c !== from) || null;
  }

  function move(step) {
    const list = cards();
    if (!current) { focusCard(list[0]); return; }
    const i = list.indexOf(current);
    focusCard(list[Math.max(0, Math.min(list.length - 1, i + step))]);
  }

  function updateEmpty() {
    const empty = document.querySelector("[data-testid=empty]");
    if (empty && !pending().length) { empty.hidden = false; empty.textContent = T.done || empty.textContent; }
  }

  /* --- background actions --- */
  async function send(form) {
    const card = form.closest("article.card");
    const action = form.dataset.action;
    const body = new FormData(form);
    card.dataset.state = "working";
    card.querySelectorAll("button, input, textarea").forEach((el) => { el.disabled = true; });
    say(card, action === "approve" || action === "edit" ? T.posting : T.working);
    if (card === current) { focusCard(nextPending(card) || card); }
    let answer;
    try {
      const resp = await fetch(form.action, { method: "POST", body: body,
                                               headers: { "X-Requested-With": "fetch" } });
      answer = await resp.json();
    } catch (err) {
      answer = { ok: false, state: "error", message: T.network };
    }
    card.querySelectorAll("button, input, textarea").forEach((el) => { el.disabled = false; });
    card.dataset.state = answer.ok ? answer.state : (answer.state === "invalid" ? "invalid" : "error");
    say(card, answer.message, answer.link);
    if (!answer.ok && action === "edit") {
      card.querySelector(".edit-error").textContent = answer.message;
      card.querySelector("details.edit").open = true;
    }
    if (answer.ok) { card.querySelectorAll(".actions button, details.edit button").forEach((b) => { b.disabled = true; }); }
    updateEmpty();
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.action) { return; }
    ev.preventDefault();
    const card = form.closest("article.card");
    if (card.dataset.state === "working") { return; }
    send(form);
  });

  function approve(card) {
    const edit = card.querySelector("form[data-action=edit]");
    const changed = edit.dataset.dirty === "1" ||
      edit.querySelector("input[name=taxon_id]").value !== (card.dataset.taxonId || "");
    (changed ? edit : card.querySelector("form[data-action=approve]")).requestSubmit();
  }

  /* --- choosing a taxon, live preview of the text --- */
  async function choose(card, taxonId, name) {
    const form = card.querySelector("form[data-action=edit]");
    form.querySelector("input[name=taxon_id]").value = taxonId;
    form.querySelector(".chosen-name").textContent = name;
    card.querySelectorAll("button.pick").forEach((b) => {
      const chosen = b.dataset.taxonId === String(taxonId);
      b.closest("tr").classList.toggle("chosen", chosen);
      b.setAttribute("aria-pressed", String(chosen));  // said by screen readers, shown as a sign
    });
    card.querySelector("details.edit").open = true;
    form.querySelector(".edit-error").textContent = "";
    const body = new FormData();
    body.append("csrf_token", form.querySelector("input[name=csrf_token]").value);
    body.append("taxon_id", taxonId);
    let answer;
    try {
      const resp = await fetch(card.dataset.preview, { method: "POST", body: body,
                                                       headers: { "X-Requested-With": "fetch" } });
      answer = await resp.json();
    } catch (err) {
      answer = { ok: false, message: T.network };
    }
    if (!answer.ok) { form.querySelector(".edit-error").textContent = answer.message; return; }
    const area = form.querySelector("textarea");
    if (form.dataset.dirty !== "1") {
      area.value = answer.text;
      card.querySelector("blockquote.text").textContent = answer.text;
    }
    card.querySelector(".post-kind").textContent = answer.identification ? T.ident : T.comment;
  }

  document.addEventListener("input", (ev) => {
    const el = ev.target;
    if (el.matches("details.edit textarea")) {
      const card = el.closest("article.card");
      el.form.dataset.dirty = "1";
      card.querySelector("blockquote.text").textContent = el.value;
    } else if (el.matches("input.taxon-search")) {
      clearTimeout(el._timer);
      el._timer = setTimeout(() => search(el), 200);
    }
  });

  async function search(input) {
    const card = input.closest("article.card");
    const list = card.querySelector("ul.results");
    const q = input.value.trim();
    list.replaceChildren();
    if (q.length < 2) { return; }
    list.append(li(T.searching, "muted"));
    let answer;
    try {
      const resp = await fetch(input.dataset.url + "?q=" + encodeURIComponent(q));
      answer = await resp.json();
    } catch (err) {
      answer = { ok: false, message: T.network };
    }
    if (input.value.trim() !== q) { return; }
    list.replaceChildren();
    if (!answer.ok) { list.append(li(answer.message, "error")); return; }
    if (!answer.results.length) { list.append(li(T.nomatch, "muted")); return; }
    for (const t of answer.results) {
      const item = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button"; b.className = "result"; b.setAttribute("role", "option");
      b.dataset.taxonId = t.id; b.dataset.name = t.name;
      b.textContent = t.name + " (" + t.rank + (t.common_name ? ", " + t.common_name : "") + ")";
      item.append(b);
      list.append(item);
    }
  }

  function li(text, cls) {
    const item = document.createElement("li");
    item.className = cls; item.textContent = text;
    return item;
  }

  document.addEventListener("click", (ev) => {
    const el = ev.target.closest("button");
    if (!el) { return; }
    const card = el.closest("article.card");
    if (el.matches("button.pick, button.result") && el.dataset.taxonId) {
      if (card !== current) { focusCard(card, false); }
      choose(card, el.dataset.taxonId, el.dataset.name);
    } else if (el.matches("button.edit-toggle")) {
      openEdit(card);
    } else if (el.matches("button.photo")) {
      openLightbox(card, Number(el.dataset.index));
    } else if (el.matches("[data-testid=keys-open]")) {
      keysDialog.showModal();
    } else if (el.matches(".lb-prev")) { showPhoto(lb.index - 1);
    } else if (el.matches(".lb-next")) { showPhoto(lb.index + 1);
    } else if (el.matches(".lb-zoom")) { lightbox.classList.toggle("zoomed");
    } else if (el.matches(".lb-close")) { lightbox.close(); }
  });

  document.addEventListener("focusin", (ev) => {
    const card = ev.target.closest && ev.target.closest("article.card");
    if (card && card !== current) { focusCard(card, false); }
  });

  function openEdit(card) {
    const details = card.querySelector("details.edit");
    details.open = true;
    card.querySelector("input.taxon-search").focus();
  }

  /* --- the photo lightbox --- */
  const lb = { urls: [], index: 0 };

  function openLightbox(card, index) {
    lb.urls = Array.from(card.querySelectorAll("button.photo")).map((b) => b.dataset.large);
    if (!lb.urls.length) { return; }
    lightbox.classList.remove("zoomed");
    lightbox.showModal();
    showPhoto(index || 0);
  }

  function showPhoto(index) {
    lb.index = (index + lb.urls.length) % lb.urls.length;
    const img = lightbox.querySelector("img");
    img.src = lb.urls[lb.index];
    img.alt = (T.photo || "").replace("%(n)s", lb.index + 1).replace("%(total)s", lb.urls.length);
    lightbox.querySelector(".lb-count").textContent = img.alt;
  }

  /* --- the map: Leaflet with the configured tiles; without tiles the point still shows --- */
  function initMap(card) {
    const el = card && card.querySelector(".map");
    if (!el || el.dataset.ready || !window.L) { return; }
    el.dataset.ready = "1";
    const at = [Number(el.dataset.lat), Number(el.dataset.lng)];
    const map = window.L.map(el, { scrollWheelZoom: false, keyboard: false, zoomControl: false }).setView(at, 13);
    window.L.control.zoom({ zoomInTitle: T.zoomin, zoomOutTitle: T.zoomout }).addTo(map);  // in the page's language
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    if (TILES) { window.L.tileLayer(TILES, { attribution: ATTRIBUTION, maxZoom: 18 }).addTo(map); }
    const acc = Number(el.dataset.acc);
    if (acc > 0) { window.L.circle(at, { radius: acc, weight: 1 }).addTo(map); }
    window.L.circleMarker(at, { radius: 6, weight: 2, fillOpacity: 0.9 }).addTo(map);
  }

  /* --- more cards before the page runs out --- */
  async function loadMore() {
    if (fetchingMore || noMore || !container || !container.dataset.more) { return; }
    fetchingMore = true;
    try {
      const held = cards().map((c) => c.dataset.id).join(",");
      const url = container.dataset.more + (container.dataset.more.includes("?") ? "&" : "?") + "exclude=" + held;
      const resp = await fetch(url, { headers: { "X-Requested-With": "fetch" } });
      const html = await resp.text();
      const tpl = document.createElement("template");
      tpl.innerHTML = html;
      const have = new Set(cards().map((c) => c.dataset.id));
      const found = Array.from(tpl.content.querySelectorAll("article.card"));
      if (!found.length) { noMore = true; }
      let added = 0;
      found.forEach((c) => {
        if (!have.has(c.dataset.id)) { container.append(c); added += 1; }
      });
      if (added) { document.querySelector("[data-testid=empty]").hidden = true; }
      const stuck = !current || (current.dataset.state && !["error", "invalid"].includes(current.dataset.state));
      if (stuck && added) { focusCard(nextPending(current || cards()[0])); }
    } catch (err) {
      noMore = true;
    } finally {
      fetchingMore = false;
    }
  }

  /* --- keys --- */
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    const t = ev.target;
    if (lightbox && lightbox.open) {
      if (ev.key === "ArrowRight") { showPhoto(lb.index + 1); ev.preventDefault(); }
      else if (ev.key === "ArrowLeft") { showPhoto(lb.index - 1); ev.preventDefault(); }
      else if (ev.key === "z") { lightbox.classList.toggle("zoomed"); ev.preventDefault(); }
      return;
    }
    if (keysDialog && keysDialog.open) { return; }
    const typing = t.isContentEditable || (t.matches && t.matches("input, textarea, select"));
    if (typing) {
      if (ev.key === "Escape") { t.blur(); if (current) { current.focus({ preventScroll: true }); } }
      else if (ev.key === "Enter" && t.matches("input.taxon-search")) {
        ev.preventDefault();
        const first = t.closest("article.card").querySelector("button.result");
        if (first) { first.click(); }
      }
      return;
    }
    const card = current;
    const handled = (() => {
      switch (ev.key) {
        case "j": case "ArrowDown": move(1); return true;
        case "k": case "ArrowUp": move(-1); return true;
        case "?": keysDialog.showModal(); return true;
        default: break;
      }
      if (!card || card.dataset.state === "working" || ["posted", "rejected", "skipped", "info"].includes(card.dataset.state)) {
        return false;
      }
      switch (ev.key) {
        case "a": approve(card); return true;
        case "e": openEdit(card); return true;
        case "r": card.querySelector("input[name=reason]").focus(); return true;
        case "x": card.querySelector("form[data-action=reject]").requestSubmit(); return true;
        case "s": {
          const skip = card.querySelector("form[data-action=skip]");
          if (skip) { skip.requestSubmit(); }
          return true;
        }
        case "z": openLightbox(card, 0); return true;
        default: break;
      }
      if (/^[1-5]$/.test(ev.key)) {
        const pick = card.querySelector("button.pick[data-key='" + ev.key + "']");
        if (pick && pick.dataset.taxonId) { choose(card, pick.dataset.taxonId, pick.dataset.name); }
        return true;
      }
      return false;
    })();
    if (handled) { ev.preventDefault(); }
  });

  const first = pending()[0];
  if (first) { focusCard(first, false); }
})();
