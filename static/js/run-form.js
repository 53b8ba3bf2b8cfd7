// The new-run form: show the settings the chosen kind takes, each with that kind's default
// as its placeholder, and the choices that only some kinds use. Hidden settings are disabled
// so that they are not sent. Without JavaScript every field shows and the server checks.
(function () {
  "use strict";
  var form = document.getElementById("run-form");
  if (!form) return;
  var kind = form.querySelector("#id_kind");
  var ONLY = {
    loss_type: ["dpo"],
    reward_model: ["ppo", "grpo"],
    verifier: ["ppo", "grpo"],
    eval_judge: ["sft", "dpo", "ppo", "grpo"],
    eval_suite: ["sft", "dpo", "ppo", "grpo"],
  };

  function show(box, visible) {
    box.hidden = !visible;
    box.querySelectorAll("input, select, textarea").forEach(function (el) {
      el.disabled = !visible;
    });
  }

  // Learning rates read as 1e-5, not 0.00001.
  function shown(value) {
    var small = typeof value === "number" && value !== 0 && Math.abs(value) < 1e-3;
    return small ? value.toExponential() : String(value);
  }

  function update() {
    var k = kind.value;
    form.querySelectorAll("[data-kinds]").forEach(function (input) {
      var box = input.closest(".setting");
      var takes = input.dataset.kinds.split(" ").indexOf(k) >= 0;
      show(box, takes);
      if (takes && input.tagName === "INPUT") {
        var defaults = JSON.parse(input.dataset.defaults || "{}");
        input.placeholder = k in defaults ? shown(defaults[k]) : "trainer default";
      }
    });
    Object.keys(ONLY).forEach(function (name) {
      var box = form.querySelector('[data-field="' + name + '"]');
      if (box) show(box, ONLY[name].indexOf(k) >= 0);
    });
  }

  kind.addEventListener("change", update);
  update();
})();
