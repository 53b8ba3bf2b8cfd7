"""The researcher's API (projects, prompt import, judgments, progress, agreement, leaderboard)
the annotator's API (next task, submit, skip), and dataset snapshots (create, poll, download),
mounted under /api/annotation/."""

from __future__ import annotations

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import datasets, selectors, services
from annotation.api.serializers import (
    DatasetCreateSerializer,
    DatasetSerializer,
    DemonstrationSerializer,
    DemonstrationSubmitSerializer,
    ProjectSerializer,
    PromptImportSerializer,
    PromptSerializer,
    RankingSerializer,
    RankingSubmitSerializer,
    SkipSerializer,
    TaskNextSerializer,
    TaskSerializer,
)
from annotation.imports import (
    ImportRefused,
    UploadTooLarge,
    parse_file,
    row_from_record,
    upload_read,
)
from annotation.models import Assignment, DatasetSnapshot, Project
from annotation.services import TaskError
from core.idempotency import idempotent
from core.permissions import HasRole
from core.roles import Role

RESEARCH = HasRole.of(Role.RESEARCHER, Role.ADMIN)
ANNOTATE = HasRole.of(Role.ANNOTATOR)


def _project(slug: str) -> Project:
    return get_object_or_404(Project, slug=slug)


def _error(exc: TaskError) -> Response:
    return Response({"detail": exc.message}, status=exc.status)


class ProjectList(generics.ListAPIView):
    serializer_class = ProjectSerializer
    permission_classes = [RESEARCH]
    queryset = Project.objects.prefetch_related("contestants")


class ProjectDetail(generics.RetrieveAPIView):
    serializer_class = ProjectSerializer
    permission_classes = [RESEARCH]
    queryset = Project.objects.prefetch_related("contestants")
    lookup_field = "slug"


class PromptList(generics.ListAPIView):
    """The project's prompts; POST imports many at once (all or nothing)."""

    serializer_class = PromptSerializer
    permission_classes = [RESEARCH]

    def get_queryset(self):
        return _project(self.kwargs["slug"]).prompts.order_by("id")

    @extend_schema(request=PromptImportSerializer, responses={201: None})
    def post(self, request, slug: str):
        project = _project(slug)
        data = PromptImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        try:
            if d.get("file"):
                upload = d["file"]
                rows = parse_file(
                    upload_read(upload),
                    filename=upload.name,
                    declared_format=d["format"],
                    instruction=d["instruction"],
                    answer=d["answer"],
                    category=d["category"],
                )
                source = upload.name
            else:
                rows = [row_from_record(n, r) for n, r in enumerate(d["rows"], start=1)]
                source = "api"
        except ImportRefused as exc:
            code = 413 if isinstance(exc, UploadTooLarge) else 400
            return Response({"detail": str(exc), "line": exc.line}, status=code)
        result = services.prompts_import(
            project=project, rows=rows, source=source, user=request.user
        )
        return Response(
            {
                "created": result.created,
                "duplicates": result.duplicates,
                "demonstrations": result.demonstrations,
            },
            status=status.HTTP_201_CREATED,
        )


class JudgmentList(generics.ListAPIView):
    """Rankings of the project (task rankings and edit pairs), with review state."""

    serializer_class = RankingSerializer
    permission_classes = [RESEARCH]

    def get_queryset(self):
        return selectors.judgments_for_api(project=_project(self.kwargs["slug"]))


class DemonstrationList(generics.ListAPIView):
    serializer_class = DemonstrationSerializer
    permission_classes = [RESEARCH]

    def get_queryset(self):
        return _project(self.kwargs["slug"]).demonstrations.order_by("id")


class ProgressView(APIView):
    permission_classes = [RESEARCH]

    @extend_schema(responses={200: dict})
    def get(self, request, slug: str):
        project = _project(slug)
        return Response(
            {
                "progress": selectors.project_progress(project=project),
                "annotators": selectors.annotator_stats(project=project),
            }
        )


class AgreementView(APIView):
    permission_classes = [RESEARCH]

    @extend_schema(responses={200: dict})
    def get(self, request, slug: str):
        project = _project(slug)
        bias = selectors.project_position_bias(project=project)
        return Response(
            {
                **selectors.project_agreement(project=project),
                "position_bias": {
                    "positions": bias.positions,
                    "first_shown_win_rate": bias.first_shown_win_rate,
                    "decisive_pairs": bias.decisive_pairs,
                    "z": bias.z,
                },
            }
        )


class LeaderboardView(APIView):
    permission_classes = [RESEARCH]

    @extend_schema(responses={200: dict})
    def get(self, request, slug: str):
        rows = selectors.project_leaderboard(project=_project(slug))
        return Response({"rows": [{**r, "rank_spread": list(r["rank_spread"])} for r in rows]})


class TaskNext(APIView):
    """Claim (or resume) the caller's next task; 204 when the queue holds nothing for them.
    `kind` (`ranking` or `demonstration`) asks for one kind only; without it kinds alternate."""

    permission_classes = [ANNOTATE]

    @extend_schema(request=TaskNextSerializer, responses={200: TaskSerializer, 204: None})
    def post(self, request, slug: str):
        asked = TaskNextSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        try:
            assignment = services.task_next(
                project=_project(slug), user=request.user, kind=asked.validated_data["kind"]
            )
        except TaskError as exc:
            return _error(exc)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(TaskSerializer(assignment).data)


def _own(request, assignment_id: int) -> Assignment:
    return get_object_or_404(
        Assignment.objects.select_related("item__project"), pk=assignment_id, user=request.user
    )


class TaskRanking(APIView):
    permission_classes = [ANNOTATE]

    @extend_schema(request=RankingSubmitSerializer, responses={201: RankingSerializer})
    @idempotent
    def post(self, request, assignment_id: int):
        data = RankingSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ranking = services.ranking_submit(
                assignment=_own(request, assignment_id), user=request.user, **data.validated_data
            )
        except TaskError as exc:
            return _error(exc)
        return Response({"id": ranking.id, "groups": ranking.groups}, status=201)


class TaskDemonstration(APIView):
    permission_classes = [ANNOTATE]

    @extend_schema(request=DemonstrationSubmitSerializer, responses={201: DemonstrationSerializer})
    @idempotent
    def post(self, request, assignment_id: int):
        data = DemonstrationSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            demo = services.demonstration_submit(
                assignment=_own(request, assignment_id), user=request.user, **data.validated_data
            )
        except TaskError as exc:
            return _error(exc)
        return Response(DemonstrationSerializer(demo).data, status=201)


class TaskSkip(APIView):
    permission_classes = [ANNOTATE]

    @extend_schema(request=SkipSerializer, responses={200: None})
    def post(self, request, assignment_id: int):
        data = SkipSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.task_skip(
                assignment=_own(request, assignment_id),
                user=request.user,
                reason=data.validated_data["reason"],
            )
        except TaskError as exc:
            return _error(exc)
        return Response({"status": "skipped"})


# --------------------------------------------------------------------------- datasets


class DatasetList(generics.ListAPIView):
    """Snapshots, newest first; POST asks for a new one and answers 202 with its id, to poll."""

    serializer_class = DatasetSerializer
    permission_classes = [RESEARCH]

    def get_queryset(self):
        return datasets.snapshot_list()

    @extend_schema(request=DatasetCreateSerializer, responses={202: DatasetSerializer})
    @idempotent
    def post(self, request):
        data = DatasetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        try:
            spec = datasets.Spec(
                source=d["source"],
                format=d["format"],
                project=d["project"],
                style=d["style"],
                pairs=d["pairs"],
                ties=d["ties"],
                filters=datasets.Filters.parse(d["filters"]),
            )
            snapshot = datasets.snapshot_create(name=d["name"], spec=spec, user=request.user)
        except datasets.DatasetError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        body = DatasetSerializer(snapshot, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class DatasetDetail(generics.RetrieveAPIView):
    """Status, content hash, counts, card and download URLs of one snapshot."""

    serializer_class = DatasetSerializer
    permission_classes = [RESEARCH]

    def get_queryset(self):
        return datasets.snapshot_list()


class DatasetDownload(APIView):
    """A ready snapshot's file: `?file=parquet` (default), `jsonl` or `card`."""

    permission_classes = [RESEARCH]

    @extend_schema(responses={200: None})
    def get(self, request, pk: int):
        snapshot = get_object_or_404(DatasetSnapshot, pk=pk)
        try:
            path = datasets.snapshot_file(
                snapshot=snapshot, kind=request.query_params.get("file", "parquet")
            )
        except datasets.DatasetError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        return FileResponse(
            open(path, "rb"),
            as_attachment=True,  # noqa: SIM115
            filename=f"dataset-{snapshot.pk}-{path.name}",
        )
