import json

from django import forms

from arena.models import Contestant
from training.models import JudgeJobKind, RunKind


class RunForm(forms.Form):
    kind = forms.ChoiceField(choices=RunKind.choices)
    loss_type = forms.ChoiceField(required=False, help_text="DPO family only.")
    base_model = forms.ModelChoiceField(
        queryset=Contestant.objects.local().active(),
        to_field_name="name",
        help_text="Any model with local weights, including earlier runs' results.",
    )
    snapshot = forms.ModelChoiceField(queryset=None, help_text="An immutable dataset snapshot.")
    reward_model = forms.ModelChoiceField(
        queryset=None,
        required=False,
        to_field_name="name",
        help_text="PPO/GRPO: a trained reward model that scores the rollouts.",
    )
    verifier = forms.ChoiceField(required=False, help_text="PPO/GRPO: or a verifiable reward.")
    eval_judge = forms.ModelChoiceField(
        queryset=None,
        required=False,
        to_field_name="name",
        label="Evaluation judge",
        help_text="Policy runs: a held-out reward model that judges the new policy against its "
        "parent after training.",
    )
    hyperparameters = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        initial="{}",
        help_text='JSON, e.g. {"learning_rate": 5e-7, "num_epochs": 1, "beta": 0.1}',
    )

    def __init__(self, *args, **kwargs):
        from annotation.models import DatasetSnapshot
        from training.models import RewardModel
        from training.services import loss_types, verifier_names

        super().__init__(*args, **kwargs)
        self.fields["reward_model"].queryset = RewardModel.objects.filter(is_active=True)
        self.fields["eval_judge"].queryset = RewardModel.objects.filter(is_active=True)
        self.fields["verifier"].choices = [("", "—")] + [(v, v) for v in verifier_names()]
        self.fields["snapshot"].queryset = DatasetSnapshot.objects.filter(status="ready")
        self.fields["loss_type"].choices = [("", "—")] + [(t, t) for t in loss_types()]

    def clean_hyperparameters(self) -> dict:
        raw = (self.cleaned_data.get("hyperparameters") or "").strip() or "{}"
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Give the settings as a JSON object.")
        return value


class JudgeJobForm(forms.Form):
    """Start scoring or flagging with a judge."""

    kind = forms.ChoiceField(choices=JudgeJobKind.choices)
    project = forms.ModelChoiceField(
        queryset=None,
        required=False,
        to_field_name="slug",
        help_text="Candidates and flagging: the annotation project.",
    )
    threshold = forms.FloatField(
        required=False,
        min_value=0.01,
        help_text="Flagging: the smallest reward margin (judge's preference against the "
        "annotator's) that sends a ranking back to review.",
    )

    def __init__(self, *args, **kwargs):
        from annotation.models import Project

        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.order_by("name")


class BestOfNForm(forms.Form):
    contestant = forms.ModelChoiceField(
        queryset=Contestant.objects.local().active(),
        to_field_name="name",
        label="Policy",
        help_text="A model with local weights; it samples the answers.",
    )
    prompt = forms.CharField(max_length=8000, widget=forms.Textarea(attrs={"rows": 3}))
    n = forms.IntegerField(min_value=1, max_value=16, initial=4)
    temperature = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=2.0,
        help_text="Empty: the model's own (0.7 when it decodes greedily).",
    )
    max_new_tokens = forms.IntegerField(
        required=False, min_value=1, max_value=1024, help_text="Empty: the model's own."
    )
    seed = forms.IntegerField(required=False, initial=0, min_value=0)
