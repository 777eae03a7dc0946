// The review page's keyboard, the link between a line's box and its field, and drawing/cutting lines on the scan. No framework.
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
      if (mode) return; // drawing or cutting, not choosing a line
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

  // Fixing the lines themselves: draw a missed line's box, or click where a line is to be cut.
  const form = document.getElementById("save-form");
  const svg = document.getElementById("scan-boxes");
  const tools = document.getElementById("tools");
  const modeText = document.getElementById("mode");
  const drawn = document.getElementById("drawn");
  const cut = document.getElementById("cut");
  let mode = null; // null, {kind: "draw"} or {kind: "split", button}

  function toPage(event) {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const inPage = point.matrixTransform(svg.getScreenCTM().inverse());
    const width = Number(tools.dataset.width), height = Number(tools.dataset.height);
    return { x: Math.round(Math.min(Math.max(inPage.x, 0), width)), y: Math.round(Math.min(Math.max(inPage.y, 0), height)) };
  }

  function setMode(next, text) {
    if (mode && mode.button) mode.button.classList.remove("armed");
    mode = next;
    if (mode && mode.button) mode.button.classList.add("armed");
    if (svg) {
      svg.classList.toggle("drawing", Boolean(mode && mode.kind === "draw"));
      svg.classList.toggle("cutting", Boolean(mode && mode.kind === "split"));
    }
    if (tools) tools.classList.toggle("drawing", Boolean(mode && mode.kind === "draw"));
    if (cut) cut.hidden = true;
    if (modeText) modeText.textContent = text || "";
  }

  const drawButton = document.getElementById("draw-line");
  if (drawButton && svg) {
    drawButton.addEventListener("click", () => {
      setMode({ kind: "draw" }, "Drag a box over the missed line on the scan (Esc: cancel)");
    });
    let start = null;
    svg.addEventListener("pointerdown", (event) => {
      if (!mode || mode.kind !== "draw") return;
      event.preventDefault();
      start = toPage(event);
      svg.setPointerCapture(event.pointerId);
      drawn.hidden = false;
      for (const [name, value] of [["x", start.x], ["y", start.y], ["width", 0], ["height", 0]]) drawn.setAttribute(name, value);
    });
    svg.addEventListener("pointermove", (event) => {
      if (mode && mode.kind === "draw" && start) {
        const here = toPage(event);
        drawn.setAttribute("x", Math.min(start.x, here.x));
        drawn.setAttribute("y", Math.min(start.y, here.y));
        drawn.setAttribute("width", Math.abs(here.x - start.x));
        drawn.setAttribute("height", Math.abs(here.y - start.y));
      } else if (mode && mode.kind === "split") {
        const here = toPage(event);
        const box = document.getElementById(`box-${mode.line}`).getBBox();
        const across = document.getElementById("split-axis").value === "x";
        cut.hidden = false;
        cut.setAttribute("x1", across ? here.x : box.x);
        cut.setAttribute("x2", across ? here.x : box.x + box.width);
        cut.setAttribute("y1", across ? box.y : here.y);
        cut.setAttribute("y2", across ? box.y + box.height : here.y);
      }
    });
    svg.addEventListener("pointerup", (event) => {
      if (!mode || mode.kind !== "draw" || !start) return;
      const here = toPage(event);
      const box = [Math.min(start.x, here.x), Math.min(start.y, here.y), Math.abs(here.x - start.x), Math.abs(here.y - start.y)];
      start = null;
      setMode(null, "");
      document.getElementById("new-box").value = box.join(",");
      document.getElementById("new-line").hidden = false;
      document.getElementById("new-text").focus();
    });
    svg.addEventListener("click", (event) => {
      if (!mode || mode.kind !== "split") return;
      event.stopPropagation();
      const here = toPage(event);
      document.getElementById("split-at").value = `${here.x},${here.y}`;
      const button = mode.button;
      setMode(null, "");
      form.requestSubmit(button);
    }, true);
  }

  for (const button of document.querySelectorAll("button[data-split]")) {
    button.addEventListener("click", (event) => {
      if (!svg) return; // no scan to click on: the server says what is missing
      event.preventDefault();
      const line = Number(button.dataset.split);
      setMode({ kind: "split", button, line }, `Click the scan where line ${line + 1} is to be cut (Esc: cancel)`);
      highlight(line);
    });
  }

  const opened = document.querySelector("li.focus input[data-line]");
  if (opened) {
    opened.focus(); // the line the check queue led here
    highlight(opened.dataset.line);
  }

  const bar = document.querySelector(".jobbar");
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && mode) {
      setMode(null, "");
      return;
    }
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      const next = document.getElementById("save-next");
      if (form && next) {
        event.preventDefault();
        form.requestSubmit(next);
      }
      return;
    }
    if (event.key === "Enter" && document.activeElement.id === "new-text") {
      event.preventDefault();
      form.requestSubmit(document.getElementById("add-line"));
      return;
    }
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
