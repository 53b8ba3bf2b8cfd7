// Behaviour every page shares, kept out of the HTML so that the Content-Security-Policy can
// refuse inline scripts and event-handler attributes.

// <select data-submit-on-change>: choosing an option submits its form (filters).
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field.matches && field.matches("[data-submit-on-change]") && field.form) {
    field.form.requestSubmit();
  }
});

// The menu of narrow screens: the button opens and closes it, Escape closes it and gives the
// focus back to the button. Without this script the menu is simply always open.
function setUpMenu() {
  const bar = document.getElementById("topbar");
  const toggle = bar && bar.querySelector(".menu-toggle");
  if (!toggle) return;
  const setOpen = (open) => {
    bar.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  };
  bar.classList.add("menu-ready");
  toggle.hidden = false;
  toggle.addEventListener("click", () => setOpen(!bar.classList.contains("open")));
  bar.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && bar.classList.contains("open")) {
      setOpen(false);
      toggle.focus();
    }
  });
}

// Wide tables and fixed-size charts scroll inside their card instead of widening the page:
// each one not already inside a `.scroll-x` box gets one (also in fragments htmx swaps in).
const WIDE = "table, svg[width]:not(.icon)";
function wrapTables(root) {
  const tables = root.matches && root.matches(WIDE) ? [root] : root.querySelectorAll(WIDE);
  tables.forEach((table) => {
    if (table.closest(".scroll-x")) return;
    const box = document.createElement("div");
    box.className = "scroll-x";
    table.parentNode.insertBefore(box, table);
    box.appendChild(table);
  });
}

// <form data-confirm="Question?">: submitting asks first (a dialog the CSP allows, unlike an
// onsubmit attribute). Cancelling the dialog leaves the page as it was.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// A box that scrolls (a wide table, a long log or code block) takes the keyboard focus, so that
// it can be scrolled with the arrow keys.
function focusScrollers(root) {
  const boxes = root.matches && root.matches(".scroll-x, pre") ? [root] : root.querySelectorAll(".scroll-x, pre");
  boxes.forEach((box) => {
    const scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
    if (scrolls && !box.hasAttribute("tabindex")) box.setAttribute("tabindex", "0");
    else if (!scrolls && box.getAttribute("tabindex") === "0") box.removeAttribute("tabindex");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpMenu();
  wrapTables(document);
  focusScrollers(document);
});
document.addEventListener("htmx:load", (event) => {
  wrapTables(event.detail.elt);
  focusScrollers(event.detail.elt);
});
let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => focusScrollers(document), 200);
});

// htmx leaves the page as it is on a 4xx answer. An element marked data-swap-errors asks for
// the answer to be shown anyway: the server sends the form back with its message in it.
document.addEventListener("htmx:beforeSwap", (event) => {
  const status = event.detail.xhr.status;
  const elt = event.detail.requestConfig && event.detail.requestConfig.elt;
  if (status >= 400 && status < 500 && elt && elt.closest && elt.closest("[data-swap-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
