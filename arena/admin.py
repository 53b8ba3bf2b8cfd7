from django import forms
from django.contrib import admin

from arena.models import Contestant, Generation


class ContestantAdminForm(forms.ModelForm):
    """The endpoint's API key is written, never shown: the field is always rendered empty, and
    an empty field keeps the key already stored."""

    endpoint_api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave blank to keep the current key.",
    )

    # No Meta: the admin builds one with the model and every field it shows.

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["endpoint_api_key"] = ""

    def clean_endpoint_api_key(self) -> str:
        key = self.cleaned_data.get("endpoint_api_key", "")
        if not key and self.instance.pk:
            return Contestant.objects.filter(pk=self.instance.pk).values_list(
                "endpoint_api_key", flat=True
            )[0]
        return key


@admin.register(Contestant)
class ContestantAdmin(admin.ModelAdmin):
    form = ContestantAdminForm
    list_display = ("display_name", "name", "backend", "organization", "is_active", "parent")
    list_filter = ("backend", "is_active")
    search_fields = ("name", "display_name", "organization")
    prepopulated_fields = {"name": ("display_name",)}
    raw_id_fields = ("parent",)


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ("id", "contestant", "status", "attempts", "created_at", "finished_at")
    list_filter = ("status", "contestant")
    readonly_fields = ("created_at", "enqueued_at", "started_at", "heartbeat_at", "finished_at")
    raw_id_fields = ("requested_by", "battle")
