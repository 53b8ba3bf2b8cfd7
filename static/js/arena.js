// Keyboard shortcuts of the battle page: A / B / T / X vote, R regenerates, N starts a new
// round. Keys typed into a text field are left alone.
document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  var target = event.target;
  if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.isContentEditable)) return;
  var key = event.key.toLowerCase();
  var control = document.querySelector('#battle [data-key="' + key + '"]');
  if (!control || control.disabled) return;
  event.preventDefault();
  control.click();
});

// Prompt boxes with a length limit (data-limit) count their characters: past the limit the
// count turns into a warning and sending is disabled, instead of the text being cut.
document.querySelectorAll("textarea[data-limit]").forEach(function (box) {
  var limit = parseInt(box.dataset.limit, 10);
  var note = document.createElement("small");
  note.className = "muted char-count";
  note.setAttribute("aria-live", "polite");
  box.insertAdjacentElement("afterend", note);
  var send = box.form && box.form.querySelector('button[type="submit"], button:not([type])');
  function update() {
    var length = box.value.length;
    var over = length > limit;
    note.textContent = over
      ? length.toLocaleString() + " characters: " + (length - limit).toLocaleString() +
        " over the limit of " + limit.toLocaleString() + ". Shorten the prompt to send it."
      : length > limit * 0.8 ? length.toLocaleString() + " / " + limit.toLocaleString() + " characters" : "";
    note.classList.toggle("error", over);
    if (send) send.disabled = over;
  }
  box.addEventListener("input", update);
  update();
});
