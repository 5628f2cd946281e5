// The preview page: upload or capture, then draw regions and masks over the screenshot.
"use strict";

const state = { classes: [], colors: {}, shown: {}, opacity: 0.45, views: [], image: null };
const $ = (id) => document.getElementById(id);

function setStatus(text, busy, isError) {
  $("message").textContent = text;
  $("spinner").hidden = !busy;
  $("status").className = isError ? "error" : "";
}

// COCO RLE (pycocotools' compressed string), column-major runs starting with zeros.
function decodeCounts(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = 1;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p++; k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

function rgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

// One canvas per mask class, painted once in the class colour; drawing composites them.
function maskLayer(rle, color) {
  const [h, w] = rle.size;
  const layer = document.createElement("canvas");
  layer.width = w; layer.height = h;
  const ctx = layer.getContext("2d");
  const img = ctx.createImageData(w, h);
  const [r, g, b] = rgb(color);
  const counts = decodeCounts(rle.counts);
  let idx = 0;
  const bits = new Uint8Array(w * h);
  for (let i = 0; i < counts.length; i++) {
    if (i % 2 === 1) {
      for (let j = idx; j < idx + counts[i]; j++) {
        const y = j % h, x = (j - y) / h;
        bits[y * w + x] = 1;
      }
    }
    idx += counts[i];
  }
  for (let p = 0; p < bits.length; p++) {
    if (bits[p]) { const o = 4 * p; img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255; }
  }
  ctx.putImageData(img, 0, 0);
  return { canvas: layer, bits, w, h };
}

function draw(view) {
  const ctx = view.canvas.getContext("2d");
  ctx.globalAlpha = 1;
  ctx.drawImage(state.image, 0, 0);
  ctx.globalAlpha = state.opacity;
  for (const [name, layer] of Object.entries(view.layers)) {
    if (state.shown[name] !== false) ctx.drawImage(layer.canvas, 0, 0);
  }
  ctx.globalAlpha = 1;
  ctx.lineWidth = Math.max(2, view.canvas.width / 400);
  for (const r of view.record.regions || []) {
    if (state.shown[r.label] === false) continue;
    const color = state.colors[r.label] || "#808080";
    const [x, y, w, h] = r.bbox;
    ctx.globalAlpha = state.opacity * 0.35;
    ctx.fillStyle = color; ctx.fillRect(x, y, w, h);
    ctx.globalAlpha = 1;
    ctx.strokeStyle = color; ctx.strokeRect(x, y, w, h);
    ctx.fillStyle = color;
    ctx.font = `${Math.max(14, view.canvas.width / 60)}px sans-serif`;
    ctx.fillText(`${r.label} ${r.score.toFixed(2)}`, x + 4, y + Math.max(16, view.canvas.width / 55));
  }
}

function redraw() { state.views.forEach(draw); }

function buildLegend() {
  const legend = $("legend");
  legend.replaceChildren();
  for (const c of state.classes) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = state.shown[c.name] !== false;
    box.dataset.cls = c.name;
    box.addEventListener("change", () => { state.shown[c.name] = box.checked; redraw(); });
    const sw = document.createElement("span");
    sw.className = "swatch"; sw.style.background = c.color;
    label.append(box, sw, `${c.name} (${c.kind === "region" ? "region" : "mask"})`);
    legend.append(label);
  }
}

function pngUrl(layer) {
  const c = document.createElement("canvas");
  c.width = layer.w; c.height = layer.h;
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(layer.w, layer.h);
  for (let p = 0; p < layer.bits.length; p++) {
    const v = layer.bits[p] ? 255 : 0, o = 4 * p;
    img.data[o] = v; img.data[o + 1] = v; img.data[o + 2] = v; img.data[o + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c.toDataURL("image/png");
}

function buildDownloads(view) {
  const box = $("downloads");
  box.replaceChildren();
  const record = { ...view.record, masks: {} };
  const id = record.page_id || "page";
  const links = [];
  for (const [name, layer] of Object.entries(view.layers)) {
    const file = `${id}_mask_${name}.png`;
    record.masks[name] = file;
    links.push([file, () => pngUrl(layer)]);
  }
  const json = new Blob([JSON.stringify(record, null, 1)], { type: "application/json" });
  links.unshift(["preannotation.json", () => URL.createObjectURL(json)]);
  for (const [file, href] of links) {
    const a = document.createElement("a");
    a.textContent = file; a.download = file; a.href = "#";
    a.addEventListener("click", () => { a.href = href(); });
    box.append(a);
  }
}

function addView(title, record) {
  const view = { record, layers: {} };
  for (const [name, rle] of Object.entries(record.masks || {})) {
    view.layers[name] = maskLayer(rle, state.colors[name] || "#808080");
  }
  const wrap = document.createElement("div");
  wrap.className = "view";
  const h = document.createElement("h2");
  h.textContent = title;
  const scroll = document.createElement("div");
  scroll.className = "scroll";
  view.canvas = document.createElement("canvas");
  view.canvas.width = record.width; view.canvas.height = record.height;
  view.canvas.dataset.view = title;
  scroll.append(view.canvas);
  wrap.append(h, scroll);
  $("views").append(wrap);
  state.views.push(view);
  draw(view);
  return view;
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the image could not be shown"));
    img.src = src;
  });
}

async function answer(resp) {
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) throw new Error((body && body.error) || `HTTP ${resp.status}`);
  return body;
}

function reset() {
  state.views = [];
  $("views").replaceChildren();
  $("downloads").replaceChildren();
}

async function segmentFile(file) {
  reset();
  setStatus(`segmenting ${file.name}…`, true);
  const started = performance.now();
  try {
    const form = new FormData();
    form.append("image", file);
    const record = await answer(await fetch("/api/segment", { method: "POST", body: form }));
    state.image = await loadImage(URL.createObjectURL(file));
    const view = addView(`model ${record.meta.version}`, record);
    buildDownloads(view);
    $("controls").hidden = false;
    setStatus(`${record.regions.length} regions, ${record.width}x${record.height} px, ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`, false);
    document.body.dataset.ready = "1";
  } catch (err) {
    setStatus(err.message, false, true);
  }
}

async function captureUrl(url) {
  reset();
  setStatus(`capturing ${url} in a browser, then segmenting…`, true);
  try {
    const resp = await fetch("/api/capture", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ url }),
    });
    const out = await answer(resp);
    state.image = await loadImage(out.image);
    if (out.dom) addView("DOM pre-annotation", out.dom);
    const view = addView(`model ${out.model.meta.version}`, out.model);
    buildDownloads(view);
    $("controls").hidden = false;
    setStatus(`${out.url}: ${out.model.regions.length} regions from the model` +
      (out.dom ? `, ${out.dom.regions.length} from the DOM` : ""), false);
    document.body.dataset.ready = "1";
  } catch (err) {
    setStatus(err.message, false, true);
  }
}

async function init() {
  const info = await answer(await fetch("/api/classes"));
  state.classes = info.classes;
  for (const c of info.classes) state.colors[c.name] = c.color;
  $("version").textContent = `model ${info.model_version}`;
  buildLegend();
  $("opacity").addEventListener("input", (e) => { state.opacity = e.target.value / 100; redraw(); });
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) segmentFile(e.target.files[0]); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files[0]) segmentFile(e.dataTransfer.files[0]);
  });
  $("url-form").addEventListener("submit", (e) => { e.preventDefault(); captureUrl($("url").value); });
}

init().catch((err) => setStatus(err.message, false, true));
