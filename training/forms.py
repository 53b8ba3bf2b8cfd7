import json

from django import forms

from arena.models import Contestant
from training.models import JudgeJobKind, RunKind
from training.setting_fields import add_setting_fields, clean_settings, setting_groups


class JudgeChoiceField(forms.ModelChoiceField):
    """A reward model offered with its held-out accuracy, interval and pairs, and a warning
    when that interval includes chance."""

    def label_from_instance(self, obj) -> str:
        return obj.choice_label


class RunForm(forms.Form):
    kind = forms.ChoiceField(choices=RunKind.choices)
    loss_type = forms.ChoiceField(required=False, help_text="DPO family only.")
    base_model = forms.ModelChoiceField(
        queryset=Contestant.objects.local().active(),
        to_field_name="name",
        help_text="Any model with local weights, including earlier runs' results.",
    )
    snapshot = forms.ModelChoiceField(queryset=None, help_text="An immutable dataset snapshot.")
    reward_model = JudgeChoiceField(
        queryset=None,
        required=False,
        to_field_name="name",
        help_text="PPO/GRPO: a trained reward model that scores the rollouts.",
    )
    verifier = forms.ChoiceField(required=False, help_text="PPO/GRPO: or a verifiable reward.")
    eval_judge = JudgeChoiceField(
        queryset=None,
        required=False,
        to_field_name="name",
        label="Evaluation judge",
        help_text="Policy runs: a reward model that judges the new policy against its parent "
        "after training. It must not have been trained on prompts of the run's snapshot.",
    )
    eval_suite = forms.ModelChoiceField(
        queryset=None,
        required=False,
        to_field_name="name",
        label="Evaluation suite",
        help_text="Policy runs, with an evaluation judge: the prompts both models answer. "
        "Prompts of the run's snapshot are dropped (the report says how many).",
    )
    hyperparameters = forms.CharField(
        required=False,
        label="Other settings (JSON)",
        widget=forms.Textarea(attrs={"rows": 3}),
        initial="{}",
        help_text='Settings without a field above, e.g. {"lora": {"r": 16}, '
        '"adam_betas": [0.9, 0.95]}.',
    )

    def __init__(self, *args, **kwargs):
        from annotation.models import DatasetSnapshot
        from evaluation.models import Suite
        from training.models import RewardModel
        from training.services import loss_types, verifier_names

        super().__init__(*args, **kwargs)
        self.fields["reward_model"].queryset = RewardModel.objects.filter(is_active=True)
        self.fields["eval_judge"].queryset = RewardModel.objects.filter(is_active=True)
        self.fields["eval_suite"].queryset = Suite.objects.order_by("name")
        self.fields["verifier"].choices = [("", "—")] + [(v, v) for v in verifier_names()]
        self.fields["snapshot"].queryset = DatasetSnapshot.objects.filter(status="ready")
        self.fields["loss_type"].choices = [("", "—")] + [(t, t) for t in loss_types()]
        add_setting_fields(self)

    @property
    def setting_groups(self) -> tuple[list, list]:
        return setting_groups(self)

    @property
    def run_fields(self) -> list:
        """The fields above the settings: what to train, from what, judged how."""
        return [self[name] for name in self.declared_fields if name != "hyperparameters"]

    def clean(self) -> dict:
        data = super().clean()
        if "hyperparameters" in data:
            data["hyperparameters"] = clean_settings(self, data)
        return data

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
