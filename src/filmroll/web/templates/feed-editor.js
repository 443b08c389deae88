// The feed editor: the preview follows the form as it is edited (the settings are not saved until Save) and the
// layout, columns and header chosen (the widget in the preview takes them at once); the embed code follows them
// too. The preview frame grows with what it shows. Without this script the preview shows the saved feed.
const form = document.getElementById("feed-form");
const preview = document.getElementById("preview");
const display = ["layout", "columns", "header"].map((id) => document.getElementById(id)).filter(Boolean);
const chosen = () => display.map((select) => [select.id, select.value]);
if (form && preview) {
  let timer;
  const draftUrl = () => {
    const query = new URLSearchParams({ draft: "1" });
    for (const [name, value] of new FormData(form)) if (name !== "csrf_token") query.append(name, value);
    for (const [name, value] of chosen()) query.set(name, value);
    return `${form.dataset.preview}?${query}`;
  };
  const update = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      preview.src = draftUrl();
      document.getElementById("unsaved").hidden = false;
    }, 300);
  };
  form.addEventListener("input", update);
  form.addEventListener("change", update);
}
if (preview) {
  // The frame is as tall as the feed it shows (within reason): no clipped box, no second scroll bar in most cases.
  let observer;
  const fit = () => {
    const body = preview.contentDocument?.body;
    const tall = body ? Math.ceil(body.getBoundingClientRect().bottom) + 2 : 0;  // the page's own height, borders
    if (body) preview.style.height = `${Math.min(Math.max(tall, 240), 1400)}px`;
  };
  preview.addEventListener("load", () => {
    observer?.disconnect();
    const body = preview.contentDocument?.body;
    if (!body) return;
    observer = new ResizeObserver(fit);
    observer.observe(body);
    fit();
  });
  for (const select of display) {
    select.addEventListener("change", () => {
      const widget = preview.contentDocument?.getElementById("preview-widget");
      widget?.setAttribute(select.id, select.value);
      // A reload keeps the choice: it is in the editor's own address, and in the frame's when it must reload.
      const query = new URLSearchParams(location.search);
      for (const [name, value] of chosen()) query.set(name, value);
      history.replaceState(null, "", `?${query}`);
      if (!widget) {
        const url = new URL(preview.src, location.href);
        url.searchParams.set(select.id, select.value);
        preview.src = url.pathname + url.search;
      }
    });
  }
}
const snippet = document.getElementById("snippet");
if (snippet) {
  const write = () => {
    const { base, slug } = snippet.dataset;
    const attributes = chosen().map(([name, value]) => `${name}="${value}"`).join(" ");
    snippet.textContent = `<script type="module" src="${base}/widget.js"></scr` + `ipt>\n` +
      `<filmroll-feed src="${base}/feeds/${slug}.json" ${attributes}></filmroll-feed>`;
  };
  for (const select of display) select.addEventListener("change", write);
}
