/* Ranking widget: order K answers best to worst with ties, by drag and drop or keyboard.
 *
 * The answers start unplaced (no order is suggested): the annotator places each one in the
 * "best to worst" list, and submit stays disabled until every answer is placed. The server
 * reads only the text field #id_order ("D > C > A = B") and refuses an order that leaves an
 * answer out; this script keeps that field and the two lists in step, in both directions, so
 * typing the order works too (the lists follow as it is typed).
 *
 * Keys (outside text fields): letter keys focus an answer; Enter or Space places an unplaced
 * answer at the bottom of the ranking; ↑/↓ move the focus; Alt+↑/↓ (or Shift+↑/↓) move a placed
 * answer; "=" ties it with the one below (again to untie); Delete or Backspace takes it back out;
 * Ctrl+Enter submits. Pairwise (K = 2): 1 = A is better, 2 = B is better, 0 = tie.
 */
(function () {
  "use strict";
  const root = document.querySelector("[data-ranking]");
  if (!root) return;
  const list = root.querySelector(".rank-list");
  const pool = root.querySelector(".rank-pool");
  const input = document.getElementById("id_order");
  const form = input.form;
  const submit = form.querySelector("button[type=submit][name=submit-ranking]");
  const status = root.querySelector(".rank-status");

  const placed = () => Array.from(list.querySelectorAll(".rank-item"));
  const unplaced = () => Array.from(pool.querySelectorAll(".rank-item"));
  const all = () => placed().concat(unplaced());
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  const byDisplayOrder = (a, b) => a.dataset.letter.localeCompare(b.dataset.letter);

  function write() {
    const items = placed();
    input.value = items
      .map((li, i) => li.dataset.letter + (i < items.length - 1 ? (li.dataset.tie === "1" ? " = " : " > ") : ""))
      .join("");
    paint();
  }

  function paint() {
    let place = 1;
    placed().forEach((li, i, items) => {
      const prevTied = i > 0 && items[i - 1].dataset.tie === "1";
      if (i > 0 && !prevTied) place = i + 1;
      li.querySelector(".rank-place").textContent = "#" + place;
      const rel = li.querySelector(".rank-rel");
      rel.textContent = li.dataset.tie === "1" ? "=" : ">";
      rel.setAttribute("aria-label", li.dataset.tie === "1"
        ? "Tied with the next answer (click to rank above it)"
        : "Better than the next answer (click to tie)");
      rel.hidden = i === items.length - 1;
      li.querySelector(".rank-out").hidden = false;
    });
    unplaced().forEach((li) => {
      li.dataset.tie = "0";
      li.querySelector(".rank-place").textContent = "–";
      li.querySelector(".rank-rel").hidden = true;
      li.querySelector(".rank-out").hidden = true;
    });
    const missing = unplaced().map((li) => li.dataset.letter);
    root.classList.toggle("rank-complete", missing.length === 0);
    list.classList.toggle("empty", placed().length === 0);
    submit.disabled = missing.length > 0;
    status.textContent = missing.length
      ? "Place every answer: " + missing.join(", ") + (missing.length === 1 ? " is" : " are") + " not placed yet."
      : "Order: " + input.value;
  }

  // The field's text as the lists: the letters it names in that order are placed, the others
  // go back to the unplaced answers. The field itself is left as typed.
  function read() {
    const tokens = input.value.toUpperCase().match(/[A-Z]|[>=]/g) || [];
    const byLetter = Object.fromEntries(all().map((li) => [li.dataset.letter, li]));
    const order = [];
    tokens.forEach((t, i) => {
      if (/[A-Z]/.test(t) && byLetter[t]) {
        byLetter[t].dataset.tie = tokens[i + 1] === "=" ? "1" : "0";
        order.push(byLetter[t]);
        delete byLetter[t];
      }
    });
    arrange(list, order);
    arrange(pool, Object.values(byLetter).sort(byDisplayOrder));
    paint();
  }

  // Put `items` in `zone` in this order, moving only the ones out of place: a node taken out
  // and put back between a press and its release would lose the click.
  function arrange(zone, items) {
    items.forEach((li, i) => {
      const here = zone.children[i];
      if (here !== li) zone.insertBefore(li, here || null);
    });
  }

  function place(li) {
    list.appendChild(li);
    li.focus();
    write();
  }

  function takeOut(li) {
    const next = unplaced().find((other) => byDisplayOrder(other, li) > 0);
    const before = placed()[placed().indexOf(li) - 1];
    if (before && li.dataset.tie !== "1") before.dataset.tie = "0";
    pool.insertBefore(li, next || null);
    li.focus();
    write();
  }

  function move(li, delta) {
    const items = placed();
    const i = items.indexOf(li);
    const j = i + delta;
    if (i < 0 || j < 0 || j >= items.length) return;
    if (delta < 0) list.insertBefore(li, items[j]);
    else list.insertBefore(li, items[j].nextSibling);
    li.focus();
    write();
  }

  function toggleTie(li) {
    const items = placed();
    const i = items.indexOf(li);
    if (i < 0 || i === items.length - 1) return;
    li.dataset.tie = li.dataset.tie === "1" ? "0" : "1";
    write();
  }

  root.addEventListener("click", (e) => {
    const li = e.target.closest(".rank-item");
    if (!li) return;
    if (e.target.closest(".rank-rel")) toggleTie(li);
    else if (e.target.closest(".rank-out")) takeOut(li);
    else if (li.parentElement === pool) place(li);
  });

  root.addEventListener("keydown", (e) => {
    const li = e.target.closest && e.target.closest(".rank-item");
    if (!li || e.target !== li) return;
    const inPool = li.parentElement === pool;
    const items = inPool ? unplaced() : placed();
    const i = items.indexOf(li);
    if (e.key === "ArrowUp" || e.key === "ArrowDown") {
      const delta = e.key === "ArrowUp" ? -1 : 1;
      if ((e.altKey || e.shiftKey) && !inPool) move(li, delta);
      else if (items[i + delta]) items[i + delta].focus();
      e.preventDefault();
    } else if (inPool && (e.key === "Enter" || e.key === " ") && !e.ctrlKey && !e.metaKey) {
      place(li);
      e.preventDefault();
    } else if (!inPool && (e.key === "Delete" || e.key === "Backspace")) {
      takeOut(li);
      e.preventDefault();
    } else if (!inPool && (e.key === "=" || e.key === "t")) {
      toggleTie(li);
      e.preventDefault();
    }
  });

  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      if (!submit.disabled) form.requestSubmit(submit);
      else status.focus();
      e.preventDefault();
      return;
    }
    if (typing(e.target) || e.altKey || e.ctrlKey || e.metaKey) return;
    const items = all();
    if (items.length === 2 && ["1", "2", "0"].includes(e.key)) {
      input.value = { 1: "A > B", 2: "B > A", 0: "A = B" }[e.key];
      read();
      submit.focus();
      e.preventDefault();
      return;
    }
    const letter = e.key.length === 1 ? e.key.toUpperCase() : "";
    const target = items.find((li) => li.dataset.letter === letter);
    if (target && !e.shiftKey) {
      target.focus();
      e.preventDefault();
    }
  });

  // Drag and drop: into the ranking (before or after the answer under the pointer, or at its
  // end) or back to the unplaced answers.
  let dragged = null;
  root.addEventListener("dragstart", (e) => {
    dragged = e.target.closest && e.target.closest(".rank-item");
    if (!dragged) return;
    dragged.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", dragged.dataset.letter);
  });
  [list, pool].forEach((zone) => zone.addEventListener("dragover", (e) => {
    if (!dragged) return;
    e.preventDefault();
    const over = e.target.closest(".rank-item");
    if (over === dragged) return;
    if (zone === pool) {
      if (dragged.parentElement !== pool) pool.appendChild(dragged);
      return;
    }
    if (!over) {
      if (dragged.parentElement !== list) list.appendChild(dragged);
      return;
    }
    const box = over.getBoundingClientRect();
    const after = e.clientY > box.top + box.height / 2;
    list.insertBefore(dragged, after ? over.nextSibling : over);
  }));
  root.addEventListener("drop", (e) => e.preventDefault());
  root.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    write();
  });

  input.addEventListener("input", read);
  input.addEventListener("change", read);

  // Time on task, shown to the annotator (the server measures it independently).
  const clock = document.querySelector(".rank-clock");
  const started = Date.now();
  if (clock) {
    setInterval(() => {
      const s = Math.floor((Date.now() - started) / 1000);
      clock.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    }, 1000);
    clock.dataset.running = "true";
  }

  // Nothing is placed until the annotator places it; an order sent back with an error is shown.
  read();
})();
