// <filmroll-feed src="https://HOST/feeds/SLUG.json" layout="grid|carousel|masonry|list" columns="3" limit="9">
// A feed drawn from filmroll's JSON (docs/feeds.md), in a shadow root: no framework, no cookies, no storage, no
// request to any origin but the feed's. Styles are a constructed stylesheet and CSSOM properties, never a style
// attribute or an inline <style>, so a host page needs no 'unsafe-inline'. Theme it with --filmroll-* custom
// properties and ::part(grid | tile | image | caption | more | lightbox | close | prev | next | counter).
const CSS = `
:host{display:block;--filmroll-gap:4px;--filmroll-columns:3;--filmroll-radius:0;--filmroll-accent:#1a5fb4;
--filmroll-backdrop:rgb(0 0 0/.85);font:inherit;color:inherit}
ul{list-style:none;margin:0;padding:0;display:grid;gap:var(--filmroll-gap);
grid-template-columns:repeat(var(--filmroll-columns),minmax(0,1fr))}
li{margin:0;min-width:0}
.tile{all:unset;box-sizing:border-box;display:block;position:relative;width:100%;aspect-ratio:1;overflow:hidden;
cursor:pointer;border-radius:var(--filmroll-radius);background:#ddd}
.tile:focus-visible{outline:3px solid var(--filmroll-accent);outline-offset:2px}
picture,img{display:block;width:100%;height:100%}
img{object-fit:cover}
.badge{position:absolute;top:6px;right:6px;color:#fff;text-shadow:0 0 3px #000}
:host([layout=masonry]) ul{display:block;columns:var(--filmroll-columns);column-gap:var(--filmroll-gap)}
:host([layout=masonry]) li{break-inside:avoid;margin-bottom:var(--filmroll-gap)}
:host([layout=masonry]) .tile,:host([layout=list]) .tile{aspect-ratio:auto}
:host([layout=masonry]) img,:host([layout=list]) img{height:auto}
:host([layout=list]) ul{grid-template-columns:1fr}
:host([layout=carousel]) ul{grid-auto-flow:column;grid-template-columns:none;
grid-auto-columns:calc((100% - (var(--filmroll-columns) - 1) * var(--filmroll-gap)) / var(--filmroll-columns));
overflow-x:auto;scroll-snap-type:x mandatory;scroll-behavior:smooth}
:host([layout=carousel]) li{scroll-snap-align:start}
.caption{margin:.4em 0 0;overflow-wrap:anywhere}
.bar{display:flex;gap:.5em;justify-content:center;align-items:center;margin-top:.75em}
button.more,.bar button,dialog button{font:inherit;cursor:pointer;padding:.45em 1em;border-radius:4px;
border:1px solid currentColor;background:transparent;color:inherit}
button:focus-visible{outline:3px solid var(--filmroll-accent);outline-offset:2px}
dialog{border:0;padding:0;max-width:min(96vw,1100px);width:100%;background:transparent;color:#fff}
dialog::backdrop{background:var(--filmroll-backdrop)}
figure{margin:0;display:grid;gap:.5em;justify-items:center}
figure picture{display:contents}
figure img,figure video{max-height:78vh;width:auto;max-width:100%;height:auto;object-fit:contain}
figcaption{max-width:65ch;max-height:6em;overflow:auto;white-space:pre-line}
dialog a{color:#fff}
dialog .bar{color:#fff}
.hidden{display:none}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (prefers-reduced-motion:reduce){*{scroll-behavior:auto!important;transition:none!important;
animation:none!important}}`;

let sheet = null;

function el(name, attributes = {}, ...children) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "part" || key === "class") node.setAttribute(key, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// Every URL of a feed document is resolved against the document's own URL, so a feed whose pictures are paths from
// filmroll's root (no FILMROLL_FEEDS__BASE_URL) works on a page of any origin.
const URL_KEYS = new Set(["url", "webp", "avif", "next"]);
function resolve(value, base) {
  if (Array.isArray(value)) return value.map((v) => resolve(v, base));
  if (!value || typeof value !== "object") return value;
  for (const [key, v] of Object.entries(value)) {
    value[key] = typeof v === "string" && URL_KEYS.has(key) ? new URL(v, base).href : resolve(v, base);
  }
  return value;
}

function picture(item, alt, sizes, eager) {
  const img = el("img", {part: "image", alt, width: item.width, height: item.height, decoding: "async",
    loading: eager ? "eager" : "lazy", src: item.fallback.url});
  if (eager) img.setAttribute("fetchpriority", "high");
  const sources = ["avif", "webp"].filter((f) => item.sizes.length && item.sizes[0][f]).map((f) =>
    el("source", {type: `image/${f}`, sizes, srcset: item.sizes.map((s) => `${s[f]} ${s.width}w`).join(", ")}));
  return el("picture", {}, ...sources, img);
}

class FilmrollFeed extends HTMLElement {
  static observedAttributes = ["src", "columns"];

  constructor() {
    super();
    this.root = this.attachShadow({mode: "open"});
    sheet ??= new CSSStyleSheet();
    if (!sheet.cssRules.length) sheet.replaceSync(CSS);
    this.root.adoptedStyleSheets = [sheet];
    this.posts = [];
    this.shown = 0;
    this.next = null;
  }

  attributeChangedCallback(name) {
    if (name === "columns") this.style.setProperty("--filmroll-columns", String(this.columns));
    else if (this.isConnected) this.start();
  }

  connectedCallback() {
    this.style.setProperty("--filmroll-columns", String(this.columns));
    if (!this.list) this.start();
  }

  get columns() {
    return Math.max(1, Math.min(12, parseInt(this.getAttribute("columns") || "3", 10) || 3));
  }

  get limit() {
    return Math.max(1, parseInt(this.getAttribute("limit") || "0", 10) || 12);
  }

  async start() {
    const src = this.getAttribute("src");
    if (!src) return;
    this.source = new URL(src, document.baseURI);
    this.posts = [];
    this.shown = 0;
    this.list = el("ul", {part: "grid"});
    this.more = el("button", {part: "more", class: "more hidden", type: "button", onclick: () => this.grow()},
      "Load more");
    this.dialog = this.lightbox();
    this.root.replaceChildren(this.list, el("div", {class: "bar"}, this.more), this.dialog);
    this.next = this.source.href;
    await this.grow();
  }

  async fetchPage() {
    const response = await fetch(this.next, {credentials: "omit", mode: "cors", referrerPolicy: "no-referrer"});
    if (!response.ok) throw new Error(`filmroll-feed: ${response.status} from ${this.next}`);
    const page = resolve(await response.json(), response.url || this.next);
    this.feed = page;
    this.label = page.feed?.title || "Instagram posts";
    this.list.setAttribute("aria-label", this.label);
    this.posts.push(...page.posts);
    this.next = page.next ?? null;
  }

  async grow() {
    if (this.loading) return;  // a second press while a page is on its way adds nothing twice
    this.loading = true;
    this.more.disabled = true;
    this.list.setAttribute("aria-busy", "true");
    const wanted = this.shown + this.limit;
    try {
      while (this.posts.length < wanted && this.next) await this.fetchPage();
    } catch (error) {
      console.warn(String(error));
    } finally {
      this.loading = false;
      this.more.disabled = false;
      this.list.removeAttribute("aria-busy");
    }
    const first = this.shown === 0;
    for (const [n, post] of this.posts.slice(this.shown, wanted).entries()) {
      this.list.append(this.tile(post, this.shown + n, first && n < this.columns));
    }
    const added = Math.min(wanted, this.posts.length) - this.shown;
    this.shown += added;
    this.more.classList.toggle("hidden", !(this.next || this.posts.length > this.shown));
    if (!first && added) this.list.children[this.shown - added]?.querySelector("button")?.focus();
    this.dispatchEvent(new CustomEvent("load", {detail: {posts: this.shown}}));
  }

  tile(post, index, eager) {
    const columns = this.getAttribute("layout") === "list" ? 1 : this.columns;
    const sizes = `(min-width: 900px) ${Math.ceil(900 / columns)}px, ${Math.ceil(100 / columns)}vw`;
    const kind = post.type === "CAROUSEL_ALBUM" ? `album of ${post.children.length}` :
      post.type === "VIDEO" ? (post.is_reel ? "reel" : "video") : null;
    // A click with detail 2 is the second half of a double press: on "Load more" whose page came before it, it lands
    // on the tile that took the button's place, and must not open that post.
    const tile = el("button", {part: "tile", class: "tile", type: "button",
      onclick: (event) => { if (event.detail < 2) this.open(index, 0); },
      "aria-haspopup": "dialog"}, post.fallback ? picture(post, post.alt_text, sizes, eager) : null,
    kind ? el("span", {class: "badge", "aria-hidden": "true"}, post.type === "VIDEO" ? "▶" : "▣") : null,
    kind ? el("span", {class: "sr"}, ` (${kind})`) : null);
    if (post.color) tile.style.backgroundColor = `rgb(${post.color})`;
    const item = el("li", {}, tile);
    if (this.getAttribute("layout") === "list" && post.pruned_caption) {
      item.append(el("p", {part: "caption", class: "caption"}, post.pruned_caption));
    }
    return item;
  }

  lightbox() {
    this.figure = el("figure");
    this.counter = el("span", {part: "counter", "aria-live": "polite"});
    this.prev = el("button", {part: "prev", type: "button", onclick: () => this.step(-1)}, "‹ Previous");
    this.forward = el("button", {part: "next", type: "button", onclick: () => this.step(1)}, "Next ›");
    // Focus stays on the controls, which outlive each picture: arrows keep working as the picture changes.
    this.close = el("button", {part: "close", type: "button", autofocus: true, onclick: () => this.dialog.close()},
      "Close");
    const dialog = el("dialog", {part: "lightbox", "aria-label": "Post"}, this.figure,
      el("div", {class: "bar"}, this.prev, this.counter, this.forward, this.close));
    dialog.addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight") { event.preventDefault(); this.step(1); }
      if (event.key === "ArrowLeft") { event.preventDefault(); this.step(-1); }
    });
    dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
    dialog.addEventListener("close", () => this.list.children[this.current]?.querySelector("button")?.focus());
    return dialog;
  }

  items(post) {
    return post.children && post.children.length ? post.children : [post];
  }

  open(index, child) {
    this.current = index;
    this.child = child;
    const post = this.posts[index];
    const item = this.items(post)[child];
    const alt = item.alt_text || post.alt_text;
    const media = item.video ? el("video", {controls: true, preload: "metadata", poster: item.fallback?.url,
      width: item.width, height: item.height, src: item.video.url}) :
      item.fallback ? picture(item, alt, "96vw", true) : el("p", {}, alt);
    const link = post.permalink ? el("a", {href: post.permalink, rel: "noopener", target: "_blank"},
      "View on Instagram") : null;
    // Whose post: the author where Instagram tells it, else the hashtag that brought it (none is invented).
    const by = post.username ? `@${post.username}` : post.source?.kind === "hashtag" ? `via #${post.source.name}` : "";
    this.figure.replaceChildren(media, el("figcaption", {}, by ? `${by}\n${post.pruned_caption || ""}` :
      post.pruned_caption || ""), link);
    const count = this.items(post).length;
    this.counter.textContent = count > 1 ? `${child + 1} / ${count}` : `${index + 1} / ${this.shown}`;
    this.prev.disabled = index === 0 && child === 0;
    this.forward.disabled = index === this.shown - 1 && child === count - 1;
    if (!this.dialog.open) this.dialog.showModal();
    if (!this.dialog.contains(this.root.activeElement) || this.root.activeElement.disabled) this.close.focus();
  }

  step(by) {
    const count = this.items(this.posts[this.current]).length;
    if (count > 1 && this.child + by >= 0 && this.child + by < count) return this.open(this.current, this.child + by);
    const index = this.current + by;
    if (index >= 0 && index < this.shown) this.open(index, by < 0 ? this.items(this.posts[index]).length - 1 : 0);
  }
}

if (!customElements.get("filmroll-feed")) customElements.define("filmroll-feed", FilmrollFeed);
