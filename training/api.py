from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from arena.models import Contestant
from core.idempotency import idempotent
from core.permissions import HasRole
from core.roles import Role
from training import services
from training.models import RewardModel, RunKind, TrainingRun


class TrainingRunSerializer(serializers.ModelSerializer):
    base_model = serializers.SlugRelatedField(slug_field="name", read_only=True)
    judge = serializers.SlugRelatedField(slug_field="name", read_only=True)
    result_contestant = serializers.SlugRelatedField(slug_field="name", read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)
    eta_s = serializers.FloatField(read_only=True, allow_null=True)

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
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class TrainingRunCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RunKind.choices)
    loss_type = serializers.CharField(required=False, allow_blank=True, default="")
    base_model = serializers.SlugRelatedField(
        slug_field="name", queryset=Contestant.objects.local()
    )
    snapshot = serializers.IntegerField()
    hyperparameters = serializers.DictField(required=False, default=dict)
    reward_model = serializers.SlugRelatedField(
        slug_field="name",
        queryset=RewardModel.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        default=None,
    )
    verifier = serializers.CharField(required=False, allow_blank=True, default="")


class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Training runs: researchers read them; admins start, cancel and resume them."""

    serializer_class = TrainingRunSerializer
    queryset = TrainingRun.objects.select_related("base_model", "result_contestant")

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
            run = services.training_run_create(
                kind=values["kind"],
                loss_type=values["loss_type"],
                base_model=values["base_model"],
                snapshot=snapshot,
                hyperparameters=values["hyperparameters"],
                user=request.user,
            )
        except services.RunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
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
