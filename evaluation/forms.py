from django import forms

from arena.models import Backend, Contestant
from evaluation.judge_templates import DEFAULT_TEMPLATE_VERSION, TEMPLATES
from training.forms import JudgeChoiceField
from training.models import RewardModel

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class SuiteUploadForm(forms.Form):
    name = forms.SlugField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    baseline = forms.ModelChoiceField(queryset=Contestant.objects.all(), to_field_name="name")
    file = forms.FileField(
        help_text="AlpacaEval's alpaca_eval.json (instruction, dataset), or a JSONL, CSV or "
        "Parquet prompt file."
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is larger than 50 MB.")
        return upload


class EvaluationStartForm(forms.Form):
    contestants = forms.ModelMultipleChoiceField(
        queryset=Contestant.objects.all(), to_field_name="name", required=False
    )
    imported = forms.CharField(
        required=False, help_text="Imported generators to judge too, comma-separated."
    )
    reward_model = JudgeChoiceField(
        queryset=RewardModel.objects.filter(is_active=True),
        to_field_name="name",
        required=False,
        help_text="Offered with its accuracy on pairs held out of its training (95% interval).",
    )
    llm_judge = forms.ModelChoiceField(
        queryset=Contestant.objects.filter(backend=Backend.OPENAI),
        to_field_name="name",
        required=False,
        label="LLM judge",
    )
    template_version = forms.ChoiceField(
        choices=[(v, v) for v in TEMPLATES], initial=DEFAULT_TEMPLATE_VERSION
    )
    both_orders = forms.BooleanField(required=False, help_text="Judge each pair both ways.")

    def clean(self):
        data = super().clean()
        if bool(data.get("reward_model")) == bool(data.get("llm_judge")):
            raise forms.ValidationError("Choose one judge: a reward model or an LLM judge.")
        data["judge"] = data.get("reward_model") or data.get("llm_judge")
        data["imported_generators"] = [
            g.strip() for g in (data.get("imported") or "").split(",") if g.strip()
        ]
        return data


class AlpacaImportForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("model_outputs", "model_outputs.json"), ("annotations", "annotations.json")]
    )
    file = forms.FileField()
