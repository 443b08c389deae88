// "Copy the link": the reconnect link to the clipboard. Without JavaScript the field is there to select and copy.
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
