from __future__ import annotations

from django.conf import settings as django_settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from core.jobs import Job, JobStatus

USER = django_settings.AUTH_USER_MODEL


class TaskKind(models.TextChoices):
    DEMONSTRATION = "demonstration", "Demonstration"
    RANKING = "ranking", "Ranking"


def default_task_kinds() -> list[str]:
    return [TaskKind.DEMONSTRATION.value, TaskKind.RANKING.value]


def default_label_schema() -> list[dict]:
    """Per-response labels asked on every ranked answer (InstructGPT's helpful/harmless/honest,
    plus the flags a reviewer needs to filter a dataset)."""
    return [
        {"name": "helpfulness", "kind": "scale", "min": 1, "max": 5},
        {"name": "harmlessness", "kind": "scale", "min": 1, "max": 5},
        {"name": "honesty", "kind": "scale", "min": 1, "max": 5},
        {"name": "pii", "kind": "flag", "label": "Contains PII"},
        {"name": "toxicity", "kind": "flag", "label": "Toxic"},
        {"name": "refusal", "kind": "flag", "label": "Refusal"},
    ]


def default_sampling() -> dict:
    return {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 256}


class Project(models.Model):
    """A collection campaign: its guidelines, how many independent judgments each item needs,
    and which contestants write the candidate answers."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    guidelines_version = models.PositiveIntegerField(
        default=1, help_text="Raised on every change of the guidelines; judgments record it."
    )
    overlap = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Independent judgments each item needs.",
    )
    contestants = models.ManyToManyField(
        "arena.Contestant",
        blank=True,
        related_name="projects",
        help_text="Models that write candidate answers.",
    )
    task_kinds = models.JSONField(default=default_task_kinds, blank=True)
    candidates_per_prompt = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(2), MaxValueValidator(9)],
        help_text="K: answers ranked together (2 is a pairwise comparison).",
    )
    sampling = models.JSONField(
        default=default_sampling, blank=True, help_text="Generation overrides for candidates."
    )
    label_schema = models.JSONField(default=default_label_schema, blank=True)
    lock_minutes = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text="How long a task stays reserved."
    )
    gold_rate = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of tasks drawn from gold items while some are left for the annotator.",
    )
    fast_seconds = models.PositiveIntegerField(
        default=8, help_text="Judgments quicker than this are flagged as suspiciously fast."
    )
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GuidelineVersion(models.Model):
    """The guidelines text as it was at one version; judgments point at it by number."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="guideline_versions"
    )
    version = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="guideline_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project} guidelines v{self.version}"


class Prompt(models.Model):
    """A single-turn text or a multi-turn conversation (`[{role, content}]`) to be answered."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    messages = models.JSONField()
    category = models.CharField(max_length=50, blank=True, db_index=True)
    tags = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="Where the prompt came from.")
    content_hash = models.CharField(max_length=64, blank=True, db_index=True)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text[:80]

    @property
    def text(self) -> str:
        """The last user turn: what a list shows for the prompt."""
        for message in reversed(self.messages or []):
            if message.get("role") == "user":
                return message.get("content", "")
        return ""


class CompletionSource(models.TextChoices):
    MODEL = "model", "Model"
    HUMAN = "human", "Human-written"


class Completion(models.Model):
    """One answer to a prompt: a contestant's (through a Generation, with its settings) or a
    person's. Annotators never see who wrote it."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="completions")
    source = models.CharField(max_length=10, choices=CompletionSource.choices)
    contestant = models.ForeignKey(
        "arena.Contestant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    generation = models.ForeignKey(
        "arena.Generation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    settings = models.JSONField(default=dict, blank=True)
    author = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    is_ready = models.BooleanField(default=True)
    failed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Completion #{self.pk} of prompt #{self.prompt_id}"


class ItemQuerySet(models.QuerySet):
    def ready(self) -> ItemQuerySet:
        return self.filter(is_ready=True)


class Item(models.Model):
    """One unit of work: a prompt to demonstrate, or K completions of a prompt to rank.

    `taken` counts live assignments plus submitted work that was not rejected; it is what keeps
    an item from getting more judgments than the project's overlap, and is only changed with
    conditional UPDATEs so that concurrent requests cannot overshoot it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=20, choices=TaskKind.choices)
    completions = models.ManyToManyField(Completion, blank=True, related_name="items")
    is_ready = models.BooleanField(default=True, help_text="All candidate answers are written.")
    is_gold = models.BooleanField(default=False)
    gold_groups = models.JSONField(
        null=True, blank=True, help_text="Gold answer: completion ids best to worst, tie groups."
    )
    author = models.ForeignKey(
        USER,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who wrote content in the item; they never get it to judge.",
    )
    taken = models.PositiveIntegerField(default=0)
    is_open = models.BooleanField(
        default=True, help_text="taken < overlap, kept in step with `taken` for the queue index."
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            # The queue reads open items of a project in id order; full items drop out of this
            # index, so "next task" stays fast however much of the project is done.
            models.Index(
                fields=["project", "id"],
                name="item_open_queue",
                condition=models.Q(is_open=True, is_ready=True, is_gold=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} item #{self.pk}"


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "In progress"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """An item reserved for one annotator until `expires_at`, with the order its answers are
    shown in (display letters A, B, C ... map to `display_order`)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="annotation_assignments")
    status = models.CharField(
        max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE
    )
    display_order = models.JSONField(default=list, blank=True)
    guidelines_version = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # The guarantee "nobody judges an item twice" lives in the database.
            models.UniqueConstraint(fields=["item", "user"], name="assignment_once_per_user")
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["user", "status"]),
        ]

    def __str__(self) -> str:
        return f"Assignment #{self.pk} ({self.status})"

    @property
    def letters(self) -> list[str]:
        return [chr(ord("A") + i) for i in range(len(self.display_order))]


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Awaiting review"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class ReviewedQuerySet(models.QuerySet):
    def accepted(self):
        return self.filter(review_status=ReviewStatus.ACCEPTED)

    def live(self):
        """Work that counts: everything but rejected work."""
        return self.exclude(review_status=ReviewStatus.REJECTED)


class Reviewed(models.Model):
    review_status = models.CharField(
        max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.PENDING, db_index=True
    )
    reviewer = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_comment = models.TextField(blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    feedback_seen = models.BooleanField(
        default=False, help_text="The annotator has opened their work since the review."
    )

    objects = ReviewedQuerySet.as_manager()

    class Meta:
        abstract = True


class RankingOrigin(models.TextChoices):
    TASK = "task", "Ranking task"
    EDIT = "edit", "Edited answer over the original"
    IMPORT = "import", "Imported from a dataset file"


class Ranking(Reviewed):
    """An ordering of K completions best to worst as tie groups of completion ids
    (`[[d], [c], [a, b]]` for D > C > A = B). Pairwise comparison is K = 2."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rankings")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="rankings")
    item = models.ForeignKey(
        Item, null=True, blank=True, on_delete=models.CASCADE, related_name="rankings"
    )
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.CASCADE, related_name="ranking"
    )
    # Null only for imported judgments (origin `import`): the people behind a public
    # dataset are not users here.
    annotator = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.CASCADE, related_name="annotation_rankings"
    )
    origin = models.CharField(
        max_length=10, choices=RankingOrigin.choices, default=RankingOrigin.TASK
    )
    # Set only for an edit pair (origin `edit`): the demonstration whose edit it records; the
    # pair is reviewed with it.
    demonstration = models.ForeignKey(
        "Demonstration",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="edit_rankings",
    )
    groups = models.JSONField()
    display_order = models.JSONField(default=list, blank=True)
    all_bad = models.BooleanField(default=False)
    labels = models.JSONField(default=dict, blank=True, help_text="{completion id: {label: value}}")
    rationale = models.TextField(blank=True)
    guidelines_version = models.PositiveIntegerField(default=1)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    is_gold = models.BooleanField(default=False)
    gold_score = models.FloatField(null=True, blank=True, help_text="Agreement with the gold.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Ranking #{self.pk}"

    @property
    def duration_s(self) -> float | None:
        return None if self.duration_ms is None else self.duration_ms / 1000


class Demonstration(Reviewed):
    """An ideal assistant answer to a prompt (SFT data), written or edited by an annotator, or
    imported with the prompt."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="demonstrations")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="demonstrations")
    item = models.ForeignKey(
        Item, null=True, blank=True, on_delete=models.CASCADE, related_name="demonstrations"
    )
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.CASCADE, related_name="demonstration"
    )
    annotator = models.ForeignKey(
        USER,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="annotation_demonstrations",
    )
    text = models.TextField()
    edited_from = models.ForeignKey(
        Completion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    guidelines_version = models.PositiveIntegerField(default=1)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="Import provenance.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Demonstration #{self.pk}"


class SnapshotSource(models.TextChoices):
    RANKINGS = "rankings", "Project judgments (rankings)"
    DEMONSTRATIONS = "demonstrations", "Demonstrations"
    ARENA = "arena", "Arena votes"


class SnapshotFormat(models.TextChoices):
    PREFERENCE = "preference", "Preference pairs (prompt / chosen / rejected)"
    KTO = "kto", "Unpaired (prompt / completion / label, KTO)"
    SFT = "sft", "SFT (messages or prompt / completion)"
    HH = "hh", "Anthropic HH transcripts"
    ARENA = "arena", "Arena battles (model_a / model_b / winner)"


class SnapshotStyle(models.TextChoices):
    STANDARD = "standard", "Standard (text)"
    CONVERSATIONAL = "conversational", "Conversational (messages)"


class PairStrategy(models.TextChoices):
    ALL = "all", "All strictly ordered pairs (K choose 2)"
    BEST_VS_REST = "best-vs-rest", "Best versus rest"
    CONSENSUS = "consensus", "Consensus over annotators"


class TiesPolicy(models.TextChoices):
    DROP = "drop", "Drop ties"
    KEEP = "keep", "Keep ties with a tie label"


class SnapshotStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


# A snapshot's build is a job (core.jobs) that keeps the words users know: queued is
# pending, running is building, succeeded is ready.
SNAPSHOT_JOB_STATUSES = {
    JobStatus.QUEUED: SnapshotStatus.PENDING,
    JobStatus.RUNNING: SnapshotStatus.BUILDING,
    JobStatus.SUCCEEDED: SnapshotStatus.READY,
    JobStatus.FAILED: SnapshotStatus.FAILED,
}


class DatasetSnapshot(Job):
    """An immutable export: what was asked for (source, filters, format) and, once built, its
    files under `MEDIA_ROOT/datasets/<id>/`, their content hash, counts and dataset card.
    Training runs point at a snapshot, so every trained model traces back to its exact data.
    Only the build service writes the outcome, once; a ready snapshot is never rebuilt.

    The build is the snapshot's job: `heartbeat_at` is its last sign of life (claimed, or
    another record batch written), and beat fails a build that has been silent too long."""

    name = models.CharField(max_length=200)
    source = models.CharField(max_length=20, choices=SnapshotSource.choices)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.PROTECT, related_name="snapshots"
    )
    format = models.CharField(max_length=20, choices=SnapshotFormat.choices)
    style = models.CharField(
        max_length=20, choices=SnapshotStyle.choices, default=SnapshotStyle.STANDARD
    )
    pairs = models.CharField(max_length=20, choices=PairStrategy.choices, default=PairStrategy.ALL)
    ties = models.CharField(max_length=10, choices=TiesPolicy.choices, default=TiesPolicy.DROP)
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10,
        choices=SnapshotStatus.choices,
        default=SnapshotStatus.PENDING,
        db_index=True,
    )
    content_hash = models.CharField(max_length=64, blank=True, db_index=True)
    row_count = models.PositiveBigIntegerField(default=0)
    card = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=dict, blank=True, help_text="{format: relative path}")
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Dataset {self.name} #{self.pk}"

    @property
    def built_at(self):
        """When the build ended (ready or failed)."""
        return self.finished_at
