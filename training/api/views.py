"""The training API's endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from core.idempotency import idempotent
from core.permissions import HasRole
from core.roles import Role
from training import judges, selectors, services
from training.api.serializers import (
    BestOfNSerializer,
    JudgeDetailSerializer,
    JudgeJobCreateSerializer,
    JudgeJobSerializer,
    JudgeSerializer,
    TrainingRunCreateSerializer,
    TrainingRunSerializer,
)
from training.models import (
    RewardModel,
    TrainingRun,
)


class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Training runs: researchers read them; admins start, cancel and resume them."""

    serializer_class = TrainingRunSerializer
    queryset = TrainingRun.objects.select_related(
        "base_model", "result_contestant", "judge", "eval_judge", "eval_suite", "evaluation"
    )

    def get_permissions(self):
        roles = (Role.RESEARCHER,) if self.action in ("list", "retrieve") else (Role.ADMIN,)
        return [HasRole.of(*roles)()]

    @extend_schema(request=TrainingRunCreateSerializer, responses={202: TrainingRunSerializer})
    @idempotent
    def create(self, request):
        from annotation.models import DatasetSnapshot

        data = TrainingRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        snapshot = DatasetSnapshot.objects.filter(pk=values["snapshot"]).first()
        if snapshot is None:
            raise serializers.ValidationError({"snapshot": ["No such dataset snapshot."]})
        try:
            run_request = services.run_request_build(
                kind=values["kind"],
                loss_type=values["loss_type"],
                base_model=values["base_model"],
                snapshot=snapshot,
                hyperparameters=values["hyperparameters"],
                reward_model=values["reward_model"],
                verifier=values["verifier"],
                eval_judge=values["eval_judge"],
                eval_suite=values["eval_suite"],
            )
        except services.RunSettingsError as exc:
            errors = {f"hyperparameters.{name}": [msg] for name, msg in exc.errors.items()}
            raise serializers.ValidationError(errors) from None
        except services.RunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        run = services.training_run_create(request=run_request, user=request.user)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: TrainingRunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._control(services.training_run_cancel)

    @extend_schema(request=None, responses={200: TrainingRunSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._control(services.training_run_resume)

    def _control(self, action_fn):
        try:
            run = action_fn(run=self.get_object())
        except services.RunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(TrainingRunSerializer(run).data)


class JudgeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Judges (registered reward models): researchers read them and ask for the best of n;
    admins start scoring and flagging jobs."""

    queryset = RewardModel.objects.select_related("base_model")

    def get_serializer_class(self):
        return JudgeDetailSerializer if self.action == "retrieve" else JudgeSerializer

    def get_permissions(self):
        # Anything but reading and best-of-n (a request without an action, too) is for admins.
        reader = self.action in ("list", "retrieve", "best_of_n", "job")
        roles = (Role.RESEARCHER, Role.ADMIN) if reader else (Role.ADMIN,)
        return [HasRole.of(*roles)()]

    @extend_schema(request=JudgeJobCreateSerializer, responses={202: JudgeJobSerializer})
    @action(detail=True, methods=["post"])
    def jobs(self, request, pk=None):
        """Queue scoring of arena battles or of a project's candidates, or flagging of a
        project's rankings (`threshold`: the reward margin that flags)."""
        data = JudgeJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = judges.judge_job_create(
                judge=self.get_object(), user=request.user, **data.validated_data
            )
        except judges.JudgeError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(JudgeJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=BestOfNSerializer, responses={202: JudgeJobSerializer})
    @action(detail=True, methods=["post"], url_path="best-of-n", url_name="best-of-n")
    def best_of_n(self, request, pk=None):
        """Queue n samples of a local model to the prompt on the gpu worker; the job's `result`
        holds the judge's scores, best first, once its status is `succeeded`."""
        data = BestOfNSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = judges.judge_best_of_n_start(
                judge=self.get_object(), user=request.user, **data.validated_data
            )
        except judges.JudgeError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(JudgeJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: JudgeJobSerializer})
    @action(detail=True, methods=["get"], url_path=r"jobs/(?P<job_id>[0-9]+)", url_name="job")
    def job(self, request, pk=None, job_id=None):
        """One job of this judge: its status and, once finished, its result."""
        job = get_object_or_404(selectors.judge_jobs(judge=self.get_object()), pk=job_id)
        return Response(JudgeJobSerializer(job).data)
