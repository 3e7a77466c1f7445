// Copy button for the calendar address (progressive enhancement: without this script
// the address is still a selectable field and a link). Loaded with `defer` from the
// app itself: the page's Content-Security-Policy allows no inline script.
"use strict";

document.querySelectorAll("button[data-copy]").forEach((button) => {
  const field = document.getElementById(button.dataset.copy);
  const status = document.getElementById("copy-status");
  if (!field || !navigator.clipboard || !window.isSecureContext) {
    return; // the field stays selectable; the button stays hidden
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      status.textContent = "Copied.";
    } catch (error) {
      field.focus();
      field.select();
      status.textContent = "Selected: copy it with your device's Copy command.";
    }
  });
});

document.querySelectorAll("input[readonly]").forEach((field) => {
  field.addEventListener("focus", () => field.select());
});
