// Copying links and keys. button[data-copy]: the field's value to the clipboard (without JavaScript the field is
// there to select and copy). form[data-copy-link]: the form asks for a new link (as JSON) and copies it at once,
// saying so in #copy-status; where the browser will not copy, the link is shown there, selected, to copy by hand.
// Without JavaScript the form opens the page that shows the link.
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    const said = document.getElementById("copied");
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      said.textContent = "Copied.";
    } catch {
      said.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  });
}

const status = document.getElementById("copy-status");
for (const form of document.querySelectorAll("form[data-copy-link]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    let made;
    try {
      const response = await fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form)),
        headers: {Accept: "application/json"}, credentials: "same-origin"});
      if (!response.ok) throw new Error(String(response.status));
      made = await response.json();
    } catch {
      button.disabled = false;
      form.submit();  // the page that shows the link
      return;
    }
    button.disabled = false;
    const until = new Date(made.expires_at).toLocaleString(undefined, {dateStyle: "medium", timeStyle: "short"});
    const field = Object.assign(document.createElement("input"), {type: "text", readOnly: true, value: made.url,
      id: "copied-link"});
    field.setAttribute("aria-label", `Reconnect link for @${made.username}`);
    try {
      await navigator.clipboard.writeText(made.url);
      status.replaceChildren(`Copied @${made.username}'s reconnect link: it works once, until ${until}. `, field);
    } catch {
      status.replaceChildren(`Your browser did not let filmroll copy. @${made.username}'s reconnect link (works ` +
        `once, until ${until}), selected: press Ctrl+C (⌘C). `, field);
      field.select();
    }
    status.hidden = false;
  });
}
