from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotencyRecord(models.Model):
    """The first response to a create request sent with an `Idempotency-Key` header: a replay
    with the same key gets this response again instead of creating a second row."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField(default=0, help_text="0 while in progress.")
    body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"


class TokenExpiry(models.Model):
    """When an API token stops working, if it was created with a lifetime (tokens without one
    last until revoked, or API_TOKEN_TTL_DAYS after their creation when that is set)."""

    token = models.OneToOneField(
        "authtoken.Token", on_delete=models.CASCADE, primary_key=True, related_name="expiry"
    )
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"token of user {self.token.user_id} expires {self.expires_at:%Y-%m-%d %H:%M}"
