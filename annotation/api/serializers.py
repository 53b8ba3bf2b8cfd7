from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from annotation.models import (
    Assignment,
    DatasetSnapshot,
    Demonstration,
    PairStrategy,
    Project,
    Prompt,
    Ranking,
    SnapshotFormat,
    SnapshotSource,
    SnapshotStatus,
    SnapshotStyle,
    TaskKind,
    TiesPolicy,
)


class ProjectSerializer(serializers.ModelSerializer):
    contestants = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)

    class Meta:
        model = Project
        fields = [
            "slug",
            "name",
            "description",
            "guidelines",
            "guidelines_version",
            "overlap",
            "task_kinds",
            "candidates_per_prompt",
            "sampling",
            "label_schema",
            "contestants",
            "gold_rate",
            "created_at",
        ]


class PromptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "messages", "category", "tags", "source", "created_at"]


class PromptImportSerializer(serializers.Serializer):
    """Either `rows` (JSON records like the lines of a JSONL file) or an uploaded `file`."""

    rows = serializers.ListField(child=serializers.DictField(), required=False)
    file = serializers.FileField(required=False)
    format = serializers.ChoiceField(
        choices=["", "jsonl", "csv", "parquet"], required=False, default=""
    )
    instruction = serializers.CharField(required=False, default="", allow_blank=True)
    answer = serializers.CharField(required=False, default="", allow_blank=True)
    category = serializers.CharField(required=False, default="", allow_blank=True)

    def validate(self, attrs):
        if bool(attrs.get("rows")) == bool(attrs.get("file")):
            raise serializers.ValidationError("Send either `rows` or a `file`.")
        return attrs


class RankingSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username")

    class Meta:
        model = Ranking
        fields = [
            "id",
            "item",
            "prompt",
            "annotator",
            "origin",
            "groups",
            "display_order",
            "all_bad",
            "labels",
            "rationale",
            "guidelines_version",
            "duration_ms",
            "is_gold",
            "gold_score",
            "review_status",
            "review_comment",
            "created_at",
        ]


class DemonstrationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Demonstration
        fields = [
            "id",
            "prompt",
            "text",
            "edited_from",
            "guidelines_version",
            "review_status",
            "created_at",
        ]


class TaskNextSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=[("", "Mixed")] + TaskKind.choices, required=False, default=""
    )


class TaskSerializer(serializers.ModelSerializer):
    """A task as the annotator sees it: answers under letters, never their authors."""

    kind = serializers.CharField(source="item.kind")
    messages = serializers.JSONField(source="item.prompt.messages")
    answers = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "kind", "messages", "answers", "guidelines_version", "expires_at"]

    def get_answers(self, assignment) -> list[dict]:
        from annotation.selectors import task_answers

        return [
            {"letter": a.letter, "text": a.completion.text}
            for a in task_answers(assignment=assignment)
        ]


class RankingSubmitSerializer(serializers.Serializer):
    order = serializers.CharField(max_length=200)
    labels = serializers.DictField(child=serializers.DictField(), required=False, default=dict)
    rationale = serializers.CharField(required=False, default="", allow_blank=True)
    all_bad = serializers.BooleanField(required=False, default=False)


class DemonstrationSubmitSerializer(serializers.Serializer):
    text = serializers.CharField()
    edited_from = serializers.IntegerField(required=False, allow_null=True, default=None)


class SkipSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class DatasetCreateSerializer(serializers.Serializer):
    """A snapshot request; `filters` as in docs/datasets.md."""

    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    source = serializers.ChoiceField(choices=SnapshotSource.choices)
    project = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Project.objects.all(),
        required=False,
        allow_null=True,
        default=None,
    )
    format = serializers.ChoiceField(choices=SnapshotFormat.choices)
    style = serializers.ChoiceField(choices=SnapshotStyle.choices, default="standard")
    pairs = serializers.ChoiceField(choices=PairStrategy.choices, default="all")
    ties = serializers.ChoiceField(choices=TiesPolicy.choices, default="drop")
    filters = serializers.DictField(required=False, default=dict)


class DatasetSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    downloads = serializers.SerializerMethodField()
    built_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = DatasetSnapshot
        fields = [
            "id",
            "name",
            "status",
            "error",
            "source",
            "project",
            "format",
            "style",
            "pairs",
            "ties",
            "filters",
            "content_hash",
            "row_count",
            "card",
            "downloads",
            "created_by",
            "created_at",
            "built_at",
        ]

    def get_downloads(self, snapshot: DatasetSnapshot) -> dict:
        if snapshot.status != SnapshotStatus.READY:
            return {}
        request = self.context.get("request")
        base = reverse("annotation-api-dataset-download", kwargs={"pk": snapshot.pk})
        url = request.build_absolute_uri(base) if request else base
        return {kind: f"{url}?file={kind}" for kind in [*snapshot.files, "card"]}
