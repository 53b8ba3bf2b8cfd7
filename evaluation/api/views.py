"""The evaluation API: suites (create from an upload or a prompt list, leaderboard, CSV export,
AlpacaEval imports), evaluation runs (start, follow), results (per contestant, with their
judgments). Researchers and admins only, like the training API."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.idempotency import idempotent
from core.parsers import FormParser, JSONParser, MultiPartParser
from core.permissions import HasRole
from core.roles import Role
from evaluation import alpaca_formats, imports, selectors, services, suites
from evaluation.api.serializers import (
    EvaluationRunCreateSerializer,
    EvaluationRunSerializer,
    EvaluationSerializer,
    ImportSerializer,
    JudgmentSerializer,
    SuiteCreateSerializer,
    SuiteSerializer,
)
from evaluation.models import Evaluation, EvaluationRun, Suite

PERMISSIONS = [HasRole.of(Role.RESEARCHER, Role.ADMIN)]


class SuiteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Evaluation suites: a fixed prompt set and a baseline; immutable once used."""

    serializer_class = SuiteSerializer
    queryset = Suite.objects.select_related("baseline")
    permission_classes = PERMISSIONS
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request=SuiteCreateSerializer, responses={201: SuiteSerializer})
    @idempotent
    def create(self, request):
        data = SuiteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        common = {
            "name": values["name"],
            "baseline": values["baseline"],
            "description": values["description"],
            "user": request.user,
        }
        try:
            if values.get("file"):
                upload = values["file"]
                suite = suites.suite_create_from_upload(
                    data=upload.read(), filename=upload.name, **common
                )
            elif values.get("project"):
                suite = suites.suite_create_from_project(project=values["project"], **common)
            elif values.get("snapshot"):
                suite = suites.suite_create_from_snapshot(snapshot=values["snapshot"], **common)
            else:
                rows = [suites.PromptRow(p["instruction"], p["dataset"]) for p in values["prompts"]]
                suite = suites.suite_create(prompts=rows, **common)
        except suites.SuiteRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(SuiteSerializer(suite).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def leaderboard(self, request, pk=None):
        """Rows of the suite under one judge (`?judge=`, else the first), best LC first."""
        suite = self.get_object()
        labels = selectors.suite_judge_labels(suite=suite)
        label = request.query_params.get("judge") or (labels[0] if labels else "")
        rows = selectors.evaluation_rows(suite=suite, judge_label=label)
        return Response(
            {
                "suite": suite.name,
                "judge": label,
                "judges": labels,
                "rows": EvaluationSerializer(rows, many=True).data,
                "arena": selectors.arena_correlation(rows),
                "agreement": selectors.judges_agreement(suite=suite),
            }
        )

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=True, methods=["get"], url_path="export")
    def export(self, request, pk=None):
        """AlpacaEval's leaderboard CSV of the suite under one judge (`?judge=`)."""
        suite = self.get_object()
        labels = selectors.suite_judge_labels(suite=suite)
        label = request.query_params.get("judge") or (labels[0] if labels else "")
        text = alpaca_formats.leaderboard_csv(
            selectors.leaderboard_rows(suite=suite, judge_label=label)
        )
        return HttpResponse(text, content_type="text/csv")

    @extend_schema(request=ImportSerializer, responses={200: dict})
    @action(detail=True, methods=["post"], url_path="import")
    def import_alpaca(self, request, pk=None):
        """Import an AlpacaEval `model_outputs.json` or `annotations.json` into the suite."""
        suite = self.get_object()
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        importer = (
            imports.annotations_import
            if data.validated_data["kind"] == "annotations"
            else imports.model_outputs_import
        )
        try:
            counts = importer(suite=suite, data=upload.read(), filename=upload.name)
        except suites.SuiteRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"imported": counts})


class EvaluationRunViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Evaluation runs: contestants on a suite by one judge, as a background job."""

    serializer_class = EvaluationRunSerializer
    queryset = EvaluationRun.objects.select_related(
        "suite", "reward_model", "judge_contestant"
    ).prefetch_related("contestants")
    permission_classes = PERMISSIONS

    @extend_schema(request=EvaluationRunCreateSerializer, responses={202: EvaluationRunSerializer})
    @idempotent
    def create(self, request):
        data = EvaluationRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            run = services.evaluation_run_create(
                suite=v["suite"],
                contestants=v.get("contestants", []),
                imported_generators=v["imported_generators"],
                judge=v.get("reward_model") or v.get("llm_judge"),
                both_orders=v["both_orders"],
                seed=v["seed"],
                template_version=v["template_version"],
                user=request.user,
            )
        except services.EvaluationRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(EvaluationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class EvaluationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Results: one contestant on one suite under one judge (`?suite=<name>&judge=<label>`)."""

    serializer_class = EvaluationSerializer
    permission_classes = PERMISSIONS

    def get_queryset(self):
        qs = Evaluation.objects.select_related("suite").order_by("suite", "judge_label", "id")
        if suite := self.request.query_params.get("suite"):
            qs = qs.filter(suite__name=suite)
        if judge := self.request.query_params.get("judge"):
            qs = qs.filter(judge_label=judge)
        return qs

    @extend_schema(responses={200: JudgmentSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def judgments(self, request, pk=None):
        judgments = selectors.evaluation_judgments(evaluation=self.get_object())
        page = self.paginate_queryset(judgments)
        if page is not None:
            return self.get_paginated_response(JudgmentSerializer(page, many=True).data)
        return Response(JudgmentSerializer(judgments, many=True).data)
