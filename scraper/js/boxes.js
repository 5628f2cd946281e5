// Extract the visual objects of the page in one call: text runs per line, images,
// interactive elements, landmarks and block containers, in document CSS pixels.
// Called as a function body by Selenium: arguments[0] = {maxText}.
// Returns {boxes, links, title, docWidth, docHeight}.
const opts = arguments[0] || {};
const MAX_TEXT = opts.maxText || 200;
const sx = window.scrollX, sy = window.scrollY;
const vw = window.innerWidth, vh = window.innerHeight;
const root = document.documentElement;
const body = document.body || root;
const docWidth = Math.max(root.scrollWidth, body.scrollWidth, root.clientWidth);
const docHeight = Math.max(root.scrollHeight, body.scrollHeight, root.clientHeight,
  body.offsetHeight || 0);

const SKIP_TAGS = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "HEAD", "META",
  "LINK", "TITLE", "BASE", "OPTION", "DATALIST"]);
const IMAGE_TAGS = new Set(["IMG", "SVG", "CANVAS", "VIDEO", "PICTURE", "OBJECT", "EMBED"]);
const INTERACTIVE_ROLES = new Set(["button", "link", "checkbox", "radio", "tab", "menuitem",
  "menuitemcheckbox", "menuitemradio", "switch", "option", "combobox", "textbox",
  "searchbox", "slider", "spinbutton"]);
const LANDMARK_TAGS = {HEADER: "header", NAV: "nav", MAIN: "main", ASIDE: "aside",
  FOOTER: "footer", SEARCH: "search"};
const LANDMARK_ROLES = {banner: "header", navigation: "nav", main: "main",
  complementary: "aside", contentinfo: "footer", search: "search", form: "form",
  region: "region"};
const BLOCK_DISPLAYS = new Set(["block", "flex", "grid", "table", "list-item", "flow-root",
  "table-cell", "inline-block", "inline-flex", "inline-grid", "table-row", "table-row-group"]);

const styleCache = new Map();
function style(el) {
  let s = styleCache.get(el);
  if (!s) { s = getComputedStyle(el); styleCache.set(el, s); }
  return s;
}

function docRect(r) {
  return [r.left + sx, r.top + sy, r.width, r.height];
}

function intersect(a, b) {
  const x1 = Math.max(a[0], b[0]), y1 = Math.max(a[1], b[1]);
  const x2 = Math.min(a[0] + a[2], b[0] + b[2]), y2 = Math.min(a[1] + a[3], b[1] + b[3]);
  return [x1, y1, Math.max(0, x2 - x1), Math.max(0, y2 - y1)];
}

// The visible part of an element's content after every overflow-clipping ancestor,
// with the reason it is hidden, if it is. Cached per element: children share ancestors.
const clipCache = new Map();
function clipOf(el) {
  if (!el || el === root || el.nodeType !== 1) {
    return {rect: [0, 0, docWidth, docHeight], reason: "", opacity: 1};
  }
  let c = clipCache.get(el);
  if (c) return c;
  const parent = clipOf(el.parentElement);
  const s = style(el);
  let rect = parent.rect, reason = parent.reason;
  let opacity = parent.opacity * parseFloat(s.opacity || "1");
  if (!reason && (s.visibility === "hidden" || s.visibility === "collapse")) reason = "visibility";
  if (!reason && opacity < 0.05) reason = "opacity";
  const clips = (v) => v === "hidden" || v === "clip" || v === "scroll" || v === "auto";
  if (el !== body && (clips(s.overflowX) || clips(s.overflowY))) {
    const r = el.getBoundingClientRect();
    const d = docRect(r);
    // Clip in the clipping axis only: overflow-x hidden still lets content run down.
    const box = [clips(s.overflowX) ? d[0] : -1e7, clips(s.overflowY) ? d[1] : -1e7,
      clips(s.overflowX) ? d[2] : 2e7, clips(s.overflowY) ? d[3] : 2e7];
    rect = intersect(rect, box);
  }
  if (s.position === "fixed") {
    // Fixed elements escape their ancestors' overflow and are painted at scroll 0.
    rect = [0, 0, docWidth, docHeight];
  }
  c = {rect, reason, opacity};
  clipCache.set(el, c);
  return c;
}

// CSS paths as a tree: each element's path is its parent's plus one step, so the paths of
// thousands of boxes travel as [parent, step] pairs and are joined on the other side.
const pathNodes = [];  // [parent node index or -1, step]
const pathCache = new Map();
// Counted for all the children of a parent at once: one by one, a list of thousands of
// siblings costs a square of that.
const nthCache = new Map();
function nthOfType(el) {
  let i = nthCache.get(el);
  if (i === undefined) {
    const seen = new Map();
    for (let c = el.parentElement.firstElementChild; c; c = c.nextElementSibling) {
      const n = (seen.get(c.tagName) || 0) + 1;
      seen.set(c.tagName, n);
      nthCache.set(c, n);
    }
    i = nthCache.get(el);
  }
  return i;
}
function cssPath(el) {
  if (!el || el.nodeType !== 1) return -1;
  let p = pathCache.get(el);
  if (p !== undefined) return p;
  let part = el.tagName.toLowerCase();
  // getAttribute, not el.id: a form with an input named "id" shadows the property.
  const id = el.getAttribute("id");
  if (el === root) {
    part = "html";
  } else if (id && /^[A-Za-z][\w-]*$/.test(id)) {
    part += "#" + id;
  } else if (el.parentElement) {
    part += `:nth-of-type(${nthOfType(el)})`;
  }
  const parent = el === root ? -1 : cssPath(el.parentElement);
  p = pathNodes.length;
  pathNodes.push([parent, part]);
  pathCache.set(el, p);
  return p;
}

// The colour a text is drawn on, and whether an image may lie under it (then the
// colour alone cannot tell whether the text shows).
const bgCache = new Map();
function backgroundOf(el) {
  if (!el || el.nodeType !== 1) return {color: "rgb(255, 255, 255)", image: false};
  let b = bgCache.get(el);
  if (b) return b;
  const s = style(el);
  const c = s.backgroundColor;
  const image = s.backgroundImage && s.backgroundImage !== "none";
  if (c && c !== "transparent" && !/rgba\(.*,\s*0\)$/.test(c)) {
    b = {color: c, image};
  } else {
    const up = backgroundOf(el.parentElement);
    b = {color: up.color, image: image || up.image};
  }
  bgCache.set(el, b);
  return b;
}
function effectiveBackground(el) { return backgroundOf(el).color; }

// Both walk up the tree; cached per element, since every box of a subtree asks again.
const zCache = new Map();
function zHint(el) {
  if (!el || el === root || el.nodeType !== 1) return 0;
  let z = zCache.get(el);
  if (z !== undefined) return z;
  const s = style(el);
  z = (s.position !== "static" && s.zIndex !== "auto") ? (parseInt(s.zIndex, 10) || 0)
    : zHint(el.parentElement);
  zCache.set(el, z);
  return z;
}

const fixedCache = new Map();
function isFixed(el) {
  if (!el || el === root || el.nodeType !== 1) return false;
  let f = fixedCache.get(el);
  if (f !== undefined) return f;
  const p = style(el).position;
  f = p === "fixed" || p === "sticky" || isFixed(el.parentElement);
  fixedCache.set(el, f);
  return f;
}

// tag: the element's tag name in upper case (an XHTML document gives it in lower case).
function landmarkOf(el, tag) {
  const role = (el.getAttribute("role") || "").toLowerCase();
  if (LANDMARK_ROLES[role]) return LANDMARK_ROLES[role];
  return LANDMARK_TAGS[tag] || "";
}

function isInteractive(el, t) {
  if (t === "A") return el.hasAttribute("href");
  if (t === "BUTTON" || t === "SELECT" || t === "TEXTAREA" || t === "SUMMARY") return true;
  if (t === "INPUT") return (el.type || "").toLowerCase() !== "hidden";
  const role = (el.getAttribute("role") || "").toLowerCase();
  return INTERACTIVE_ROLES.has(role) || el.isContentEditable && el === el.closest("[contenteditable]");
}

function hasBackgroundImage(el) {
  const bg = style(el).backgroundImage;
  return bg && bg !== "none" && bg.includes("url(");
}

const boxes = [];
const boxEls = [];  // the element behind each box, for the occlusion check
const elementBox = new Map();  // element -> id of its block/landmark box (for parents)

function parentBoxId(el) {
  for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
    const id = elementBox.get(e);
    if (id !== undefined) return id;
  }
  return null;
}

function verdict(el, rect) {
  const clip = clipOf(el);
  let reason = clip.reason;
  let visible = intersect(rect, clip.rect);
  if (!reason && (rect[2] < 1 || rect[3] < 1)) reason = "zero_size";
  if (!reason && (visible[2] < 1 || visible[3] < 1)) {
    const outside = rect[0] + rect[2] <= 0 || rect[1] + rect[3] <= 0 ||
      rect[0] >= docWidth || rect[1] >= docHeight;
    reason = outside ? "offpage" : "clipped";
  }
  return {bbox: reason ? rect : visible, reason};
}

// What every box of an element shares, read once: an element often has several boxes
// (a link with its lines of text), and each style read is a call into the engine.
const attrCache = new Map();
function attrsOf(el) {
  let a = attrCache.get(el);
  if (a) return a;
  const s = style(el);
  a = {
    tag: el.tagName.toLowerCase(), role: el.getAttribute("role") || "",
    dom_id: el.getAttribute("id") || "",
    classes: (el.getAttribute("class") || "").trim().slice(0, 200), path: cssPath(el),
    font_size: parseFloat(s.fontSize) || 0, font_weight: parseInt(s.fontWeight, 10) || 400,
    color: s.color, background: effectiveBackground(el), z: zHint(el), fixed: isFixed(el),
    // Every ancestor is walked before the element, so its box, if any, is known by now.
    parent: parentBoxId(el.parentElement),
  };
  attrCache.set(el, a);
  return a;
}

function addBox(kind, el, rect, depth, extra) {
  const a = attrsOf(el);
  const v = verdict(el, rect);
  const box = {
    id: boxes.length, kind, bbox: v.bbox, tag: a.tag, role: a.role, dom_id: a.dom_id,
    classes: a.classes, path: a.path, text: "", font_size: a.font_size,
    font_weight: a.font_weight, color: a.color, background: a.background, z: a.z,
    fixed: a.fixed, visible: !v.reason, hidden_reason: v.reason, parent: a.parent, depth,
  };
  if (extra) Object.assign(box, extra);
  boxes.push(box);
  boxEls.push(el);
  return box;
}

// One walk over the body, in document order: the elements with their depth, and the text
// nodes with some ink. Subtrees nobody sees (scripts, templates) are left out at once, and
// so is the inside of a drawing: its parts are drawn by their svg and have no boxes of
// their own (a syntax diagram is hundreds of paths, each costly to style); only HTML in a
// foreignObject has, so an svg holding one is walked through. Plain sibling links rather
// than a TreeWalker: its filter would call back into script for every node.
function isSvgPart(n) {
  return n instanceof SVGElement && n.tagName.toUpperCase() !== "SVG";
}
const elements = [body], depths = [0];
const texts = [], textDepths = [];
{
  let n = body.firstChild, depth = 1, svgDepth = 0;  // svgDepth: depth of the outer svg walked through
  while (n) {
    let down = false;
    if (n.nodeType === 3) {
      if (!svgDepth && /\S/.test(n.data)) { texts.push(n); textDepths.push(depth); }
    } else if (n.nodeType === 1 && !SKIP_TAGS.has(n.tagName.toUpperCase())) {
      elements.push(n);
      depths.push(depth);
      if (!(n instanceof SVGElement)) {
        down = true;
      } else if (svgDepth || n.getElementsByTagName("foreignObject").length) {
        down = true;
        if (!svgDepth) svgDepth = depth;
      }
    }
    if (down && n.firstChild) {
      n = n.firstChild;
      depth += 1;
      continue;
    }
    while (n && !n.nextSibling) {
      n = n.parentNode;
      depth -= 1;
      if (depth <= svgDepth) svgDepth = 0;
      if (n === body) n = null;
    }
    if (n) n = n.nextSibling;
  }
}

for (let i = 0; i < elements.length; i++) {
  const el = elements[i];
  const tag = el.tagName.toUpperCase();
  // Nested svg parts are drawn by their outer svg.
  if (isSvgPart(el)) continue;
  if (tag === "SVG" && el.parentElement && el.parentElement.closest("svg")) continue;
  const s = style(el);
  if (s.display === "none" || s.display === "contents") continue;
  const landmark = landmarkOf(el, tag);
  const block = !landmark && BLOCK_DISPLAYS.has(s.display) && tag !== "A";
  const image = IMAGE_TAGS.has(tag) || (tag === "INPUT" && (el.type || "") === "image");
  const backgroundImage = !image && hasBackgroundImage(el);
  const interactive = isInteractive(el, tag);
  // Most elements are inline runs of text (spans, code, emphasis): no box of their own,
  // so no need to ask for their geometry.
  if (!landmark && !block && !image && !backgroundImage && !interactive) continue;
  const rect = docRect(el.getBoundingClientRect());
  const depth = depths[i];
  if (landmark) {
    elementBox.set(el, addBox("landmark", el, rect, depth, {landmark}).id);
  } else if (block && rect[2] >= 4 && rect[3] >= 4) {
    elementBox.set(el, addBox("block", el, rect, depth).id);
  }
  if (image) {
    if (tag === "PICTURE") continue;  // its img is the image
    const extra = {};
    if (tag === "IMG") {
      extra.src = (el.currentSrc || el.src || "").slice(0, 300);
      extra.loaded = el.complete && el.naturalWidth > 0;
    }
    addBox("image", el, rect, depth, extra);
  } else if (backgroundImage && rect[2] >= 4 && rect[3] >= 4) {
    addBox("image", el, rect, depth, {background_image: true});
  }
  if (interactive) {
    const b = addBox("interactive", el, rect, depth);
    b.text = String(el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, MAX_TEXT);
    if (tag === "A") b.href = String(el.href).slice(0, 500);
  }
}

// Text runs: one box per line of each text node, from the range's client rects.
const range = document.createRange();
for (let t = 0; t < texts.length; t++) {
  const n = texts[t], el = n.parentElement;
  const s = style(el);
  if (s.display === "none") continue;
  range.selectNodeContents(n);
  const rects = range.getClientRects();
  // Merge the fragments of one line (same top and bottom) into a single run.
  const lines = [];
  for (const r of rects) {
    if (r.width < 1 || r.height < 1) continue;
    const d = docRect(r);
    const last = lines[lines.length - 1];
    if (last && Math.abs(last[1] - d[1]) < 2 && Math.abs(last[3] - d[3]) < 2) {
      const x2 = Math.max(last[0] + last[2], d[0] + d[2]);
      last[0] = Math.min(last[0], d[0]);
      last[2] = x2 - last[0];
    } else {
      lines.push(d);
    }
  }
  const text = n.data.replace(/\s+/g, " ").trim().slice(0, MAX_TEXT);
  const depth = textDepths[t];
  // Text drawn in the colour of a plain background is not seen by anyone.
  const bg = backgroundOf(el);
  const invisibleInk = s.color === bg.color && !bg.image && !s.textShadow.includes("px");
  lines.forEach((d, i) => {
    const b = addBox("text", el, d, depth, {line: i});
    b.parent = parentBoxId(el);
    b.text = text;
    if (invisibleInk && b.visible) { b.visible = false; b.hidden_reason = "no_contrast"; }
  });
}

// Covered: something else is painted on top. Exact where the browser can tell us
// (inside the first viewport); below it, only fixed-position overlays are checked.
function coveredAt(el, x, y) {
  if (x < 0 || y < 0 || x >= vw || y >= vh) return false;
  const top = document.elementFromPoint(x, y);
  if (!top || top === el || el.contains(top) || top.contains(el)) return false;
  // A label or a link around the element is not covering it.
  return !(top.closest && top.closest("label, a, button") && top.closest("label, a, button").contains(el));
}
boxes.forEach((b, i) => {
  if (!b.visible || b.kind === "block" || b.kind === "landmark") return;
  const [x, y, w, h] = b.bbox;
  const cx = x + w / 2 - sx, cy = y + h / 2 - sy;
  if (cx >= vw || cy >= vh) return;
  const el = boxEls[i];
  const pts = [[cx, cy], [x + w * 0.2 - sx, cy], [x + w * 0.8 - sx, cy]];
  if (pts.every(([px, py]) => coveredAt(el, px, py))) {
    b.visible = false;
    b.hidden_reason = "covered";
  }
});

const links = [];
for (const a of document.querySelectorAll("a[href], area[href]")) {
  const href = a.href;
  if (href && /^https?:/i.test(href)) links.push(href);
}

// The wire format: one array per box in FIELDS order, repeated strings sent once.
const FIELDS = ["id", "kind", "bbox", "tag", "role", "dom_id", "classes", "path", "text",
  "font_size", "font_weight", "color", "background", "z", "fixed", "visible",
  "hidden_reason", "parent", "depth"];
const STRING_FIELDS = new Set(["kind", "tag", "role", "dom_id", "classes", "text", "color",
  "background", "hidden_reason"]);
const known = new Set(FIELDS);
const strings = [], stringIndex = new Map();
// A lone surrogate (text cut inside an emoji, or put there by a script) is not UTF-8, and
// the files written from these strings are.
const wellFormed = (v) => (typeof v === "string" && !v.isWellFormed() ? v.toWellFormed() : v);
function str(v) {
  v = wellFormed(v);
  let i = stringIndex.get(v);
  if (i === undefined) { i = strings.length; strings.push(v); stringIndex.set(v, i); }
  return i;
}
const round2 = (v) => Math.round(v * 100) / 100;
const rows = boxes.map((b) => {
  const row = FIELDS.map((f) => (STRING_FIELDS.has(f) ? str(b[f]) : b[f]));
  row[2] = b.bbox.map(round2);
  let extra = null;
  for (const k in b) if (!known.has(k)) (extra = extra || {})[k] = wellFormed(b[k]);
  row.push(extra);
  return row;
});

return {fields: FIELDS, stringFields: Array.from(STRING_FIELDS), rows, strings, pathNodes,
  links, title: wellFormed(document.title || ""), docWidth, docHeight, viewport: [vw, vh],
  contentType: document.contentType || ""};
