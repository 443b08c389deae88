// The feed editor: the preview follows the form as it is edited (the settings are not saved until Save), and
// the embed code follows the layout and columns chosen. Without this script the preview shows the saved feed.
const form = document.getElementById("feed-form");
const preview = document.getElementById("preview");
if (form && preview) {
  let timer;
  const draftUrl = () => {
    const query = new URLSearchParams({ draft: "1" });
    for (const [name, value] of new FormData(form)) if (name !== "csrf_token") query.append(name, value);
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
const snippet = document.getElementById("snippet");
if (snippet) {
  const layout = document.getElementById("layout");
  const columns = document.getElementById("columns");
  const write = () => {
    const { base, slug } = snippet.dataset;
    snippet.textContent = `<script type="module" src="${base}/widget.js"></scr` + `ipt>\n` +
      `<filmroll-feed src="${base}/feeds/${slug}.json" layout="${layout.value}" columns="${columns.value}">` +
      `</filmroll-feed>`;
  };
  layout.addEventListener("change", write);
  columns.addEventListener("change", write);
}
