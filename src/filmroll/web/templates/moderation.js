// The moderation queue by keyboard and click: arrows move the focus, space selects, "a" approves and "r" rejects
// the selected posts (or the one in focus). Decisions are posted as the form would (with its CSRF token) and the
// tiles say what happened; without JavaScript the form and its checkboxes do the same.
const form = document.getElementById("moderation");
const status = document.getElementById("moderation-status");
if (form) {
  const tiles = [...form.querySelectorAll(".tile")];
  const checkbox = (tile) => tile.querySelector("input[type=checkbox]");
  const select = (tile, on) => {
    checkbox(tile).checked = on;
    tile.setAttribute("aria-selected", on ? "true" : "false");
  };
  const focus = (index) => {
    const target = tiles[Math.max(0, Math.min(tiles.length - 1, index))];
    for (const tile of tiles) tile.tabIndex = tile === target ? 0 : -1;
    target.focus();
  };
  const columns = () => {
    const top = tiles[0].offsetTop;
    const inRow = tiles.findIndex((t) => t.offsetTop !== top);
    return inRow === -1 ? tiles.length : inRow;
  };
  const decide = async (decision, chosen) => {
    if (!chosen.length) return;
    const body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    body.set("decision", decision);
    for (const tile of chosen) body.append("post", tile.dataset.id);
    const answer = await fetch(form.action, {method: "POST", body, headers: {Accept: "application/json"},
                                             credentials: "same-origin"});
    const result = await answer.json();
    if (!answer.ok) {
      status.textContent = result.error.message;
      return;
    }
    for (const tile of chosen) {
      tile.className = `tile state-${result.status}`;
      tile.querySelector(".decision").textContent = `${result.status} · ${result.decided_by} · just now`;
      select(tile, false);
    }
    status.textContent = `${chosen.length} post(s) ${result.status}.`;
  };
  for (const tile of tiles) {
    checkbox(tile).addEventListener("change", () => select(tile, checkbox(tile).checked));
    tile.addEventListener("click", (event) => {
      if (event.target.closest("label, input")) return;
      focus(tiles.indexOf(tile));
      select(tile, !checkbox(tile).checked);
    });
  }
  form.addEventListener("keydown", (event) => {
    const tile = event.target.closest(".tile");
    if (!tile || event.altKey || event.ctrlKey || event.metaKey) return;
    const at = tiles.indexOf(tile);
    const moves = {ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(), ArrowUp: -columns(), Home: -at,
                   End: tiles.length};
    if (event.key in moves) {
      focus(at + moves[event.key]);
    } else if (event.key === " ") {
      select(tile, !checkbox(tile).checked);
    } else if (event.key === "a" || event.key === "r") {
      const chosen = tiles.filter((t) => checkbox(t).checked);
      decide(event.key === "a" ? "approve" : "reject", chosen.length ? chosen : [tile]);
    } else {
      return;
    }
    event.preventDefault();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const decision = event.submitter ? event.submitter.value : "approve";
    decide(decision, tiles.filter((t) => checkbox(t).checked));
  });
}
