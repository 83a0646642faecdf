// The console's only script: row editors (key/value, tags, regions) and the secret type
// switch of "Store a new secret". Pages work without it, with one row per editor.
"use strict";
document.addEventListener("click", (event) => {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return;
  if (target.hasAttribute("data-add-row")) {
    const rows = target.previousElementSibling;
    const last = rows && rows.querySelector(".row:last-child");
    if (!last) return;
    const copy = last.cloneNode(true);
    copy.querySelectorAll("input").forEach((input) => { input.value = ""; });
    rows.appendChild(copy);
    const first = copy.querySelector("input");
    if (first) first.focus();
  } else if (target.hasAttribute("data-remove-row")) {
    const row = target.closest(".row");
    const rows = row && row.parentElement;
    if (!row || !rows) return;
    if (rows.querySelectorAll(".row").length > 1) row.remove();
    else row.querySelectorAll("input").forEach((input) => { input.value = ""; });
  }
});
document.addEventListener("change", (event) => {
  const target = event.target;
  if (!(target instanceof HTMLInputElement) || !target.hasAttribute("data-toggle-type")) return;
  document.querySelectorAll("[data-for-type]").forEach((section) => {
    section.classList.toggle("hidden", section.getAttribute("data-for-type") !== target.value);
  });
});
