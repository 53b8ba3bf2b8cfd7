from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from annotation.models import Project
from arena.models import Contestant
from core.idempotency import idempotent
from core.permissions import HasRole
from core.roles import Role
from training import judges, selectors, services
from training.models import JudgeJob, JudgeJobKind, RewardModel, RunKind, TrainingRun


class TrainingRunSerializer(serializers.ModelSerializer):
    base_model = serializers.SlugRelatedField(slug_field="name", read_only=True)
    judge = serializers.SlugRelatedField(slug_field="name", read_only=True)
    result_contestant = serializers.SlugRelatedField(slug_field="name", read_only=True)
    eval_judge = serializers.SlugRelatedField(slug_field="name", read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)
    eta_s = serializers.FloatField(read_only=True, allow_null=True)
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
            "report_status",
            "report",
            "arena",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

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
    hyperparameters = serializers.DictField(required=False, default=dict)
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
    )


class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Training runs: researchers read them; admins start, cancel and resume them."""

    serializer_class = TrainingRunSerializer
    queryset = TrainingRun.objects.select_related(
        "base_model", "result_contestant", "judge", "eval_judge"
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
            run = services.training_run_create(
                kind=values["kind"],
                loss_type=values["loss_type"],
                base_model=values["base_model"],
                snapshot=snapshot,
                hyperparameters=values["hyperparameters"],
                reward_model=values["reward_model"],
                verifier=values["verifier"],
                eval_judge=values["eval_judge"],
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


class JudgeJobSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = JudgeJob
        fields = [
            "id",
            "kind",
            "project",
            "threshold",
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
        fields = ["id", "name", "run", "base_model", "is_active", "heldout_accuracy", "created_at"]
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
    temperature = serializers.FloatField(required=False, allow_null=True, default=None)
    max_new_tokens = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=1024
    )
    seed = serializers.IntegerField(required=False, default=0, min_value=0)


class JudgeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Judges (registered reward models): researchers read them and ask for the best of n;
    admins start scoring and flagging jobs."""

    queryset = RewardModel.objects.select_related("base_model")

    def get_serializer_class(self):
        return JudgeDetailSerializer if self.action == "retrieve" else JudgeSerializer

    def get_permissions(self):
        # Anything but reading and best-of-n (a request without an action, too) is for admins.
        reader = self.action in ("list", "retrieve", "best_of_n")
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

    @extend_schema(request=BestOfNSerializer, responses={200: dict})
    @action(detail=True, methods=["post"], url_path="best-of-n", url_name="best-of-n")
    def best_of_n(self, request, pk=None):
        """Sample n answers of a local model to the prompt; the judge's scores, best first."""
        data = BestOfNSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = judges.judge_best_of_n(judge=self.get_object(), **data.validated_data)
        except judges.JudgeError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(result)
