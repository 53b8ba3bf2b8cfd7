from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class RunKind(models.TextChoices):
    SFT = "sft", "Supervised fine-tuning (SFT)"
    REWARD = "reward", "Reward model (Bradley-Terry)"
    DPO = "dpo", "DPO family"
    PPO = "ppo", "PPO (reward model or verifier)"
    GRPO = "grpo", "GRPO / RLVR (verifier or reward model)"


# Online RL: prompts from a snapshot, rewards from a judge or a verifiable function.
RL_KINDS = ("ppo", "grpo")


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class ReportStatus(models.TextChoices):
    """The evaluation report of a policy run, written after training succeeds."""

    NONE = "", "No report"
    PENDING = "pending", "Being computed"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class TrainingRunQuerySet(models.QuerySet):
    def active(self) -> TrainingRunQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)

    def silent(self, *, since) -> TrainingRunQuerySet:
        """Running runs whose worker has not reported since `since`: it died."""
        return self.filter(status=RunStatus.RUNNING, heartbeat_at__lt=since)


class TrainingRun(models.Model):
    """One training job: what to train, from which model, on which immutable dataset snapshot,
    with which settings; its progress, metrics, log and result.

    The result of a policy run is a new arena contestant (lineage: parent, run, snapshot); the
    result of a reward run is a judge (`RewardModel`)."""

    kind = models.CharField(max_length=20, choices=RunKind.choices)
    loss_type = models.CharField(max_length=20, blank=True, help_text="DPO family: the loss.")
    base_model = models.ForeignKey(
        "arena.Contestant", on_delete=models.PROTECT, related_name="training_runs"
    )
    snapshot = models.ForeignKey(
        "annotation.DatasetSnapshot", on_delete=models.PROTECT, related_name="training_runs"
    )
    hyperparameters = models.JSONField(default=dict, blank=True)
    judge = models.ForeignKey(
        "training.RewardModel",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="PPO/GRPO: the reward model that scores rollouts.",
    )
    eval_judge = models.ForeignKey(
        "training.RewardModel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Policy runs: a held-out reward model that judges the evaluation report.",
    )
    verifier = models.CharField(
        max_length=50, blank=True, help_text="PPO/GRPO: a verifiable reward function."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_runs",
    )
    status = models.CharField(
        max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=list, blank=True, help_text="One entry per logged step.")
    summary = models.JSONField(default=dict, blank=True, help_text="Final metrics.")
    log = models.TextField(blank=True)
    device = models.CharField(max_length=50, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    checkpoint_dir = models.CharField(max_length=500, blank=True)
    artifact_dir = models.CharField(max_length=500, blank=True)
    data_hash = models.CharField(max_length=64, blank=True)
    result_contestant = models.OneToOneField(
        "arena.Contestant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="source_run",
        help_text="The policy this run produced, in the arena.",
    )
    report_status = models.CharField(
        max_length=10, choices=ReportStatus.choices, default=ReportStatus.NONE, blank=True
    )
    report = models.JSONField(
        default=dict, blank=True, help_text="Policy runs: evaluation against the parent model."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Run #{self.pk} ({self.get_kind_display()}, {self.status})"

    @property
    def label(self) -> str:
        kind = self.loss_type.upper() if self.kind == RunKind.DPO and self.loss_type else self.kind
        return f"{kind.upper() if kind == self.kind else kind} #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def progress_percent(self) -> int:
        if not self.total_steps:
            return 100 if self.status == RunStatus.SUCCEEDED else 0
        return min(100, round(100 * self.step / self.total_steps))

    @property
    def elapsed_s(self) -> float | None:
        if not self.started_at:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()

    @property
    def eta_s(self) -> float | None:
        elapsed = self.elapsed_s
        if self.status != RunStatus.RUNNING or not elapsed or not self.step or not self.total_steps:
            return None
        return elapsed / self.step * (self.total_steps - self.step)


class RewardModel(models.Model):
    """A trained reward model registered as a judge: it scores battles and annotation
    candidates, picks the best of n samples, and flags annotations it strongly disagrees with."""

    name = models.SlugField(max_length=100, unique=True)
    run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="reward_model"
    )
    base_model = models.ForeignKey(
        "arena.Contestant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    path = models.CharField(max_length=500)
    is_active = models.BooleanField(default=True)
    heldout_accuracy = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class JudgeScore(models.Model):
    """A judge's reward for one answer: one side of an arena battle (its last answer, given the
    conversation before it) or one annotation candidate (a `Completion` of a prompt)."""

    judge = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="scores")
    battle = models.ForeignKey(
        "arena.Battle", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    side = models.CharField(max_length=1, blank=True, help_text="Battles: `a` or `b`.")
    completion = models.ForeignKey(
        "annotation.Completion", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    score = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            # These unique indexes are also how scores are looked up (judge first).
            models.UniqueConstraint(
                fields=["judge", "battle", "side"],
                condition=models.Q(battle__isnull=False),
                name="judge_score_once_per_battle_side",
            ),
            models.UniqueConstraint(
                fields=["judge", "completion"],
                condition=models.Q(completion__isnull=False),
                name="judge_score_once_per_completion",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(battle__isnull=False, completion__isnull=True, side__in=["a", "b"])
                    | models.Q(battle__isnull=True, completion__isnull=False, side="")
                ),
                name="judge_score_one_target",
            ),
        ]

    def __str__(self) -> str:
        target = f"battle {self.battle_id}{self.side}" if self.battle_id else self.completion_id
        return f"{self.judge_id} on {target}: {self.score:.3f}"


class JudgeJobKind(models.TextChoices):
    SCORE_BATTLES = "score_battles", "Score arena battles"
    SCORE_CANDIDATES = "score_candidates", "Score a project's candidate answers"
    FLAG_RANKINGS = "flag_rankings", "Flag rankings the judge disagrees with"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class JudgeJob(models.Model):
    """Background work of a judge (on the `gpu` queue): scoring battles or a project's
    candidates, or flagging a project's rankings; `result` holds what it did."""

    judge = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=JudgeJobKind.choices)
    project = models.ForeignKey(
        "annotation.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    threshold = models.FloatField(
        null=True, blank=True, help_text="Flagging: the smallest reward margin that flags."
    )
    status = models.CharField(
        max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.judge_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)


class JudgeFlag(models.Model):
    """A ranking a judge disagreed with by at least the job's threshold, sent back to review.
    Kept so that a ranking a reviewer accepted again is not flagged again by the same judge."""

    judge = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="flags")
    ranking = models.ForeignKey(
        "annotation.Ranking", on_delete=models.CASCADE, related_name="judge_flags"
    )
    preferred = models.ForeignKey(
        "annotation.Completion",
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The answer the judge prefers (the annotator ranked it lower).",
    )
    over = models.ForeignKey("annotation.Completion", on_delete=models.CASCADE, related_name="+")
    margin = models.FloatField(help_text="Judge reward of `preferred` minus that of `over`.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["judge", "ranking"], name="judge_flag_once")]

    def __str__(self) -> str:
        return f"{self.judge_id} flags ranking {self.ranking_id} ({self.margin:.2f})"
