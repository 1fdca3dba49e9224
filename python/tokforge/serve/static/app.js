// The tokforge playground page. Talks only to the server that served it (/api/...).
"use strict";

const SPAN_LIMIT = 3000; // tokens drawn as coloured boxes per tokenizer; the ids list has all
const TABLE_LIMIT = 500; // rows of the token table

const state = {
  tokenizers: [], // [{key, label, source, available, error, n_vocab}]
  selected: new Set(),
  limits: { text_bytes: 1000000, upload_bytes: 48000000, tokenizers: 8, model_tokens: 64 },
  pending: null, // AbortController of the request in flight
  timer: 0,
  results: [], // the last tokenize results
  model: null,
  artifactsShown: false,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

async function api(endpoint, body, signal) {
  const init = body === undefined ? { method: "GET" } : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  };
  let response;
  try {
    response = await fetch("/api/" + endpoint, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new Error("the tokforge server does not answer (was it stopped?)");
  }
  let data;
  try {
    data = await response.json();
  } catch (e) {
    throw new Error(`the server answered ${response.status} without JSON`);
  }
  if (!response.ok) throw new Error(data.error || `error ${response.status}`);
  return data;
}

function fmt(n) {
  return Number(n).toLocaleString("en-US");
}

function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}

function showError(id, message) {
  $(id).textContent = message || "";
}

// ------------------------------------------------------------------ tokenizer picker

async function loadTokenizers() {
  const data = await api("tokenizers");
  state.tokenizers = data.tokenizers;
  state.limits = data.limits;
  if (state.selected.size === 0) for (const k of data.defaults) state.selected.add(k);
  renderPicker();
}

function renderPicker() {
  const list = $("tok-list");
  list.replaceChildren();
  for (const t of state.tokenizers) {
    const id = "pick-" + t.key.replace(/[^A-Za-z0-9_-]/g, "_");
    const box = el("input", {
      type: "checkbox", id, value: t.key, checked: state.selected.has(t.key),
      disabled: !t.available,
      onchange: (ev) => {
        if (ev.target.checked) state.selected.add(t.key);
        else state.selected.delete(t.key);
        scheduleTokenize(0);
        refreshSelects();
      },
    });
    const note = t.available ? t.source : "unavailable";
    const label = el("label", { for: id, title: t.error || "" }, box, " ", t.label,
      el("span", { class: "muted small" }, ` ${note}`));
    list.append(el("div", { class: "tok-choice" }, label));
  }
  refreshSelects();
}

function selectedKeys() {
  // in the picker's order, whatever order they were ticked in
  return state.tokenizers.filter((t) => state.selected.has(t.key)).map((t) => t.key);
}

function refreshSelects() {
  const choices = state.tokenizers.filter((t) => t.available);
  for (const id of ["vocab-tok", "model-tok"]) {
    const select = $(id);
    const previous = select.value;
    select.replaceChildren(...choices.map((t) => el("option", { value: t.key }, t.label)));
    const first = selectedKeys()[0];
    if (choices.some((t) => t.key === previous)) select.value = previous;
    else if (first) select.value = first;
  }
}

async function uploadFiles(fileList) {
  showError("upload-error", "");
  const files = [...fileList];
  if (!files.length) return;
  const total = files.reduce((n, f) => n + f.size, 0);
  if (total > state.limits.upload_bytes) {
    showError("upload-error", `the files are ${fmt(total)} bytes; uploads take up to ` +
      `${fmt(state.limits.upload_bytes)} (pass bigger ones with tokforge serve --tokenizer FILE)`);
    return;
  }
  $("upload-status").textContent = "reading " + files.map((f) => f.name).join(", ") + "...";
  try {
    const payload = [];
    for (const f of files) payload.push({ name: f.name, data: await toBase64(f) });
    const body = { files: payload };
    const pre = $("upload-pretokenizer").value;
    if (pre) body.pretokenizer = pre;
    const made = await api("upload", body);
    state.selected.add(made.key);
    await loadTokenizers();
    $("upload-status").textContent = `added ${made.label} (${fmt(made.n_vocab)} tokens)`;
    scheduleTokenize(0);
  } catch (e) {
    $("upload-status").textContent = "";
    showError("upload-error", e.message);
  } finally {
    $("upload").value = "";
  }
}

function toBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(",") + 1));
    };
    reader.onerror = () => reject(new Error(`${file.name}: could not be read`));
    reader.readAsDataURL(file);
  });
}

// ------------------------------------------------------------------ tokens

function scheduleTokenize(delay) {
  clearTimeout(state.timer);
  state.timer = setTimeout(tokenize, delay === undefined ? 150 : delay);
}

async function tokenize() {
  const text = $("text").value;
  const size = utf8Length(text);
  $("text-info").textContent = `${fmt([...text].length)} characters · ${fmt(size)} bytes`;
  if (state.pending) state.pending.abort();
  if (size > state.limits.text_bytes) {
    showError("tokenize-error", `the text is ${fmt(size)} bytes; the playground takes up to ` +
      `${fmt(state.limits.text_bytes)} bytes (1 MB).`);
    return;
  }
  const keys = selectedKeys();
  if (!keys.length) {
    showError("tokenize-error", "choose at least one tokenizer");
    $("splits").replaceChildren();
    return;
  }
  const controller = new AbortController();
  state.pending = controller;
  try {
    const data = await api("tokenize", { text, tokenizers: keys, detail_limit: SPAN_LIMIT }, controller.signal);
    showError("tokenize-error", "");
    state.results = data.results;
    renderSplits(data.results);
  } catch (e) {
    if (e.name !== "AbortError") showError("tokenize-error", e.message);
  } finally {
    if (state.pending === controller) state.pending = null;
  }
}

function tokenColour(result, i, alt) {
  const pair = result.palette[String(result.ids[i])];
  return alt.has(i) ? pair[1] : pair[0];
}

function renderSplits(results) {
  const box = $("splits");
  box.replaceChildren();
  for (const r of results) box.append(renderSplit(r));
}

function renderSplit(r) {
  const alt = new Set(r.alt_at);
  const partial = new Set(r.partial_ids);
  const special = new Set(r.special_ids);
  const shown = Math.min(r.n_detailed, SPAN_LIMIT);
  const text = el("div", {
    class: "tok-text", role: "group", "aria-label": `${r.label}: ${r.n_tokens} tokens`,
  });
  for (let i = 0; i < shown; i++) {
    const id = r.ids[i];
    const classes = ["tok"];
    if (special.has(id)) classes.push("special");
    if (partial.has(id)) classes.push("partial");
    const span = el("span", {
      class: classes.join(" "), tabindex: i === 0 ? "0" : "-1", "data-i": i, "data-id": id,
      title: `id ${id} · bytes ${r.byte_offsets[i]}:${r.byte_offsets[i + 1]} · chars ` +
        `${r.char_starts[i]}:${r.char_ends[i]}`,
    }, r.pieces[String(id)].replaceAll("↵", "↵\n"));
    span.style.backgroundColor = tokenColour(r, i, alt);
    text.append(span);
  }
  text.addEventListener("click", (ev) => {
    const span = ev.target.closest(".tok");
    if (span) selectToken(r, span);
  });
  text.addEventListener("keydown", (ev) => onTokenKey(ev, r));
  const more = r.ids.length > shown
    ? el("p", { class: "muted small" }, `Showing the first ${fmt(shown)} of ${fmt(r.ids.length)} ` +
      "tokens as boxes; the id list below has all of them.")
    : null;
  const counts = el("dl", { class: "counts" },
    el("div", null, el("dt", null, "tokens"), el("dd", { class: "n-tokens" }, fmt(r.n_tokens))),
    el("div", null, el("dt", null, "characters"), el("dd", null, fmt(r.n_chars))),
    el("div", null, el("dt", null, "bytes"), el("dd", null, fmt(r.n_bytes))),
    el("div", null, el("dt", null, "tokens per 1k chars"), el("dd", null, r.tokens_per_1k_chars)),
    el("div", null, el("dt", null, "chars per token"), el("dd", null, r.chars_per_token)));
  const idsId = "ids-" + r.key.replace(/[^A-Za-z0-9_-]/g, "_");
  const ids = el("textarea", {
    id: idsId, class: "ids", readonly: true, rows: 2, spellcheck: "false",
    "aria-label": `${r.label} token ids`,
  });
  ids.value = r.ids.join(", ");
  const copy = el("button", {
    type: "button", class: "copy",
    onclick: () => copyText(ids, copy),
  }, "Copy ids");
  const norm = r.bytes_are_text ? null : el("p", { class: "muted small" },
    "This tokenizer normalises the text, so its tokens' bytes differ from the text's.");
  return el("article", { class: "split", "data-key": r.key },
    el("h2", null, r.label), counts, norm, text, more,
    el("div", { class: "ids-row" }, el("label", { for: idsId, class: "small" }, "ids"), ids, copy),
    tokenTable(r));
}

function tokenTable(r) {
  const body = el("tbody");
  const n = Math.min(r.n_detailed, TABLE_LIMIT);
  for (let i = 0; i < n; i++) {
    body.append(el("tr", null, el("td", null, i), el("td", null, r.ids[i]),
      el("td", { class: "mono" }, r.pieces[String(r.ids[i])]),
      el("td", { class: "mono" }, `${r.byte_offsets[i]}:${r.byte_offsets[i + 1]}`)));
  }
  const note = r.ids.length > n ? ` (first ${fmt(n)})` : "";
  return el("details", { class: "table" },
    el("summary", null, `Table of tokens${note}`),
    el("table", null, el("thead", null, el("tr", null, el("th", { scope: "col" }, "#"),
      el("th", { scope: "col" }, "id"), el("th", { scope: "col" }, "token"),
      el("th", { scope: "col" }, "bytes"))), body));
}

async function copyText(area, button) {
  const old = button.textContent;
  try {
    await navigator.clipboard.writeText(area.value);
    button.textContent = "Copied";
  } catch (e) {
    area.focus();
    area.select();
    button.textContent = "Selected: press Ctrl+C";
  }
  setTimeout(() => { button.textContent = old; }, 1500);
}

function onTokenKey(ev, r) {
  const span = ev.target.closest(".tok");
  if (!span) return;
  let next = null;
  if (ev.key === "ArrowRight" || ev.key === "ArrowDown") next = span.nextElementSibling;
  else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") next = span.previousElementSibling;
  else if (ev.key === "Home") next = span.parentElement.firstElementChild;
  else if (ev.key === "End") next = span.parentElement.lastElementChild;
  else if (ev.key === "Enter" || ev.key === " ") {
    ev.preventDefault();
    selectToken(r, span);
    return;
  }
  if (next) {
    ev.preventDefault();
    span.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }
}

async function selectToken(r, span) {
  for (const old of document.querySelectorAll(".tok.selected")) old.classList.remove("selected");
  span.classList.add("selected");
  const i = Number(span.dataset.i);
  const box = $("token-detail");
  box.replaceChildren(el("h2", null, "Token"), el("p", { class: "muted" }, "loading..."));
  try {
    const data = await api("lineage", { tokenizer: r.key, token: r.ids[i] });
    box.replaceChildren(el("h2", null, "Token"), lineageView(data, r.label, i));
  } catch (e) {
    box.replaceChildren(el("h2", null, "Token"), el("p", { class: "error" }, e.message));
  }
}

function lineageView(data, label, position) {
  const where = position === undefined ? label : `${label}, token ${position}`;
  const tree = el("ul", { class: "tree", "aria-label": "lineage tree" }, treeNode(data.tree));
  const steps = el("ol", { class: "steps mono" }, ...data.steps.map((s) => el("li", null, s)));
  return el("div", { class: "lineage", "data-token": data.token },
    el("p", { class: "big mono" }, el("span", { class: "tok solo" }, data.text)),
    el("dl", { class: "facts" },
      el("dt", null, "id"), el("dd", null, el("code", { class: "copyable" }, String(data.token))),
      el("dt", null, "bytes"), el("dd", { class: "mono" }, data.hex),
      el("dt", null, "kind"), el("dd", null, data.kind),
      el("dt", null, "merges"), el("dd", null, `${data.steps.length} (depth ${data.depth}, from ` +
        `${data.source === "ranks" ? "the ranks" : "the recorded merges"})`),
      el("dt", null, "in"), el("dd", null, where)),
    el("h3", null, "Lineage"), tree,
    el("h3", null, "Merges in order"), steps);
}

function treeNode(node) {
  const head = el("span", { class: "node" }, el("span", { class: "mono piece" }, node.text),
    el("span", { class: "muted" }, ` ${node.id}`),
    node.merged === false ? el("span", { class: "muted" }, " (no merge joins these parts)") : null);
  const li = el("li", null, head);
  if (node.parts) li.append(el("ul", null, ...node.parts.map(treeNode)));
  return li;
}

// ------------------------------------------------------------------ tabs

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const activate = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (tab.id === "tab-artifacts" && !state.artifactsShown) showArtifacts();
    if (tab.id === "tab-vocab" && !$("vocab-results").children.length) vocabSearch("search");
  };
  tabs.forEach((tab, k) => {
    tab.addEventListener("click", () => activate(tab));
    tab.addEventListener("keydown", (ev) => {
      let j = null;
      if (ev.key === "ArrowRight") j = (k + 1) % tabs.length;
      if (ev.key === "ArrowLeft") j = (k - 1 + tabs.length) % tabs.length;
      if (ev.key === "Home") j = 0;
      if (ev.key === "End") j = tabs.length - 1;
      if (j !== null) {
        ev.preventDefault();
        tabs[j].focus();
        activate(tabs[j]);
      }
    });
  });
}

// ------------------------------------------------------------------ artifacts

async function showArtifacts() {
  state.artifactsShown = true;
  showError("artifacts-error", "");
  const strings = $("extra").value.split("\n").filter((s) => s.trim());
  const gallery = $("gallery");
  gallery.replaceChildren(el("p", { class: "muted" }, "splitting..."));
  try {
    const data = await api("artifacts", { tokenizers: selectedKeys(), strings });
    gallery.replaceChildren(...data.artifacts.map(artifactSection));
  } catch (e) {
    gallery.replaceChildren();
    showError("artifacts-error", e.message);
  }
}

function artifactSection(a) {
  const rows = [];
  let current = null;
  for (const row of a.rows) {
    const key = row.label + "\u0000" + row.text;
    if (key !== current) {
      current = key;
      rows.push(el("h4", { class: "sample" }, row.label ? `${row.label}: ` : "",
        el("span", { class: "mono" }, JSON.stringify(row.text))));
    }
    const alt = new Set(row.alt_at);
    const text = el("span", { class: "tok-text inline" });
    row.pieces.forEach((p, i) => {
      const span = el("span", { class: "tok", "data-id": row.ids[i], title: `id ${row.ids[i]}` },
        p.replaceAll("↵", "↵\n"));
      const pair = row.palette[String(row.ids[i])];
      span.style.backgroundColor = alt.has(i) ? pair[1] : pair[0];
      if (pair[0] === "#24292f") span.classList.add("special");
      text.append(span);
    });
    rows.push(el("div", { class: "art-row" },
      el("span", { class: "who" }, el("b", null, row.tokenizer), ` ${row.ids.length} tokens`),
      text, el("span", { class: "note" }, row.note)));
  }
  return el("section", { class: "artifact", "data-key": a.key },
    el("h3", null, a.title), el("p", { class: "why" }, a.why), ...rows);
}

// ------------------------------------------------------------------ vocabulary

async function vocabSearch(mode) {
  showError("vocab-error", "");
  const key = $("vocab-tok").value;
  if (!key) {
    showError("vocab-error", "choose a tokenizer");
    return;
  }
  const body = mode === "longest"
    ? { tokenizer: key, mode, limit: 100 }
    : {
      tokenizer: key, mode, query: $("vocab-query").value, regex: $("vocab-regex").checked,
      ignore_case: $("vocab-case").checked, limit: 200,
    };
  const list = $("vocab-results");
  try {
    const data = await api("vocab", body);
    const what = mode === "longest" ? "the longest tokens" :
      `${fmt(data.entries.length)}${data.truncated ? "+" : ""} tokens containing the query`;
    $("vocab-info").textContent = `${what}; choose one for its lineage`;
    list.replaceChildren(...data.entries.map((e) => el("li", null, el("button", {
      type: "button", class: "vocab-entry", "data-id": e.id, title: `bytes ${e.hex}`,
      onclick: () => vocabLineage(key, e.id),
    }, el("span", { class: "mono piece" }, e.text), el("span", { class: "muted" }, ` ${e.id}`)))));
  } catch (e) {
    list.replaceChildren();
    $("vocab-info").textContent = "";
    showError("vocab-error", e.message);
  }
}

async function vocabLineage(key, id) {
  const box = $("vocab-lineage");
  try {
    const data = await api("lineage", { tokenizer: key, token: id });
    const label = (state.tokenizers.find((t) => t.key === key) || { label: key }).label;
    box.replaceChildren(el("h2", null, "Token"), lineageView(data, label));
  } catch (e) {
    box.replaceChildren(el("p", { class: "error" }, e.message));
  }
}

// ------------------------------------------------------------------ transformer

async function runModel() {
  showError("model-error", "");
  const key = $("model-tok").value;
  try {
    const data = await api("model", { tokenizer: key, text: $("text").value });
    state.model = data;
    $("model-out").hidden = false;
    $("model-weights").textContent = data.weights;
    $("model-weights").classList.toggle("random", data.random);
    const c = data.config;
    $("model-config").textContent = `${data.ids.length} tokens${data.truncated ?
      ` (the first ${data.ids.length})` : ""} · vocabulary ${fmt(c.vocab_size)} · d_model ` +
      `${c.d_model} · ${c.n_layers} layers · ${c.n_heads} heads · ${c.positional} positions`;
    fillSelect($("model-layer"), c.n_layers);
    fillSelect($("model-head"), c.n_heads);
    drawAttention();
    const body = $("next-table").tBodies[0];
    const top = data.next.length ? data.next[0].p : 1;
    body.replaceChildren(...data.next.map((n, k) => el("tr", null, el("td", null, k + 1),
      el("td", { class: "mono" }, n.text), el("td", null, n.id),
      el("td", null, el("span", { class: "bar-wrap" },
        el("span", { class: "bar", "data-w": (100 * n.p / top).toFixed(1) })),
        ` ${(100 * n.p).toPrecision(3)}%`))));
    for (const bar of body.querySelectorAll(".bar")) bar.style.width = bar.dataset.w + "%";
  } catch (e) {
    showError("model-error", e.message);
  }
}

function fillSelect(select, n) {
  const old = Number(select.value) || 0;
  select.replaceChildren(...Array.from({ length: n }, (_, i) => el("option", { value: i }, i)));
  select.value = String(Math.min(old, n - 1));
}

function drawAttention() {
  const data = state.model;
  if (!data) return;
  const layer = Number($("model-layer").value);
  const head = Number($("model-head").value);
  const w = data.attention[layer][head];
  const n = w.length;
  const canvas = $("attention");
  const ctx = canvas.getContext("2d");
  const margin = 110;
  const cell = Math.max(4, Math.floor((canvas.width - margin - 10) / n));
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let q = 0; q < n; q++) {
    for (let k = 0; k < n; k++) {
      ctx.fillStyle = heat(w[q][k]);
      ctx.fillRect(margin + k * cell, margin + q * cell, cell - (cell > 6 ? 1 : 0),
        cell - (cell > 6 ? 1 : 0));
    }
  }
  ctx.fillStyle = "#1f2328";
  ctx.font = `${Math.min(12, Math.max(8, cell - 2))}px ui-monospace, monospace`;
  ctx.textBaseline = "middle";
  const label = (i) => data.pieces[i].slice(0, 12);
  for (let i = 0; i < n; i++) {
    ctx.textAlign = "right";
    ctx.fillText(label(i), margin - 4, margin + i * cell + cell / 2);
    ctx.save();
    ctx.translate(margin + i * cell + cell / 2, margin - 4);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "left";
    ctx.fillText(label(i), 0, 0);
    ctx.restore();
  }
  const last = w[n - 1];
  let best = 0;
  for (let k = 1; k < n; k++) if (last[k] > last[best]) best = k;
  const text = `Layer ${layer}, head ${head}: rows are queries, columns the keys they attend to ` +
    `(darker: more weight). The last token puts ${(100 * last[best]).toFixed(1)}% of its ` +
    `weight on token ${best} (${data.pieces[best]}).`;
  $("attention-info").textContent = text;
  canvas.setAttribute("aria-label", text);
}

function heat(v) {
  // white (0) to deep blue (1): readable on white, monotone in lightness
  const t = Math.max(0, Math.min(1, v));
  const r = Math.round(255 - t * (255 - 8));
  const g = Math.round(255 - t * (255 - 48));
  const b = Math.round(255 - t * (255 - 107));
  return `rgb(${r},${g},${b})`;
}

// ------------------------------------------------------------------ start

function start() {
  setupTabs();
  $("text").addEventListener("input", () => scheduleTokenize());
  $("upload").addEventListener("change", (ev) => uploadFiles(ev.target.files));
  $("artifacts-run").addEventListener("click", showArtifacts);
  $("vocab-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    vocabSearch("search");
  });
  $("vocab-longest").addEventListener("click", () => vocabSearch("longest"));
  $("model-run").addEventListener("click", runModel);
  $("model-layer").addEventListener("change", drawAttention);
  $("model-head").addEventListener("change", drawAttention);
  loadTokenizers().then(() => tokenize()).catch((e) => showError("tokenize-error", e.message));
}

document.addEventListener("DOMContentLoaded", start);
