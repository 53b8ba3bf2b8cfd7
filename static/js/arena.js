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
