/* Ranking widget: order K answers best to worst with ties, by drag and drop or keyboard.
 *
 * The server reads only the text field #id_order ("D > C > A = B"); this script keeps that
 * field and the visible list in step, in both directions, so that typing the order also works.
 *
 * Keys (outside text fields): letter keys focus an answer in the list; ↑/↓ move the focus;
 * Alt+↑/↓ (or Shift+↑/↓) move the focused answer; "=" ties it with the one below (again to
 * untie); Ctrl+Enter submits. Pairwise (K = 2): 1 = A is
 * better, 2 = B is better, 0 = tie.
 */
(function () {
  "use strict";
  const root = document.querySelector("[data-ranking]");
  if (!root) return;
  const list = root.querySelector(".rank-list");
  const input = document.getElementById("id_order");
  const form = input.form;
  const submit = form.querySelector("button[type=submit][name=submit-ranking]");
  const status = root.querySelector(".rank-status");

  const items = () => Array.from(list.querySelectorAll(".rank-item"));
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));

  function write() {
    const all = items();
    input.value = all
      .map((li, i) => li.dataset.letter + (i < all.length - 1 ? (li.dataset.tie === "1" ? " = " : " > ") : ""))
      .join("");
    paint();
  }

  function paint() {
    let place = 1;
    items().forEach((li, i, all) => {
      const prevTied = i > 0 && all[i - 1].dataset.tie === "1";
      if (i > 0 && !prevTied) place = i + 1;
      li.querySelector(".rank-place").textContent = "#" + place;
      const rel = li.querySelector(".rank-rel");
      rel.textContent = li.dataset.tie === "1" ? "=" : ">";
      rel.setAttribute("aria-label", li.dataset.tie === "1"
        ? "Tied with the next answer (click to rank above it)"
        : "Better than the next answer (click to tie)");
      rel.hidden = i === all.length - 1;
    });
    status.textContent = "Order: " + input.value;
  }

  function read() {
    const text = input.value.toUpperCase().replace(/\s+/g, "");
    if (!text) return paint();
    const tokens = text.match(/[A-Z]|[>=]/g) || [];
    const byLetter = Object.fromEntries(items().map((li) => [li.dataset.letter, li]));
    const order = [];
    tokens.forEach((t, i) => {
      if (/[A-Z]/.test(t) && byLetter[t]) {
        byLetter[t].dataset.tie = tokens[i + 1] === "=" ? "1" : "0";
        order.push(byLetter[t]);
        delete byLetter[t];
      }
    });
    if (Object.keys(byLetter).length) return paint(); // incomplete: the server will say what is missing
    order.forEach((li) => list.appendChild(li));
    paint();
  }

  function move(li, delta) {
    const all = items();
    const i = all.indexOf(li);
    const j = i + delta;
    if (j < 0 || j >= all.length) return;
    if (delta < 0) list.insertBefore(li, all[j]);
    else list.insertBefore(li, all[j].nextSibling);
    li.focus();
    write();
  }

  function toggleTie(li) {
    if (items().indexOf(li) === items().length - 1) return;
    li.dataset.tie = li.dataset.tie === "1" ? "0" : "1";
    write();
  }

  list.addEventListener("click", (e) => {
    const rel = e.target.closest(".rank-rel");
    if (rel) toggleTie(rel.closest(".rank-item"));
  });

  list.addEventListener("keydown", (e) => {
    const li = e.target.closest(".rank-item");
    if (!li || e.target !== li) return;
    const all = items();
    const i = all.indexOf(li);
    if (e.key === "ArrowUp" || e.key === "ArrowDown") {
      const delta = e.key === "ArrowUp" ? -1 : 1;
      if (e.altKey || e.shiftKey) move(li, delta);
      else if (all[i + delta]) all[i + delta].focus();
      e.preventDefault();
    } else if (e.key === "=" || e.key === "t") {
      toggleTie(li);
      e.preventDefault();
    }
  });

  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      form.requestSubmit(submit);
      e.preventDefault();
      return;
    }
    if (typing(e.target) || e.altKey || e.ctrlKey || e.metaKey) return;
    const all = items();
    if (all.length === 2 && ["1", "2", "0"].includes(e.key)) {
      input.value = { 1: "A > B", 2: "B > A", 0: "A = B" }[e.key];
      read();
      submit.focus();
      e.preventDefault();
      return;
    }
    const letter = e.key.length === 1 ? e.key.toUpperCase() : "";
    const target = all.find((li) => li.dataset.letter === letter);
    if (target && !e.shiftKey) {
      target.focus();
      e.preventDefault();
    }
  });

  // Drag and drop: the dragged answer is placed before or after the one under the pointer.
  let dragged = null;
  list.addEventListener("dragstart", (e) => {
    dragged = e.target.closest(".rank-item");
    if (!dragged) return;
    dragged.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", dragged.dataset.letter);
  });
  list.addEventListener("dragover", (e) => {
    const over = e.target.closest(".rank-item");
    if (!dragged || !over || over === dragged) return;
    e.preventDefault();
    const box = over.getBoundingClientRect();
    const after = e.clientY > box.top + box.height / 2;
    list.insertBefore(dragged, after ? over.nextSibling : over);
  });
  list.addEventListener("drop", (e) => e.preventDefault());
  list.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    write();
  });

  input.addEventListener("change", read);

  // Time on task, shown to the annotator (the server measures it independently).
  const clock = root.querySelector(".rank-clock");
  const started = Date.now();
  if (clock) setInterval(() => {
    const s = Math.floor((Date.now() - started) / 1000);
    clock.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }, 1000);

  // The list starts in display order; the field holds whatever the list shows.
  if (input.value) read(); else write();
})();
