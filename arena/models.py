from __future__ import annotations

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class Backend(models.TextChoices):
    LOCAL = "local", "Local Hugging Face folder"
    SMOLLM2 = "smollm2", "SmolLM2-135M-Instruct (bundled)"
    OPENAI = "openai", "OpenAI-compatible endpoint"


LOCAL_BACKENDS = (Backend.LOCAL, Backend.SMOLLM2)


class ContestantQuerySet(models.QuerySet):
    def active(self) -> ContestantQuerySet:
        return self.filter(is_active=True)

    def local(self) -> ContestantQuerySet:
        """Contestants whose weights live on this machine (they can be served and trained)."""
        return self.filter(backend__in=LOCAL_BACKENDS)


class Contestant(models.Model):
    """A model that answers prompts: in the arena, as an annotation candidate, or as a base for
    training. `name` is its stable id in the API, exports and the OpenAI-compatible endpoint."""

    name = models.SlugField(max_length=100, unique=True)
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


class GenerationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class GenerationQuerySet(models.QuerySet):
    def finished(self) -> GenerationQuerySet:
        return self.filter(status__in=[GenerationStatus.SUCCEEDED, GenerationStatus.FAILED])

    def stale(self, *, older_than) -> GenerationQuerySet:
        """Unfinished generations whose worker has gone quiet for too long."""
        return self.filter(
            status__in=[GenerationStatus.PENDING, GenerationStatus.RUNNING],
            updated_at__lt=older_than,
        )


class Generation(models.Model):
    """One answer of one contestant to one conversation, produced by a worker.

    The settings used are copied onto the row, so that the answer stays reproducible after the
    contestant's settings change."""

    contestant = models.ForeignKey(Contestant, on_delete=models.PROTECT, related_name="generations")
    messages = models.JSONField(help_text="The conversation, ending with a user turn.")
    settings = models.JSONField(default=dict)
    status = models.CharField(
        max_length=20, choices=GenerationStatus.choices, default=GenerationStatus.PENDING
    )
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="generations",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.contestant.name} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (GenerationStatus.SUCCEEDED, GenerationStatus.FAILED)

    @property
    def latency_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
