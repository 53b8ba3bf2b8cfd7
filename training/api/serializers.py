"""The training API's serializers: what its endpoints read and write."""

from __future__ import annotations

from rest_framework import serializers

from annotation.models import Project
from arena.api.serializers import seed_field
from arena.models import Contestant
from arena.selectors import user_sees_internals
from evaluation.models import Suite
from training import judges, selectors
from training.models import (
    JudgeJob,
    JudgeJobKind,
    ReportStatus,
    RewardModel,
    RunKind,
    TrainingRun,
)


def judge_heldout(judge: RewardModel) -> dict:
    return judge.heldout_facts


class TrainingRunSerializer(serializers.ModelSerializer):
    base_model = serializers.SlugRelatedField(slug_field="name", read_only=True)
    judge = serializers.SlugRelatedField(slug_field="name", read_only=True)
    result_contestant = serializers.SlugRelatedField(slug_field="name", read_only=True)
    eval_judge = serializers.SlugRelatedField(slug_field="name", read_only=True)
    eval_judge_heldout = serializers.SerializerMethodField(
        help_text="The evaluation judge's held-out accuracy, 95% interval, pairs and warning."
    )
    eval_suite = serializers.SlugRelatedField(slug_field="name", read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)
    report_status = serializers.ChoiceField(choices=ReportStatus.choices, read_only=True)
    report = serializers.JSONField(
        read_only=True, help_text="Policy runs: evaluation against the parent model."
    )
    eta_s = serializers.FloatField(read_only=True, allow_null=True)
    artifact_dir = serializers.CharField(
        read_only=True, allow_null=True, help_text="The run's folder on the server: admins only."
    )
    arena = serializers.SerializerMethodField(
        help_text="The policy and its parent on the newest overall leaderboard (live)."
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "kind",
            "loss_type",
            "base_model",
            "snapshot",
            "hyperparameters",
            "judge",
            "verifier",
            "status",
            "cancel_requested",
            "step",
            "total_steps",
            "progress_percent",
            "eta_s",
            "metrics",
            "summary",
            "log",
            "device",
            "error",
            "attempts",
            "artifact_dir",
            "data_hash",
            "result_contestant",
            "eval_judge",
            "eval_judge_heldout",
            "eval_suite",
            "report_status",
            "report",
            "arena",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def to_representation(self, run: TrainingRun) -> dict:
        data = super().to_representation(run)
        request = self.context.get("request")
        if request is None or not user_sees_internals(request.user):
            data["artifact_dir"] = None
        return data

    def get_eval_judge_heldout(self, run: TrainingRun) -> dict | None:
        return judge_heldout(run.eval_judge) if run.eval_judge_id else None

    def get_arena(self, run: TrainingRun) -> dict | None:
        arena = selectors.run_arena(run)
        if arena and arena["computed_at"]:
            arena["computed_at"] = arena["computed_at"].isoformat()
        return arena


class TrainingRunCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RunKind.choices)
    loss_type = serializers.CharField(required=False, allow_blank=True, default="")
    base_model = serializers.SlugRelatedField(
        slug_field="name", queryset=Contestant.objects.local()
    )
    snapshot = serializers.IntegerField()
    hyperparameters = serializers.DictField(
        required=False,
        default=dict,
        help_text="Names, types and ranges per kind: training/params.py (docs/training.md).",
    )
    reward_model = serializers.SlugRelatedField(
        slug_field="name",
        queryset=RewardModel.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        default=None,
    )
    verifier = serializers.CharField(required=False, allow_blank=True, default="")
    eval_judge = serializers.SlugRelatedField(
        slug_field="name",
        queryset=RewardModel.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        default=None,
        help_text="Policy runs: a reward model not trained on prompts of the run's snapshot.",
    )
    eval_suite = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Suite.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Policy runs, with eval_judge: the evaluation suite whose prompts the report "
        "answers (prompts of the run's snapshot are dropped).",
    )


class JudgeJobSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    contestant = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = JudgeJob
        fields = [
            "id",
            "kind",
            "project",
            "threshold",
            "contestant",
            "params",
            "status",
            "result",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class JudgeSerializer(serializers.ModelSerializer):
    base_model = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = RewardModel
        fields = [
            "id",
            "name",
            "run",
            "base_model",
            "is_active",
            "heldout_accuracy",
            "heldout_accuracy_low",
            "heldout_accuracy_high",
            "heldout_pairs",
            "heldout_warning",
            "created_at",
        ]
        read_only_fields = fields


class JudgeDetailSerializer(JudgeSerializer):
    agreement = serializers.SerializerMethodField(
        help_text="Share of voted battles (with a winner) where the judge prefers the winner."
    )
    jobs = serializers.SerializerMethodField()

    class Meta(JudgeSerializer.Meta):
        fields = [*JudgeSerializer.Meta.fields, "agreement", "jobs"]
        read_only_fields = fields

    def get_agreement(self, judge: RewardModel) -> dict:
        return selectors.judge_agreement(judge=judge)

    def get_jobs(self, judge: RewardModel) -> list[dict]:
        return JudgeJobSerializer(judge.jobs.select_related("project")[:20], many=True).data


class JudgeJobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=JudgeJobKind.choices)
    project = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Project.objects.all(),
        required=False,
        allow_null=True,
        default=None,
    )
    threshold = serializers.FloatField(required=False, allow_null=True, default=None)


class BestOfNSerializer(serializers.Serializer):
    contestant = serializers.SlugRelatedField(
        slug_field="name", queryset=Contestant.objects.local().active()
    )
    prompt = serializers.CharField(max_length=8000)
    n = serializers.IntegerField(min_value=1, max_value=judges.BEST_OF_N_MAX, default=4)
    temperature = serializers.FloatField(
        required=False, allow_null=True, default=None, min_value=0, max_value=2
    )
    max_new_tokens = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=1024
    )
    seed = seed_field(required=False, default=0)
