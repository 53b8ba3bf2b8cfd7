"""The new-run form's typed settings: one field per hyper-parameter of `training.params`, shown
for the kinds that take it, with the kind's default as its placeholder.

Each field's widget carries `data-kinds` (the run kinds that accept it) and `data-defaults`
(JSON: kind -> default), which `static/js/run-form.js` reads to show only the selected kind's
settings. The common settings come first; the rest are folded under "Advanced settings".
Settings of other types (LoRA, Adam's betas, verifier arguments) stay in the JSON box.
"""

from __future__ import annotations

import json

from django import forms

from training import params

PREFIX = "hp_"
MAIN = (
    "learning_rate",
    "num_epochs",
    "batch_size",
    "max_length",
    "beta",
    "eval_fraction",
    "max_new_tokens",
    "kl_coef",
    "group_size",
)
_TYPED = ("int", "float", "bool", "str")
_BOOL_CHOICES = [("", "default"), ("true", "yes"), ("false", "no")]


def _settings() -> dict[str, tuple[params.Param, list[str]]]:
    """Every typed setting with the kinds that take it, in table order."""
    found: dict[str, tuple[params.Param, list[str]]] = {}
    for kind, table in params.PARAMS.items():
        for name, param in table.items():
            if param.type in _TYPED:
                found.setdefault(name, (param, []))[1].append(kind)
    return found


def _field(param: params.Param, kinds: list[str]) -> forms.Field:
    defaults = {k: params.PARAMS[k][param.name].default for k in kinds}
    attrs = {
        "data-kinds": " ".join(kinds),
        "data-defaults": json.dumps({k: v for k, v in defaults.items() if v is not None}),
        "placeholder": "default",
    }
    options = {"required": False, "label": param.name, "help_text": param.help}
    if param.choices:
        choices = [("", "default"), *((c, c) for c in param.choices)]
        return forms.ChoiceField(choices=choices, widget=forms.Select(attrs=attrs), **options)
    if param.type == "bool":
        return forms.ChoiceField(choices=_BOOL_CHOICES, widget=forms.Select(attrs=attrs), **options)
    if param.type == "str":
        return forms.CharField(widget=forms.TextInput(attrs=attrs), **options)
    widget = forms.NumberInput(attrs={**attrs, "step": "1" if param.type == "int" else "any"})
    if param.type == "int":
        return forms.IntegerField(widget=widget, **options)
    return forms.FloatField(widget=widget, **options)


def add_setting_fields(form: forms.Form) -> None:
    for name, (param, kinds) in _settings().items():
        form.fields[PREFIX + name] = _field(param, kinds)


def setting_groups(form: forms.Form) -> tuple[list, list]:
    """(common, advanced) bound setting fields, in the table's order."""
    bound = [form[name] for name in form.fields if name.startswith(PREFIX)]
    main = [f for f in bound if f.name[len(PREFIX) :] in MAIN]
    return main, [f for f in bound if f.name[len(PREFIX) :] not in MAIN]


def clean_settings(form: forms.Form, data: dict) -> dict:
    """The run's hyper-parameters: the typed fields that are filled, over the JSON box's; each
    error of `params.hyperparameters_clean` is shown at its own field."""
    extra = data.get("hyperparameters") or {}
    typed = {}
    for key in form.fields:
        if not key.startswith(PREFIX) or data.get(key) in (None, ""):
            continue
        name = key[len(PREFIX) :]
        if name in extra:
            form.add_error(key, "Also set in the JSON settings; set it in one place.")
        value = data[key]
        typed[name] = {"true": True, "false": False}.get(value, value)
    values = {**extra, **typed}
    kind = data.get("kind")
    if kind in params.PARAMS:
        try:
            params.hyperparameters_clean(kind, values)
        except params.ParamError as exc:
            for name, message in exc.errors.items():
                if name in typed:
                    form.add_error(PREFIX + name, message[:1].upper() + message[1:])
                else:
                    form.add_error("hyperparameters", f"{name}: {message}")
    return values
