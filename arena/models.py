from __future__ import annotations

import uuid

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from arena import hygiene
from core.jobs import Job, JobQuerySet, JobStatus


class Backend(models.TextChoices):
    LOCAL = "local", "Local Hugging Face folder"
    SMOLLM2 = "smollm2", "SmolLM2-135M-Instruct (bundled)"
    OPENAI = "openai", "OpenAI-compatible endpoint"
    EXTERNAL = "external", "External (imported votes only)"


LOCAL_BACKENDS = (Backend.LOCAL, Backend.SMOLLM2)

validate_model_name = RegexValidator(
    hygiene.MODEL_NAME_PATTERN, f"A model name is {hygiene.MODEL_NAME_RULE}."
)


class ContestantQuerySet(models.QuerySet):
    def active(self) -> ContestantQuerySet:
        return self.filter(is_active=True)

    def local(self) -> ContestantQuerySet:
        """Contestants whose weights live on this machine (they can be served and trained)."""
        return self.filter(backend__in=LOCAL_BACKENDS)

    def battling(self) -> ContestantQuerySet:
        """Active contestants that can answer, and so can be drawn into battles."""
        return self.active().exclude(backend=Backend.EXTERNAL)


class Contestant(models.Model):
    """A model that answers prompts: in the arena, as an annotation candidate, or as a base for
    training. `name` is its stable id in the API, exports and the OpenAI-compatible endpoint."""

    name = models.CharField(
        max_length=hygiene.MODEL_NAME_MAX_LENGTH, unique=True, validators=[validate_model_name]
    )
    display_name = models.CharField(max_length=200)
    organization = models.CharField(max_length=200, blank=True)
    license = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The model this one was derived from (lineage).",
    )
    is_active = models.BooleanField(default=True, help_text="Active contestants enter battles.")

    backend = models.CharField(max_length=20, choices=Backend.choices)
    model_path = models.CharField(
        max_length=500, blank=True, help_text="Local backend: a Hugging Face model folder."
    )
    endpoint_url = models.URLField(
        max_length=500, blank=True, help_text="OpenAI backend: base URL, e.g. http://host:8000/v1"
    )
    endpoint_model = models.CharField(max_length=200, blank=True)
    endpoint_api_key = models.CharField(max_length=500, blank=True)
    request_timeout_s = models.FloatField(default=60.0, validators=[MinValueValidator(0.1)])
    max_retries = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(10)])

    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        help_text="0 means greedy decoding.",
    )
    top_p = models.FloatField(
        default=0.95, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    max_new_tokens = models.PositiveIntegerField(
        default=256, validators=[MinValueValidator(1), MaxValueValidator(8192)]
    )

    created_at = models.DateTimeField(default=timezone.now)
    # The live online-Elo number, updated in the transaction of each counted vote.
    elo = models.FloatField(default=1000.0)
    elo_votes = models.PositiveIntegerField(default=0)

    objects = ContestantQuerySet.as_manager()

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_local(self) -> bool:
        return self.backend in LOCAL_BACKENDS

    def generation_settings(self) -> dict:
        return {
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
        }

    def clean(self) -> None:
        errors = {}
        if self.backend == Backend.LOCAL and not self.model_path:
            errors["model_path"] = "A local backend needs the path of a Hugging Face model folder."
        if self.backend == Backend.OPENAI:
            if not self.endpoint_url:
                errors["endpoint_url"] = "An OpenAI-compatible backend needs the endpoint's URL."
            if not self.endpoint_model:
                errors["endpoint_model"] = "Name the model the endpoint should run."
        if self.parent_id and self.parent_id == self.pk:
            errors["parent"] = "A model cannot be its own parent."
        if errors:
            raise ValidationError(errors)


# A generation's status is the shared job status (core.jobs): queued, running, succeeded, failed.
GenerationStatus = JobStatus


class GenerationQuerySet(JobQuerySet):
    def outside_blind_battles(self) -> GenerationQuerySet:
        """Leave out the answers of anonymous battles not yet voted on: their contestant is
        the secret the vote depends on."""
        return self.exclude(battle__mode=BattleMode.ANONYMOUS, battle__winner="")


class Generation(Job):
    """One answer of one contestant to one conversation, produced by a worker.

    The settings used are copied onto the row, so that the answer stays reproducible after the
    contestant's settings change."""

    contestant = models.ForeignKey(Contestant, on_delete=models.PROTECT, related_name="generations")
    messages = models.JSONField(help_text="The conversation, ending with a user turn.")
    settings = models.JSONField(default=dict)
    output = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    logprobs = models.JSONField(
        null=True, blank=True, help_text="Per answer token, when asked (`top_logprobs` setting)."
    )
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="generations",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The battle this answer was drawn for (also after a regenerate replaced it), so that the
    # answers of an unvoted anonymous battle are never shown outside the battle itself.
    battle = models.ForeignKey(
        "Battle", null=True, blank=True, on_delete=models.SET_NULL, related_name="generations"
    )

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.contestant.name} #{self.pk} ({self.status})"

    @property
    def latency_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class BattleMode(models.TextChoices):
    ANONYMOUS = "anonymous", "Anonymous battle"
    SIDE_BY_SIDE = "side_by_side", "Named side by side"
    DIRECT = "direct", "Direct chat"


class BattleSource(models.TextChoices):
    ARENA = "arena", "Arena votes"
    IMPORT = "import", "Imported battle file"


class Winner(models.TextChoices):
    MODEL_A = "model_a", "A is better"
    MODEL_B = "model_b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both are bad"


class Exclusion(models.TextChoices):
    """Why a stored vote does not count in the ratings (the vote itself is kept)."""

    IDENTITY_REVEALED = "identity_revealed", "An answer revealed a model's identity"
    GENERATION_FAILED = "generation_failed", "A generation failed in the conversation"
    NOT_ANONYMOUS = "not_anonymous", "The voter knew the models"


class BattleQuerySet(models.QuerySet):
    def voted(self) -> BattleQuerySet:
        return self.exclude(winner="")

    def counted(self) -> BattleQuerySet:
        """Votes that enter the leaderboard: anonymous, voted, not flagged."""
        return self.voted().filter(mode=BattleMode.ANONYMOUS, excluded_reason="")


class Battle(models.Model):
    """Two contestants answer the same conversation; one vote decides it.

    Direct chats are battles with one side and no vote, so that conversations share one shape.
    Identities stay hidden until `winner` is set; the public id is unguessable."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    mode = models.CharField(max_length=20, choices=BattleMode.choices, default=BattleMode.ANONYMOUS)
    source = models.CharField(
        max_length=20, choices=BattleSource.choices, default=BattleSource.ARENA
    )
    contestant_a = models.ForeignKey(Contestant, on_delete=models.PROTECT, related_name="+")
    contestant_b = models.ForeignKey(
        Contestant, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    user = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="battles",
    )
    session_key = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    category = models.CharField(max_length=50, blank=True, db_index=True)
    categories = models.JSONField(default=list, blank=True)
    conversation = models.JSONField(
        default=list,
        blank=True,
        help_text="Imported battles: the conversation, if the file has it.",
    )

    winner = models.CharField(max_length=20, choices=Winner.choices, blank=True)
    voted_at = models.DateTimeField(null=True, blank=True)
    excluded_reason = models.CharField(max_length=30, choices=Exclusion.choices, blank=True)
    style_a = models.JSONField(default=dict, blank=True)
    style_b = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    revision = models.PositiveIntegerField(
        default=0,
        help_text="Counts changes of the turns (continue, regenerate): a vote is recorded only "
        "on the revision its voter read.",
    )

    objects = BattleQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["mode", "excluded_reason", "winner"]),
            models.Index(fields=["ip", "voted_at"]),
            models.Index(fields=["user", "voted_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(mode="anonymous") | models.Q(contestant_b__isnull=False),
                name="battle_anonymous_has_two_sides",
            )
        ]

    def __str__(self) -> str:
        return f"Battle {self.public_id}"

    @property
    def is_voted(self) -> bool:
        return bool(self.winner)

    @property
    def is_counted(self) -> bool:
        return self.is_voted and self.mode == BattleMode.ANONYMOUS and not self.excluded_reason


class BattleTurn(models.Model):
    """One user message of a battle and the answer of each side to the conversation so far."""

    battle = models.ForeignKey(Battle, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveSmallIntegerField()
    user_message = models.TextField()
    generation_a = models.ForeignKey(Generation, on_delete=models.PROTECT, related_name="+")
    generation_b = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["battle", "index"]
        constraints = [
            models.UniqueConstraint(fields=["battle", "index"], name="battle_turn_unique_index")
        ]

    def __str__(self) -> str:
        return f"Turn {self.index} of {self.battle_id}"

    def generations(self) -> list[Generation]:
        return [g for g in (self.generation_a, self.generation_b) if g is not None]

    @property
    def sides(self) -> list[tuple[str, Generation]]:
        return [(s, g) for s, g in (("a", self.generation_a), ("b", self.generation_b)) if g]


class LeaderboardSnapshot(models.Model):
    """A leaderboard fitted in the background and stored; pages read it, never fit."""

    category = models.CharField(max_length=50, blank=True, help_text="Blank: all battles.")
    style_control = models.BooleanField(default=False)
    include_annotation = models.BooleanField(
        default=False, help_text="Rankings from annotation projects were added as a source."
    )
    computed_at = models.DateTimeField(default=timezone.now, db_index=True)
    battles = models.PositiveIntegerField(default=0)
    bootstrap_rounds = models.PositiveIntegerField(default=0)
    rows = models.JSONField(default=list)
    provisional = models.JSONField(
        default=list, blank=True, help_text="Models below ARENA_MIN_VOTES, ranked apart."
    )
    style_battles = models.PositiveIntegerField(
        default=0, help_text="How many of the battles carry both answers' style features."
    )
    plots = models.JSONField(default=dict, help_text="Win-fraction and battle-count matrices.")
    style_coefficients = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-computed_at"]
        indexes = [
            models.Index(fields=["category", "style_control", "include_annotation", "computed_at"])
        ]

    def __str__(self) -> str:
        return f"Leaderboard {self.category or 'all'} ({self.computed_at:%Y-%m-%d %H:%M})"
