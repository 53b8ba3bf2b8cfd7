from __future__ import annotations

from django import forms

from annotation.imports import FORMATS


class RankingForm(forms.Form):
    """The order in display letters (`D > C > A = B`) plus one field per answer and label
    (`label-A-helpfulness`), built from the project's label schema."""

    order = forms.CharField(max_length=200, label="Order (best first)")
    all_bad = forms.BooleanField(required=False, label="All answers are bad")
    rationale = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, letters: list[str], schema: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.letters, self.schema = letters, schema
        for letter in letters:
            for spec in schema:
                name = f"label-{letter}-{spec['name']}"
                if spec["kind"] == "scale":
                    choices = [("", "–")] + [
                        (str(v), str(v)) for v in range(spec["min"], spec["max"] + 1)
                    ]
                    self.fields[name] = forms.ChoiceField(
                        choices=choices, required=False, label=spec["name"].capitalize()
                    )
                else:
                    self.fields[name] = forms.BooleanField(
                        required=False, label=spec.get("label", spec["name"])
                    )

    def labels(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for letter in self.letters:
            values = {}
            for spec in self.schema:
                value = self.cleaned_data.get(f"label-{letter}-{spec['name']}")
                if spec["kind"] == "scale" and value:
                    values[spec["name"]] = int(value)
                elif spec["kind"] == "flag" and value:
                    values[spec["name"]] = True
            if values:
                out[letter] = values
        return out

    def label_fields(self, letter: str) -> list:
        return [self[f"label-{letter}-{spec['name']}"] for spec in self.schema]


class DemonstrationForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 14}), label="Your answer")
    edited_from = forms.IntegerField(required=False, widget=forms.HiddenInput)


class SkipForm(forms.Form):
    reason = forms.CharField(max_length=300, label="Why skip?")


class PreviewForm(forms.Form):
    text = forms.CharField(required=False)


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accept", "Accept"), ("reject", "Reject")])
    comment = forms.CharField(required=False, max_length=2000)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL, CSV or Parquet.")
    format = forms.ChoiceField(
        choices=[("", "from the file name")] + [(f, f.upper()) for f in FORMATS], required=False
    )
    category = forms.CharField(max_length=50, required=False)
    instruction = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Instruction template",
        help_text="Optional, FLAN style: e.g. 'Translate to French: {{sentence}}'.",
    )
    answer = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Answer template",
        help_text="Optional: e.g. '{{translation}}' turns each row into a demonstration too.",
    )


class GenerateForm(forms.Form):
    limit = forms.IntegerField(
        min_value=1, max_value=1000, initial=10, label="Prompts without candidates to answer"
    )
