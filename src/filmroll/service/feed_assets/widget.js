// <filmroll-feed src="https://HOST/feeds/SLUG.json" layout="grid|carousel|masonry|list" columns="3" limit="9"
//   header="full|compact|none">; src="#ID": the first page is the JSON text of the page's element ID (a
//   <script type="application/json">), the pages after it are fetched.
// A feed drawn from filmroll's JSON (docs/feeds.md), in a shadow root: no framework, no cookies, no storage, no
// request to any origin but the feed's. Styles are a constructed stylesheet and CSSOM properties, never a style
// attribute or an inline <style>, so a host page needs no 'unsafe-inline'. Theme it with --filmroll-* custom
// properties and ::part(header | grid | tile | image | overlay | caption | load-more | lightbox | close | prev | next
// | counter | story | dots). Columns follow the element's own width (container queries), and a row is never left
// with one tile while more posts wait.
const CSS = `
:host{display:block;container:filmroll/inline-size;--filmroll-gap:4px;--filmroll-radius:0;
--filmroll-accent:#0b57d0;--filmroll-accent-text:#fff;--filmroll-text:#1c1c1e;--filmroll-muted:#5c5c66;
--filmroll-surface:#fff;--filmroll-tile:#e4e4e8;--filmroll-lightbox:#0d0d10;--filmroll-button-radius:8px;
--filmroll-font:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
font-family:var(--filmroll-font);font-size:15px;line-height:1.4;color:var(--filmroll-text)}
*{box-sizing:border-box}
svg{width:1.15em;height:1.15em;fill:currentColor;flex:none}
a{color:inherit}
.head{display:flex;align-items:center;gap:12px;margin-bottom:12px;flex-wrap:wrap}
.avatar{width:56px;height:56px;border-radius:50%;object-fit:cover;background:var(--filmroll-tile);flex:none}
.compact .avatar{width:36px;height:36px}
.avatar.small{width:40px;height:40px}
.who{flex:1 1 12em;min-width:0}
.who>b{display:block;font-size:1.05em}
.who span{color:var(--filmroll-muted);overflow-wrap:anywhere}
.counts{display:flex;flex-wrap:wrap;gap:0 1em;color:var(--filmroll-text);margin-top:2px}
.counts span{color:inherit;white-space:nowrap}
.btn{font:inherit;font-weight:600;display:inline-flex;align-items:center;gap:.4em;cursor:pointer;text-decoration:none;
padding:.55em 1.2em;border-radius:var(--filmroll-button-radius);border:0;background:var(--filmroll-accent);
color:var(--filmroll-accent-text);min-height:40px}
.btn[disabled]{opacity:.6;cursor:progress}
.btn:hover{filter:brightness(1.08)}
:focus-visible{outline:3px solid var(--filmroll-accent);outline-offset:2px}
ul{list-style:none;margin:0;padding:0;display:grid;gap:var(--filmroll-gap);
grid-template-columns:repeat(var(--filmroll-columns),minmax(0,1fr))}
@container filmroll (max-width:560px){ul{grid-template-columns:repeat(var(--filmroll-narrow),minmax(0,1fr))}}
@container filmroll (max-width:300px){ul{grid-template-columns:repeat(var(--filmroll-tiny),minmax(0,1fr))}}
li{margin:0;min-width:0}
li.spare{display:none}
.tile{all:unset;box-sizing:border-box;display:block;position:relative;width:100%;aspect-ratio:1;overflow:hidden;
cursor:pointer;border-radius:var(--filmroll-radius);background:var(--filmroll-tile)}
.tile:focus-visible{outline:3px solid var(--filmroll-accent);outline-offset:2px}
picture,img{display:block;width:100%;height:100%}
img{object-fit:cover}
.kind{position:absolute;top:8px;right:8px;color:#fff;filter:drop-shadow(0 0 2px rgb(0 0 0/.7));display:flex}
.overlay{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;gap:1.2em;color:#fff;
font-weight:700;background:rgb(0 0 0/.45);opacity:0;transition:opacity .15s}
.overlay span{display:inline-flex;align-items:center;gap:.35em}
.tile:hover .overlay,.tile:focus-visible .overlay{opacity:1}
.bar{display:flex;gap:.5em;justify-content:center;align-items:center;margin-top:14px}
.hidden{display:none!important}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
:host([layout=masonry]) ul{display:block;columns:var(--filmroll-columns);column-gap:var(--filmroll-gap)}
@container filmroll (max-width:560px){:host([layout=masonry]) ul{columns:var(--filmroll-tiny)}}
@container filmroll (max-width:300px){:host([layout=masonry]) ul{columns:1}}
:host([layout=masonry]) li{break-inside:avoid;margin-bottom:var(--filmroll-gap)}
:host([layout=masonry]) .tile{aspect-ratio:auto}
:host([layout=masonry]) img{height:auto}
:host([layout=list]) ul,:host([layout=list]) .head{max-width:44rem;margin-inline:auto}
:host([layout=list]) ul{grid-template-columns:1fr;gap:20px}
:host([layout=list]) li{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,3fr);gap:16px;align-items:start}
@container filmroll (max-width:560px){:host([layout=list]) li{grid-template-columns:1fr;gap:8px}}
.text{min-width:0}
.caption{margin:0 0 .5em;overflow-wrap:anywhere;white-space:pre-line;display:-webkit-box;-webkit-box-orient:vertical;
-webkit-line-clamp:8;overflow:hidden}
.meta{color:var(--filmroll-muted);display:flex;gap:.2em 1em;flex-wrap:wrap}
.meta span{display:inline-flex;align-items:center;gap:.3em}
.track{position:relative}
:host([layout=carousel]) ul{grid-auto-flow:column;grid-template-columns:none;--k:var(--filmroll-columns);
grid-auto-columns:calc((100% - (var(--k) - 1) * var(--filmroll-gap)) / var(--k));overflow-x:auto;
scroll-snap-type:x mandatory;scroll-behavior:smooth;scrollbar-width:none;overscroll-behavior-x:contain}
@container filmroll (max-width:560px){:host([layout=carousel]) ul{--k:var(--filmroll-tiny)}}
@container filmroll (max-width:300px){:host([layout=carousel]) ul{--k:1}}
:host([layout=carousel]) ul::-webkit-scrollbar{display:none}
:host([layout=carousel]) li{scroll-snap-align:start}
.arrow{position:absolute;top:50%;transform:translateY(-50%);width:44px;height:44px;border-radius:50%;border:0;
background:rgb(255 255 255/.92);color:#111;box-shadow:0 1px 4px rgb(0 0 0/.35);cursor:pointer;display:flex;
align-items:center;justify-content:center;padding:0}
.arrow[disabled]{opacity:0;pointer-events:none}
ul:empty~.arrow{display:none}
.arrow.back{left:6px}.arrow.on{right:6px}
.dots{display:flex;justify-content:center;flex-wrap:wrap;gap:2px;margin-top:8px}
.dot{all:unset;width:24px;height:24px;display:flex;align-items:center;justify-content:center;cursor:pointer}
.dot::after{content:"";width:8px;height:8px;border-radius:50%;background:var(--filmroll-muted);opacity:.45}
.dot[aria-current=true]::after{opacity:1;background:var(--filmroll-accent)}
.dot:focus-visible{outline:2px solid var(--filmroll-accent);border-radius:50%}
dialog{position:fixed;inset:0;width:100%;height:100%;max-width:none;max-height:none;margin:0;border:0;padding:0;
background:var(--filmroll-lightbox);color:#f2f2f4;overflow:hidden}
dialog::backdrop{background:var(--filmroll-lightbox)}
dialog[open]{display:grid;grid-template-columns:minmax(0,1fr) minmax(300px,380px);grid-template-rows:minmax(0,1fr)}
.stage{position:relative;display:flex;align-items:center;justify-content:center;min-height:0;padding:56px 56px 48px}
.media,.stage picture{display:contents}
.stage img,.stage video{max-width:100%;max-height:100%;width:auto;height:auto;object-fit:contain}
.stage .arrow{background:rgb(255 255 255/.14);color:#fff;box-shadow:none}
.stage .arrow.back{left:8px}.stage .arrow.on{right:8px}
.close{position:absolute;top:8px;right:8px;z-index:1;width:44px;height:44px;border-radius:50%;border:0;
background:rgb(255 255 255/.14);color:#fff;cursor:pointer;display:flex;align-items:center;justify-content:center}
.counter{position:absolute;left:0;right:0;bottom:14px;text-align:center;color:#c8c8d0}
.story{background:#1b1b20;padding:20px;overflow:auto;display:flex;flex-direction:column;gap:12px}
.story .who b{color:#fff}.story .who span,.story .meta{color:#b8b8c2}
.story p{margin:0;white-space:pre-line;overflow-wrap:anywhere}
.story a{color:#9ec5ff}.story a.btn{color:var(--filmroll-accent-text)}
.story .btn{align-self:flex-start}
@media (max-width:760px){dialog[open]{grid-template-columns:1fr;grid-template-rows:minmax(0,62%) minmax(0,1fr)}
.stage{padding:52px 8px 40px}.stage .arrow{top:auto;bottom:2px;transform:none}}
@media (prefers-reduced-motion:reduce){*{scroll-behavior:auto!important;transition:none!important;
animation:none!important}}`;

// Paths on a 24-unit grid, drawn for this widget.
const ICONS = {
  album: "M7 3h12a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 2v12h12V5zM3 7v12a2 2 0 0 0 2 2h12v-2H5V7z",
  video: "M8 5.5v13a1 1 0 0 0 1.5.86l10.5-6.5a1 1 0 0 0 0-1.72L9.5 4.64A1 1 0 0 0 8 5.5z",
  reel: "M5 3h14a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 6v10h14V9zm.6-4 2 2.5h2.6L8.2 5zm5.2 0 2 2.5h2.6L13.4 5zM10 11.2v5.6a.5.5 0 0 0 .76.43l4.4-2.8a.5.5 0 0 0 0-.86l-4.4-2.8a.5.5 0 0 0-.76.43z",
  heart: "M12 21s-7.5-4.6-9.6-9.3C.9 8.2 3 4.5 6.6 4.5c2.1 0 3.6 1.2 5.4 3.1 1.8-1.9 3.3-3.1 5.4-3.1 3.6 0 5.7 3.7 4.2 7.2C19.5 16.4 12 21 12 21z",
  comment: "M12 3C6.5 3 2 6.8 2 11.5c0 2.4 1.2 4.6 3.1 6.1L4 21.5l4.6-2.2c1.1.3 2.2.5 3.4.5 5.5 0 10-3.8 10-8.3S17.5 3 12 3z",
  back: "M15.4 4.6 8 12l7.4 7.4 1.4-1.4-6-6 6-6z",
  on: "M8.6 4.6 7.2 6l6 6-6 6 1.4 1.4L16 12z",
  close: "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z",
};

let sheet = null;

function el(name, attributes = {}, ...children) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "part" || key === "class" || key.startsWith("aria-")) node.setAttribute(key, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// An icon with a name is read out (role img); one without is decoration beside words that say it.
function icon(name, label) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  if (label) { svg.setAttribute("role", "img"); svg.setAttribute("aria-label", label); } else svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

const number = (n) => n.toLocaleString(undefined, {notation: n >= 10000 ? "compact" : "standard"});
const plural = (n, one) => `${number(n)} ${n === 1 ? one : `${one}s`}`;

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

function kindOf(post) {
  if (post.type === "CAROUSEL_ALBUM") return ["album", `Album of ${post.children.length}`];
  if (post.type === "VIDEO") return post.is_reel ? ["reel", "Reel"] : ["video", "Video"];
  return null;
}

// Likes and comments where Instagram gave them, as [icon, count, word]: a count it withheld is left out, never
// shown as zero.
function given(post) {
  return [["heart", post.like_count, "like"], ["comment", post.comments_count, "comment"]].filter(([, n]) => n != null);
}

function counts(post) {
  return given(post).map(([name, n, word]) => el("span", {}, icon(name), plural(n, word)));
}

function when(post) {
  if (!post.timestamp) return null;
  const date = new Date(post.timestamp);
  return el("time", {datetime: post.timestamp}, date.toLocaleDateString(undefined, {dateStyle: "long"}));
}

// A caption as text with its hashtags and mentions as links to Instagram: built node by node, never as HTML.
function story(text) {
  const p = el("p", {part: "caption"});
  let last = 0;
  for (const m of text.matchAll(/(^|[^\w&@])([#@])([\p{L}\p{N}_]+(?:\.[\p{L}\p{N}_]+)*)/gu)) {
    const start = m.index + m[1].length;
    if (start < last) continue;
    const name = m[2] === "#" ? m[3].split(".")[0] : m[3];  // a username may hold dots, a hashtag ends at one
    p.append(text.slice(last, start));
    const href = m[2] === "#" ? `https://www.instagram.com/explore/tags/${encodeURIComponent(name)}/`
      : `https://www.instagram.com/${encodeURIComponent(name)}/`;
    p.append(el("a", {href, rel: "noopener", target: "_blank"}, m[2] + name));
    last = start + 1 + name.length;
  }
  p.append(text.slice(last));
  return p;
}

class FilmrollFeed extends HTMLElement {
  static observedAttributes = ["src", "columns", "header", "layout", "limit"];

  constructor() {
    super();
    this.root = this.attachShadow({mode: "open"});
    sheet ??= new CSSStyleSheet();
    if (!sheet.cssRules.length) sheet.replaceSync(CSS);
    this.root.adoptedStyleSheets = [sheet];
    this.posts = [];
    this.shown = 0;
    this.wanted = 0;
    this.next = null;
    this.resized = new ResizeObserver(() => this.fit());
  }

  attributeChangedCallback(name, before, after) {
    if (before === after) return;
    if (name === "columns") this.columnsChanged();
    if (this.list && this.isConnected) this.start();
  }

  connectedCallback() {
    this.columnsChanged();
    this.resized.observe(this);
    if (!this.list) this.start();
  }

  disconnectedCallback() {
    this.resized.disconnect();
  }

  columnsChanged() {
    const columns = this.columns;
    this.style.setProperty("--filmroll-columns", String(columns));
    this.style.setProperty("--filmroll-narrow", String(Math.min(columns, 3)));
    this.style.setProperty("--filmroll-tiny", String(Math.min(columns, 2)));
  }

  get layout() {
    const layout = this.getAttribute("layout");
    return ["carousel", "masonry", "list"].includes(layout) ? layout : "grid";
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

    this.posts = [];
    this.shown = 0;
    this.wanted = 0;
    this.feed = null;
    this.head = el("div", {part: "header", class: "head hidden"});
    this.list = el("ul", {part: "grid"});
    this.more = el("button", {part: "more load-more", class: "btn hidden", type: "button",
      onclick: () => this.grow()}, "Load more");
    this.track = el("div", {class: "track"}, this.list);
    this.dots = null;
    if (this.layout === "carousel") this.carousel();
    this.dialog = this.lightbox();
    this.root.replaceChildren(this.head, this.track, ...(this.dots ? [this.dots] : []),
      el("div", {class: "bar"}, this.more), this.dialog);
    this.next = src.startsWith("#") ? src : new URL(src, document.baseURI).href;
    await this.grow();
  }

  async fetchPage() {
    let page;
    if (this.next.startsWith("#")) {  // the first page inlined in the host page: no request before the first paint
      const inline = this.ownerDocument.getElementById(this.next.slice(1));
      if (!inline) throw new Error(`filmroll-feed: no element ${this.next} in the page`);
      page = resolve(JSON.parse(inline.textContent), document.baseURI);
    } else {
      const response = await fetch(this.next, {credentials: "omit", mode: "cors", referrerPolicy: "no-referrer"});
      if (!response.ok) throw new Error(`filmroll-feed: ${response.status} from ${this.next}`);
      page = resolve(await response.json(), response.url || this.next);
    }
    if (!this.feed) this.header(page);
    this.feed = page;
    this.list.setAttribute("aria-label", page.feed?.title || "Instagram posts");
    this.posts.push(...page.posts);
    this.next = page.next ?? null;
  }

  header(page) {
    const style = this.getAttribute("header") || "none";
    const accounts = page.accounts || [];
    if (style === "none" || !accounts.length && !page.feed?.title) return;
    const one = accounts.length === 1 ? accounts[0] : null;
    const compact = style === "compact";
    const avatar = one?.profile_picture ? el("img", {class: "avatar", alt: "", width: compact ? 36 : 56,
      height: compact ? 36 : 56, src: one.profile_picture.url, decoding: "async"}) : null;
    const name = one ? (one.name || `@${one.username}`) : page.feed.title;
    const handle = one ? (one.name ? `@${one.username}` : null) :
      accounts.map((a) => `@${a.username}`).join(" · ") || null;
    const numbers = !compact && one ? [[one.media_count, "post"], [one.followers_count, "follower"],
      [one.follows_count, "following"]].filter(([n]) => n != null) : [];
    const follow = one?.profile_url ? el("a", {class: "btn", part: "follow", href: one.profile_url, rel: "noopener",
      target: "_blank", "aria-label": `Follow @${one.username} on Instagram`}, "Follow") : null;
    this.head.replaceChildren(avatar, el("div", {class: "who"}, el("b", {}, name),
      handle ? el("span", {}, handle) : null,
      numbers.length ? el("div", {class: "counts"}, ...numbers.map(([n, word]) =>
        el("span", {}, el("b", {}, number(n)), " ", word === "following" ? word : n === 1 ? word : `${word}s`))) :
        null), follow);
    this.head.classList.toggle("compact", compact);
  }

  async grow() {
    if (this.loading) return;  // a second press while a page is on its way adds nothing twice
    this.loading = true;
    this.more.disabled = true;
    this.list.setAttribute("aria-busy", "true");
    const first = this.shown === 0;
    const before = this.shown;
    this.wanted = Math.max(this.wanted, this.shown) + this.limit;
    try {
      // A row more than asked for, so that the rows shown can be whole ones.
      while (this.posts.length < this.wanted + this.columns && this.next) await this.fetchPage();
    } catch (error) {
      console.warn(String(error));
    } finally {
      this.loading = false;
      this.more.disabled = false;
      this.list.removeAttribute("aria-busy");
    }
    const upTo = Math.min(this.posts.length, this.wanted + this.columns);
    for (let n = this.list.children.length; n < upTo; n++) {
      this.list.append(this.tile(this.posts[n], n, first && n < this.columns));
    }
    this.head.classList.toggle("hidden", !this.head.childElementCount);  // shown with the tiles, in one frame
    this.fit();
    if (!first && this.shown > before) this.list.children[before]?.querySelector("button")?.focus();
    this.dispatchEvent(new CustomEvent("load", {detail: {posts: this.shown}}));
  }

  // How many tiles a row holds now, as the stylesheet (its container queries) laid them out.
  perRow() {
    if (this.layout === "list" || this.layout === "carousel") return 1;
    const style = getComputedStyle(this.list);
    if (this.layout === "masonry") return parseInt(style.columnCount, 10) || 1;
    return style.gridTemplateColumns.split(" ").filter(Boolean).length || 1;
  }

  // Shows whole rows while more posts wait; at the feed's very end a lone last tile spans its row instead.
  fit() {
    if (!this.list || !this.list.children.length) return;  // nothing to lay out before the first page
    const row = this.perRow();
    const loaded = this.list.children.length;
    const end = !this.next && loaded === this.posts.length && this.wanted >= loaded;
    let shown = Math.min(this.wanted, loaded);
    if (!end && shown >= row) shown -= shown % row;
    if (end) shown = loaded;
    [...this.list.children].forEach((item, n) => {
      item.classList.toggle("spare", n >= shown);
      const lone = end && row > 1 && this.layout === "grid" && n === shown - 1 && shown > 1 && shown % row === 1;
      item.style.gridColumn = lone ? "1 / -1" : "";
      item.firstChild.style.aspectRatio = lone ? `${row} / 1` : "";
    });
    this.shown = shown;
    this.more.classList.toggle("hidden", !(this.next || this.posts.length > shown));
    if (this.dots) this.paginate();
  }

  tile(post, index, eager) {
    const columns = this.layout === "list" ? 2 : this.columns;
    const sizes = `(min-width: 900px) ${Math.ceil(900 / columns)}px, ${Math.ceil(100 / Math.min(columns, 3))}vw`;
    const kind = kindOf(post);
    // The counts on hover and focus are numbers beside icons, as Instagram's own grid; the words are for screen readers.
    const known = given(post);
    const likes = known.map(([, n, word]) => plural(n, word)).join(", ");
    const overlay = known.length ? el("span", {class: "overlay", part: "overlay", "aria-hidden": "true"},
      ...known.map(([name, n]) => el("span", {}, icon(name), number(n)))) : null;
    // A click with detail 2 is the second half of a double press: on "Load more" whose page came before it, it lands
    // on the tile that took the button's place, and must not open that post.
    const tile = el("button", {part: "tile", class: "tile", type: "button",
      onclick: (event) => { if (event.detail < 2) this.open(index, 0); }, "aria-haspopup": "dialog"},
    post.fallback ? picture(post, post.alt_text, sizes, eager) : el("span", {class: "sr"}, post.alt_text),
    kind ? el("span", {class: "kind"}, icon(kind[0], kind[1])) : null, overlay,
    likes ? el("span", {class: "sr"}, ` (${likes})`) : null);
    if (post.color) tile.style.backgroundColor = `rgb(${post.color})`;
    const item = el("li", {}, tile);
    if (this.layout === "list") {
      item.append(el("div", {class: "text"}, post.pruned_caption ? el("p", {part: "caption", class: "caption"},
        post.pruned_caption) : null, el("div", {class: "meta"}, when(post), ...counts(post))));
    }
    return item;
  }

  carousel() {
    const go = (by) => this.list.scrollBy({left: by * this.list.clientWidth, behavior: this.motion()});
    this.back = el("button", {class: "arrow back", part: "prev", type: "button", "aria-label": "Previous posts",
      onclick: () => go(-1)}, icon("back"));
    this.on = el("button", {class: "arrow on", part: "next", type: "button", "aria-label": "Next posts",
      onclick: () => go(1)}, icon("on"));
    this.track.setAttribute("role", "region");
    this.track.setAttribute("aria-roledescription", "carousel");
    this.track.setAttribute("aria-label", "Instagram posts");
    this.track.append(this.back, this.on);
    this.dots = el("div", {class: "dots", part: "dots"});
    this.list.addEventListener("scroll", () => this.paginate(), {passive: true});
    this.list.addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        event.preventDefault();
        const tiles = [...this.list.querySelectorAll("li:not(.spare) .tile")];
        const at = tiles.indexOf(this.root.activeElement) + (event.key === "ArrowRight" ? 1 : -1);
        tiles[Math.max(0, Math.min(tiles.length - 1, at))]?.focus();
      }
    });
  }

  motion() {
    return matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth";
  }

  // The carousel's dots: one a screenful, the current one marked; the arrows off at either end.
  paginate() {
    const width = this.list.clientWidth || 1;
    const gap = parseFloat(getComputedStyle(this.list).columnGap) || 0;
    const pages = Math.max(1, Math.ceil((this.list.scrollWidth + gap) / (width + gap) - 0.01));
    const page = Math.min(pages - 1, Math.round(this.list.scrollLeft / width));
    if (this.dots.children.length !== pages) {
      this.dots.replaceChildren(...Array.from({length: pages}, (_, n) => el("button", {class: "dot", type: "button",
        "aria-label": `Posts, screen ${n + 1} of ${pages}`,
        onclick: () => this.list.scrollTo({left: n * width, behavior: this.motion()})})));
    }
    [...this.dots.children].forEach((dot, n) => dot.setAttribute("aria-current", String(n === page)));
    this.dots.classList.toggle("hidden", pages < 2);
    this.back.disabled = this.list.scrollLeft <= 1;
    this.on.disabled = this.list.scrollLeft + width >= this.list.scrollWidth - 1;
  }

  lightbox() {
    this.stage = el("div", {class: "media"});
    this.panel = el("div", {class: "story", part: "story"});
    this.counter = el("span", {class: "counter", part: "counter", "aria-live": "polite"});
    this.prev = el("button", {class: "arrow back", part: "prev", type: "button", "aria-label": "Previous",
      onclick: () => this.step(-1)}, icon("back"));
    this.forward = el("button", {class: "arrow on", part: "next", type: "button", "aria-label": "Next",
      onclick: () => this.step(1)}, icon("on"));
    // Focus stays on the controls, which outlive each picture: arrows keep working as the picture changes.
    this.close = el("button", {class: "close", part: "close", type: "button", autofocus: true, "aria-label": "Close",
      onclick: () => this.dialog.close()}, icon("close"));
    const dialog = el("dialog", {part: "lightbox", "aria-label": "Post"},
      el("div", {class: "stage"}, this.stage, this.prev, this.forward, this.counter), this.panel, this.close);
    dialog.addEventListener("keydown", (event) => {
      // Tab goes round the lightbox's own controls: never out to the browser's, never behind the page.
      if (event.key === "Tab") {
        const stops = [...dialog.querySelectorAll("button:not([disabled]),a[href],video[controls]")];
        const at = stops.indexOf(this.root.activeElement);
        const to = event.shiftKey ? (at <= 0 ? stops.length - 1 : null) : (at === stops.length - 1 ? 0 : null);
        if (to !== null) { event.preventDefault(); stops[to].focus(); }
        return;
      }
      if (event.target.closest?.("video")) return;
      if (event.key === "ArrowRight") { event.preventDefault(); this.step(1); }
      if (event.key === "ArrowLeft") { event.preventDefault(); this.step(-1); }
    });
    dialog.addEventListener("close", () => {
      this.stage.replaceChildren();  // a playing video stops
      // The focus goes back to the tile of the post last shown (the browser gives it to the one that opened the
      // lightbox), unless it has moved on since: this event comes a task after the Escape that closed it.
      const now = this.root.activeElement;
      if (!now || now === this.opener || dialog.contains(now)) {
        this.list.children[this.current]?.querySelector("button")?.focus();
      }
    });
    return dialog;
  }

  items(post) {
    return post.children && post.children.length ? post.children : [post];
  }

  open(index, child) {
    this.current = index;
    this.child = child;
    const post = this.posts[index];
    const items = this.items(post);
    const item = items[child];
    const alt = item.alt_text || post.alt_text;
    const media = item.video ? el("video", {controls: true, playsinline: true, preload: "metadata",
      poster: item.fallback?.url, width: item.width, height: item.height, src: item.video.url,
      "aria-label": alt}) : item.fallback ? picture(item, alt, "(min-width: 760px) 70vw, 100vw", true) :
      el("p", {}, alt);
    this.stage.replaceChildren(media);
    // Whose post: the author where Instagram tells it, else the hashtag that brought it (none is invented).
    const account = (this.feed.accounts || []).find((a) => post.username && a.username === post.username);
    const by = post.username ? `@${post.username}` : post.source?.kind === "hashtag" ? `via #${post.source.name}` : "";
    const author = post.username ? el("a", {href: `https://www.instagram.com/${encodeURIComponent(post.username)}/`,
      rel: "noopener", target: "_blank"}, by) : by ? el("span", {}, by) : null;
    const avatar = account?.profile_picture ? el("img", {class: "avatar small", alt: "", width: 40, height: 40,
      src: account.profile_picture.url}) : null;
    const kind = kindOf(post);
    this.panel.replaceChildren(
      author || avatar ? el("div", {class: "head"}, avatar, el("div", {class: "who"},
        account?.name ? el("b", {}, account.name) : null, author)) : null,
      post.caption ? story(post.caption) : null,
      el("div", {class: "meta"}, when(post), kind ? el("span", {}, icon(kind[0]), kind[1]) : null),
      given(post).length ? el("div", {class: "meta"}, ...counts(post)) : null,
      post.permalink ? el("a", {class: "btn", href: post.permalink, rel: "noopener", target: "_blank"},
        "View on Instagram") : null);
    this.panel.scrollTop = 0;
    this.dialog.setAttribute("aria-label", by ? `Post by ${by}` : "Post");
    this.counter.textContent = items.length > 1 ? `${child + 1} / ${items.length}` : `${index + 1} / ${this.shown}`;
    this.prev.disabled = index === 0 && child === 0;
    this.forward.disabled = index === this.shown - 1 && child === items.length - 1;
    if (!this.dialog.open) {
      this.opener = this.root.activeElement;
      this.dialog.showModal();
    }
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
