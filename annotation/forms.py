from __future__ import annotations

from django import forms

from annotation.imports import FORMATS
from annotation.models import (
    PairStrategy,
    Project,
    SnapshotFormat,
    SnapshotSource,
    SnapshotStyle,
    TiesPolicy,
)


class RankingForm(forms.Form):
    """The order in display letters (`D > C > A = B`) plus one field per answer and label
    (`label-A-helpfulness`), built from the project's label schema."""

    # Not required at form level: an empty or partial order gets the service's message, which
    # says which answers are still to be placed.
    order = forms.CharField(max_length=200, required=False, label="Order (best first)")
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


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class DatasetForm(forms.Form):
    """A dataset snapshot request: source, project, format and filters."""

    name = forms.CharField(max_length=200)
    source = forms.ChoiceField(choices=SnapshotSource.choices)
    project = forms.ModelChoiceField(
        queryset=None, required=False, help_text="Not needed for arena votes."
    )
    format = forms.ChoiceField(choices=SnapshotFormat.choices)
    style = forms.ChoiceField(choices=SnapshotStyle.choices)
    pairs = forms.ChoiceField(choices=PairStrategy.choices, label="Pairs from a ranking")
    ties = forms.ChoiceField(choices=TiesPolicy.choices)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    accepted_only = forms.BooleanField(required=False, label="Accepted by review only")
    min_agreement = forms.FloatField(
        required=False, min_value=0, max_value=1, help_text="Per item, among its annotators (0-1)."
    )
    gold_min = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        label="Annotators passing gold (least mean gold score)",
    )
    categories = forms.CharField(required=False, help_text="Comma separated.")
    guidelines_versions = forms.CharField(required=False, help_text="Comma separated numbers.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.order_by("name")

    def clean_guidelines_versions(self) -> list[int]:
        try:
            return [int(v) for v in _split(self.cleaned_data["guidelines_versions"])]
        except ValueError:
            raise forms.ValidationError("Give version numbers, e.g. 1, 2.") from None

    def filters(self) -> dict:
        d = self.cleaned_data
        return {
            "date_from": d["date_from"],
            "date_to": d["date_to"],
            "accepted_only": d["accepted_only"],
            "min_agreement": d["min_agreement"],
            "gold_min": d["gold_min"],
            "categories": _split(d["categories"]),
            "guidelines_versions": d["guidelines_versions"],
        }
