from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.utils import timezone

from core.jobs import Job, JobQuerySet, JobStatus


class RunKind(models.TextChoices):
    SFT = "sft", "Supervised fine-tuning (SFT)"
    REWARD = "reward", "Reward model (Bradley-Terry)"
    DPO = "dpo", "DPO family"
    PPO = "ppo", "PPO (reward model or verifier)"
    GRPO = "grpo", "GRPO / RLVR (verifier or reward model)"


# Online RL: prompts from a snapshot, rewards from a judge or a verifiable function.
RL_KINDS = ("ppo", "grpo")


# A run's status is the shared job status (core.jobs).
RunStatus = JobStatus


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class ReportStatus(models.TextChoices):
    """The evaluation report of a policy run as pages and the API name it (its job's status in
    the report's own words)."""

    NONE = "", "No report"
    PENDING = "pending", "Being computed"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


REPORT_STATUS_OF = {
    JobStatus.QUEUED: ReportStatus.PENDING,
    JobStatus.RUNNING: ReportStatus.PENDING,
    JobStatus.SUCCEEDED: ReportStatus.READY,
    JobStatus.FAILED: ReportStatus.FAILED,
    JobStatus.CANCELLED: ReportStatus.FAILED,
}


class TrainingRunQuerySet(JobQuerySet):
    pass


class TrainingRun(Job):
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
        help_text="Policy runs: a reward model not trained on the run's prompts that judges "
        "the evaluation report.",
    )
    eval_suite = models.ForeignKey(
        "evaluation.Suite",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="training_runs",
        help_text="Policy runs: the prompts of the evaluation report (those the run trains on "
        "are dropped).",
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
    cancel_requested = models.BooleanField(default=False)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=list, blank=True, help_text="One entry per logged step.")
    summary = models.JSONField(default=dict, blank=True, help_text="Final metrics.")
    log = models.TextField(blank=True)
    device = models.CharField(max_length=50, blank=True)
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
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

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
    def evaluation_report(self) -> EvaluationReport | None:
        """Policy runs, once registered: the evaluation report's job."""
        try:
            return self.evaluation
        except ObjectDoesNotExist:
            return None

    @property
    def report_status(self) -> str:
        report = self.evaluation_report
        return REPORT_STATUS_OF[report.status] if report else ReportStatus.NONE

    @property
    def report(self) -> dict:
        """Policy runs: evaluation against the parent model (or why there is none)."""
        report = self.evaluation_report
        return report.result if report else {}

    @property
    def progress_percent(self) -> int:
        if not self.total_steps:
            return 100 if self.status == RunStatus.SUCCEEDED else 0
        return min(100, round(100 * self.step / self.total_steps))

    @property
    def eta_s(self) -> float | None:
        elapsed = self.elapsed_s
        if self.status != RunStatus.RUNNING or not elapsed or not self.step or not self.total_steps:
            return None
        return elapsed / self.step * (self.total_steps - self.step)


class EvaluationReport(Job):
    """The evaluation report of a policy run, a job of its own on the `gpu` queue, started when
    the run registers its policy: its own attempts, heartbeat and error, so that a report that
    fails or is lost never touches the run, which succeeded. `result` is the report."""

    run = models.OneToOneField(TrainingRun, on_delete=models.CASCADE, related_name="evaluation")
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Report of run #{self.run_id} ({self.status})"


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
    heldout_accuracy = models.FloatField(
        null=True, blank=True, help_text="Accuracy on the pairs its training held out."
    )
    heldout_accuracy_low = models.FloatField(null=True, blank=True, help_text="95% Wilson.")
    heldout_accuracy_high = models.FloatField(null=True, blank=True, help_text="95% Wilson.")
    heldout_pairs = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def heldout_text(self) -> str:
        """ "held-out accuracy 0.58 [0.53, 0.63] on 400 pairs", or that none is known."""
        if self.heldout_accuracy is None:
            return "no held-out accuracy known"
        text = f"held-out accuracy {self.heldout_accuracy:.2f}"
        if self.heldout_accuracy_low is not None and self.heldout_accuracy_high is not None:
            text += f" [{self.heldout_accuracy_low:.2f}, {self.heldout_accuracy_high:.2f}]"
        if self.heldout_pairs:
            text += f" on {self.heldout_pairs} pair{'s' if self.heldout_pairs != 1 else ''}"
        return text

    @property
    def heldout_facts(self) -> dict:
        """The held-out accuracy with its interval, text and warning, as the API and the run
        reports give it."""
        return {
            "accuracy": self.heldout_accuracy,
            "low": self.heldout_accuracy_low,
            "high": self.heldout_accuracy_high,
            "pairs": self.heldout_pairs,
            "text": self.heldout_text,
            "warning": self.heldout_warning,
        }

    @property
    def heldout_warning(self) -> str:
        """Why this judge's verdicts may be no better than a coin flip ("" when they are)."""
        low, high = self.heldout_accuracy_low, self.heldout_accuracy_high
        if self.heldout_accuracy is None:
            return (
                f"Judge {self.name} has no known held-out accuracy: nothing shows that its "
                "verdicts are better than chance."
            )
        if low is None or high is None:
            return (
                f"Judge {self.name}'s held-out accuracy has no known interval: nothing shows "
                "that its verdicts are better than chance."
            )
        if low <= 0.5 <= high:
            return (
                f"The 95% interval of judge {self.name}'s held-out accuracy "
                f"[{low:.2f}, {high:.2f}] includes 0.5: it is not distinguishable from chance."
            )
        return ""

    @property
    def choice_label(self) -> str:
        """How forms offer the judge: its name, held-out accuracy and any warning."""
        label = f"{self.name} · {self.heldout_text}"
        if self.heldout_warning:
            label += " · ⚠ not shown to beat chance"
        return label


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
    BEST_OF_N = "best_of_n", "Best of n samples of a policy"


class JudgeJob(Job):
    """Background work of a judge (on the `gpu` queue): scoring battles or a project's
    candidates, flagging a project's rankings, or picking the best of n samples of a policy
    (`contestant`, with the request in `params`); `result` holds what it did."""

    judge = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=JudgeJobKind.choices)
    project = models.ForeignKey(
        "annotation.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    threshold = models.FloatField(
        null=True, blank=True, help_text="Flagging: the smallest reward margin that flags."
    )
    contestant = models.ForeignKey(
        "arena.Contestant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    params = models.JSONField(
        default=dict, blank=True, help_text="Best-of-n: prompt, n and sampling settings."
    )
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.judge_id} ({self.status})"


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
