"""The evaluation API's serializers: what its endpoints read and write."""

from __future__ import annotations

from rest_framework import serializers

from annotation.models import DatasetSnapshot, Project
from arena.models import Backend, Contestant
from evaluation.judge_templates import DEFAULT_TEMPLATE_VERSION, TEMPLATES
from evaluation.models import Evaluation, EvaluationRun, Judgment, Suite
from training.models import RewardModel


class SuiteSerializer(serializers.ModelSerializer):
    baseline = serializers.SlugRelatedField(slug_field="name", read_only=True)
    prompt_count = serializers.SerializerMethodField()
    is_used = serializers.BooleanField(read_only=True)

    class Meta:
        model = Suite
        fields = [
            "id",
            "name",
            "description",
            "baseline",
            "source",
            "source_ref",
            "generation_settings",
            "content_hash",
            "prompt_count",
            "is_used",
            "created_at",
        ]
        read_only_fields = fields

    def get_prompt_count(self, suite: Suite) -> int:
        return suite.prompts.count()


class PromptInSerializer(serializers.Serializer):
    instruction = serializers.CharField(max_length=100_000)
    dataset = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class SuiteCreateSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    description = serializers.CharField(required=False, default="", allow_blank=True)
    baseline = serializers.SlugRelatedField(slug_field="name", queryset=Contestant.objects.all())
    file = serializers.FileField(required=False)
    prompts = PromptInSerializer(many=True, required=False)
    project = serializers.SlugRelatedField(
        slug_field="slug", queryset=Project.objects.all(), required=False
    )
    snapshot = serializers.PrimaryKeyRelatedField(
        queryset=DatasetSnapshot.objects.all(),
        required=False,
        help_text="A built snapshot: its held-out prompts become the suite.",
    )

    def validate(self, data):
        given = [k for k in ("file", "prompts", "project", "snapshot") if data.get(k)]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Give exactly one source: a file, a list of prompts, a project or a snapshot."
            )
        return data


class ImportSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["model_outputs", "annotations"])
    file = serializers.FileField()


class EvaluationRunSerializer(serializers.ModelSerializer):
    suite = serializers.SlugRelatedField(slug_field="name", read_only=True)
    contestants = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    reward_model = serializers.SlugRelatedField(slug_field="name", read_only=True)
    judge_contestant = serializers.SlugRelatedField(slug_field="name", read_only=True)
    judge_label = serializers.CharField(read_only=True)
    reward_model_heldout = serializers.SerializerMethodField(
        help_text="A reward-model judge's held-out accuracy, 95% interval, pairs and warning."
    )

    class Meta:
        model = EvaluationRun
        fields = [
            "id",
            "suite",
            "contestants",
            "imported_generators",
            "judge_kind",
            "judge_label",
            "reward_model",
            "reward_model_heldout",
            "judge_contestant",
            "template_version",
            "both_orders",
            "seed",
            "phase",
            "status",
            "attempts",
            "progress",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_reward_model_heldout(self, run: EvaluationRun) -> dict | None:
        from training.api.serializers import judge_heldout

        return judge_heldout(run.reward_model) if run.reward_model_id else None


class EvaluationRunCreateSerializer(serializers.Serializer):
    suite = serializers.SlugRelatedField(slug_field="name", queryset=Suite.objects.all())
    contestants = serializers.SlugRelatedField(
        slug_field="name", queryset=Contestant.objects.all(), many=True, required=False
    )
    imported_generators = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    reward_model = serializers.SlugRelatedField(
        slug_field="name", queryset=RewardModel.objects.all(), required=False, allow_null=True
    )
    llm_judge = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Contestant.objects.filter(backend=Backend.OPENAI),
        required=False,
        allow_null=True,
    )
    template_version = serializers.ChoiceField(
        choices=list(TEMPLATES), required=False, default=DEFAULT_TEMPLATE_VERSION
    )
    both_orders = serializers.BooleanField(required=False, default=False)
    seed = serializers.IntegerField(required=False, default=0)

    def validate(self, data):
        if bool(data.get("reward_model")) == bool(data.get("llm_judge")):
            raise serializers.ValidationError("Give one judge: reward_model or llm_judge.")
        return data


class EvaluationSerializer(serializers.ModelSerializer):
    suite = serializers.SlugRelatedField(slug_field="name", read_only=True)
    ci = serializers.ListField(child=serializers.FloatField(allow_null=True), read_only=True)
    lc_ci = serializers.ListField(child=serializers.FloatField(allow_null=True), read_only=True)

    class Meta:
        model = Evaluation
        fields = [
            "id",
            "suite",
            "run",
            "generator",
            "imported",
            "judge_label",
            "win_rate",
            "standard_error",
            "ci",
            "lc_win_rate",
            "lc_standard_error",
            "lc_ci",
            "discrete_win_rate",
            "n_wins",
            "n_wins_base",
            "n_draws",
            "n_total",
            "avg_length",
            "position_bias",
            "computed_at",
        ]
        read_only_fields = fields


class JudgmentSerializer(serializers.ModelSerializer):
    instruction = serializers.CharField(source="prompt.instruction")
    prompt_index = serializers.IntegerField(source="prompt.index")
    model_output = serializers.CharField(source="model_answer.text")
    baseline_output = serializers.CharField(source="baseline_text")

    class Meta:
        model = Judgment
        fields = [
            "id",
            "prompt_index",
            "instruction",
            "order",
            "primary",
            "model_output",
            "baseline_output",
            "preference",
            "weighted",
            "judge_output",
            "template_version",
        ]
        read_only_fields = fields
