"""Evaluation suites (fixed prompts and a baseline), the answers contestants gave to them, the
runs that judge those answers against the baseline's, each judgment, and the metrics stored per
contestant (AlpacaEval's definitions, computed by `evaluation.metrics`)."""

from __future__ import annotations

import math

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.jobs import Job

USER = django_settings.AUTH_USER_MODEL


class SuiteSource(models.TextChoices):
    UPLOAD = "upload", "Uploaded file"
    PROJECT = "project", "Annotation project"
    SNAPSHOT = "snapshot", "Dataset snapshot (held-out prompts)"


class Suite(models.Model):
    """A fixed prompt set and a baseline contestant. Immutable once an evaluation used it: its
    `content_hash` (over the prompts, the baseline and the generation settings) identifies it."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    baseline = models.ForeignKey(
        "arena.Contestant", on_delete=models.PROTECT, related_name="baseline_of_suites"
    )
    source = models.CharField(max_length=20, choices=SuiteSource.choices)
    source_ref = models.CharField(max_length=300, blank=True, help_text="File, project, snapshot.")
    generation_settings = models.JSONField(
        default=dict, blank=True, help_text="Overrides every answer uses (greedy, seed...)."
    )
    content_hash = models.CharField(max_length=64, db_index=True)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_used(self) -> bool:
        return self.runs.exists() or self.evaluations.exists()


class SuitePrompt(models.Model):
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="prompts")
    index = models.PositiveIntegerField()
    instruction = models.TextField()
    dataset = models.CharField(max_length=200, blank=True)
    prompt_hash = models.CharField(max_length=64, db_index=True)

    class Meta:
        ordering = ["suite", "index"]
        constraints = [
            models.UniqueConstraint(fields=["suite", "index"], name="suite_prompt_index_unique")
        ]

    def __str__(self) -> str:
        return self.instruction[:80]

    @property
    def messages(self) -> list[dict]:
        return [{"role": "user", "content": self.instruction}]


class Answer(models.Model):
    """One contestant's answer to one prompt under one set of generation settings, reused by
    every suite and run that asks the same; or an imported answer of a published model
    (`imported`, no contestant, its `generator` name and text)."""

    contestant = models.ForeignKey(
        "arena.Contestant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    generator = models.CharField(max_length=200)
    prompt_hash = models.CharField(max_length=64)
    settings_hash = models.CharField(max_length=64, blank=True)
    generation = models.ForeignKey(
        "arena.Generation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    output = models.TextField(blank=True, help_text="Imported answers only.")
    imported = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contestant", "prompt_hash", "settings_hash"],
                condition=Q(imported=False),
                name="answer_reused_per_contestant_prompt_settings",
            ),
            models.UniqueConstraint(
                fields=["generator", "prompt_hash"],
                condition=Q(imported=True),
                name="imported_answer_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.generator} answer {self.prompt_hash[:8]}"

    @property
    def text(self) -> str:
        if self.imported or self.generation is None:
            return self.output
        return self.generation.output


class JudgeKind(models.TextChoices):
    REWARD_MODEL = "reward_model", "Reward model"
    LLM = "llm", "LLM judge (OpenAI-compatible)"


class RunPhase(models.TextChoices):
    ANSWERING = "answering", "Answering"
    JUDGING = "judging", "Judging"
    DONE = "done", "Done"


class EvaluationRun(Job):
    """Contestants evaluated on a suite by one judge. Its job (on the `generate` queue) gets
    every answer, then judges them itself (an LLM judge: HTTP calls, like the endpoint
    contestants' generations) or hands over to an `EvaluationJudging` job on the `gpu` queue."""

    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="runs")
    contestants = models.ManyToManyField("arena.Contestant", related_name="+")
    judge_kind = models.CharField(max_length=20, choices=JudgeKind.choices)
    reward_model = models.ForeignKey(
        "training.RewardModel", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    judge_contestant = models.ForeignKey(
        "arena.Contestant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    template_version = models.CharField(max_length=50, blank=True)
    imported_generators = models.JSONField(
        default=list, blank=True, help_text="Published models whose imported answers are judged."
    )
    both_orders = models.BooleanField(default=False)
    seed = models.IntegerField(default=0, help_text="Draws the baseline's side per prompt.")
    phase = models.CharField(max_length=20, choices=RunPhase.choices, default=RunPhase.ANSWERING)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Evaluation run #{self.pk} on {self.suite_id}"

    @property
    def judge_label(self) -> str:
        if self.judge_kind == JudgeKind.REWARD_MODEL:
            return f"reward:{self.reward_model.name}"
        return f"llm:{self.judge_contestant.name}/{self.template_version}"


class EvaluationJudging(Job):
    """A run's reward-model judging, on the `gpu` queue."""

    run = models.OneToOneField(EvaluationRun, on_delete=models.CASCADE, related_name="judging")
    created_at = models.DateTimeField(default=timezone.now)


class Evaluation(models.Model):
    """One contestant (or imported generator) on one suite under one judge, with its metrics.
    Length-controlled figures use a difficulty fitted on every evaluation of the same suite and
    judge, so they are refreshed together."""

    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="evaluations")
    run = models.ForeignKey(
        EvaluationRun, null=True, blank=True, on_delete=models.CASCADE, related_name="evaluations"
    )
    contestant = models.ForeignKey(
        "arena.Contestant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    generator = models.CharField(max_length=200)
    imported = models.BooleanField(default=False)
    judge_label = models.CharField(max_length=300, db_index=True)
    win_rate = models.FloatField(null=True, blank=True)
    standard_error = models.FloatField(null=True, blank=True)
    lc_win_rate = models.FloatField(null=True, blank=True)
    lc_standard_error = models.FloatField(null=True, blank=True)
    discrete_win_rate = models.FloatField(null=True, blank=True)
    n_wins = models.PositiveIntegerField(default=0)
    n_wins_base = models.PositiveIntegerField(default=0)
    n_draws = models.PositiveIntegerField(default=0)
    n_total = models.PositiveIntegerField(default=0)
    avg_length = models.PositiveIntegerField(null=True, blank=True)
    position_bias = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["suite", "-lc_win_rate"]
        constraints = [
            models.UniqueConstraint(
                fields=["suite", "judge_label", "generator"], name="evaluation_unique_per_judge"
            )
        ]

    def __str__(self) -> str:
        return f"{self.generator} on {self.suite_id} ({self.judge_label})"

    def _ci(self, value, se, sign) -> float | None:
        if value is None or se is None or math.isnan(se):
            return None
        return value + sign * 1.96 * se

    @property
    def ci(self) -> tuple[float | None, float | None]:
        return (
            self._ci(self.win_rate, self.standard_error, -1),
            self._ci(self.win_rate, self.standard_error, 1),
        )

    @property
    def lc_ci(self) -> tuple[float | None, float | None]:
        return (
            self._ci(self.lc_win_rate, self.lc_standard_error, -1),
            self._ci(self.lc_win_rate, self.lc_standard_error, 1),
        )


class Order(models.TextChoices):
    BASELINE_FIRST = "baseline_first", "Baseline shown first"
    MODEL_FIRST = "model_first", "Model shown first"


class Judgment(models.Model):
    """The judge's verdict on one prompt, in one order. `preference` is AlpacaEval's, from the
    evaluated model's side: 1 = the baseline is better, 2 = the model is better, 1.5 = a draw;
    a judge with probabilities gives anything between."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="judgments")
    prompt = models.ForeignKey(SuitePrompt, on_delete=models.CASCADE, related_name="+")
    order = models.CharField(max_length=20, choices=Order.choices)
    primary = models.BooleanField(default=True, help_text="The order drawn at random.")
    model_answer = models.ForeignKey(Answer, on_delete=models.PROTECT, related_name="+")
    baseline_answer = models.ForeignKey(
        Answer, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    baseline_output = models.TextField(blank=True, help_text="Imported annotations only.")
    preference = models.FloatField(null=True, blank=True)
    weighted = models.BooleanField(default=False, help_text="From the judge's probabilities.")
    judge_output = models.TextField(blank=True)
    template_version = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["prompt__index", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["evaluation", "prompt", "order"], name="judgment_once_per_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.evaluation_id}/{self.prompt_id}/{self.order}: {self.preference}"

    @property
    def baseline_text(self) -> str:
        return self.baseline_answer.text if self.baseline_answer else self.baseline_output
