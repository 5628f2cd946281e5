// Make the page ready to be captured as a person would see it once everything loaded:
// no animations, every content-visibility section painted, lazy images loaded and decoded.
// Async: arguments[0] = {waitMs, css}, arguments[last] = the callback Selenium waits for.
const opts = arguments[0] || {};
const done = arguments[arguments.length - 1];
// The capture style (capture.css) is adopted when the document starts, so the page is
// styled once; a page that replaced the adopted sheets gets it now, at the price of
// styling the whole document again.
const sheet = window.__websegCaptureSheet;
if (!(sheet && document.adoptedStyleSheets.includes(sheet))) {
  const style = document.createElement("style");
  style.setAttribute("data-webseg", "prepare");
  style.textContent = opts.css || "";
  (document.head || document.documentElement).appendChild(style);
}

const images = Array.from(document.images);
for (const img of images) {
  if (img.loading === "lazy") img.loading = "eager";
  // Script-driven lazy loading keeps the real source in data-* until scrolled into view.
  const lazySrc = img.getAttribute("data-src") || img.getAttribute("data-lazy-src") ||
    img.getAttribute("data-original");
  if (lazySrc && (!img.getAttribute("src") || img.naturalWidth <= 1)) img.src = lazySrc;
  const lazySet = img.getAttribute("data-srcset");
  if (lazySet && !img.getAttribute("srcset")) img.srcset = lazySet;
}
for (const iframe of document.querySelectorAll("iframe[loading=lazy]")) iframe.loading = "eager";

const decodes = images.map((img) => (img.decode ? img.decode().catch(() => null) : null));
const timeout = new Promise((resolve) => setTimeout(resolve, opts.waitMs || 5000));
// Reading the boxes forces style and layout, and the screenshot paints, so no animation
// frame needs to pass: once the images are decoded the page is ready.
Promise.race([Promise.all(decodes), timeout]).then(() => done(true));
