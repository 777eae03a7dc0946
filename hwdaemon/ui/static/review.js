// The review page's keyboard and the link between a line's box and its field. No framework.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const element of document.querySelectorAll("[data-time]")) {
    const seconds = Number(element.dataset.time);
    if (seconds) element.textContent = new Date(seconds * 1000).toLocaleString();
  }

  const fields = Array.from(document.querySelectorAll("input[data-line]"));
  const boxOf = (index) => document.getElementById(`box-${index}`);

  function highlight(index) {
    for (const active of document.querySelectorAll(".active")) active.classList.remove("active");
    const field = document.getElementById(`line-${index}`);
    const box = boxOf(index);
    if (field) field.classList.add("active");
    if (box) {
      box.classList.add("active");
      box.scrollIntoView({ block: "nearest" });
    }
  }

  for (const field of fields) field.addEventListener("focus", () => highlight(field.dataset.line));
  for (const box of document.querySelectorAll("polygon[data-line]")) {
    box.addEventListener("click", () => {
      const field = document.getElementById(`line-${box.dataset.line}`);
      if (field) field.focus();
    });
  }

  function nextDoubtful() {
    const doubtful = fields.filter((field) => field.dataset.doubtful);
    if (!doubtful.length) return;
    const current = doubtful.indexOf(document.activeElement);
    doubtful[(current + 1) % doubtful.length].focus();
  }

  const bar = document.querySelector(".jobbar");
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "s") {
      const form = document.getElementById("save-form");
      if (form) {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (event.key === "Enter" && document.activeElement.dataset.line !== undefined) {
      event.preventDefault(); // in a line field, Enter moves on instead of submitting
      nextDoubtful();
      return;
    }
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
    if (typing || event.ctrlKey || event.metaKey || event.altKey) {
      if (event.key === "Escape") document.activeElement.blur();
      return;
    }
    if (event.key === "n") {
      event.preventDefault();
      nextDoubtful();
    } else if (event.key === "j" && bar && bar.dataset.older) {
      window.location.href = bar.dataset.older;
    } else if (event.key === "k" && bar && bar.dataset.newer) {
      window.location.href = bar.dataset.newer;
    }
  });
});
