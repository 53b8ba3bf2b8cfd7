from django.contrib import admin

from annotation import services
from annotation.models import (
    Assignment,
    Completion,
    DatasetSnapshot,
    Demonstration,
    GuidelineVersion,
    Item,
    Project,
    Prompt,
    Ranking,
)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "overlap", "candidates_per_prompt", "guidelines_version", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("contestants",)
    readonly_fields = ("guidelines_version",)

    def save_model(self, request, obj, form, change):
        if change and "overlap" in form.changed_data:
            # Items open or close with the new overlap, through the service.
            services.project_overlap_update(project=obj, overlap=obj.overlap)
        # Guidelines are versioned: a change goes through the service, which stores the new
        # version, so that every later judgment records the version it was made under.
        if change and "guidelines" in form.changed_data:
            new_text = obj.guidelines
            obj.guidelines = Project.objects.get(pk=obj.pk).guidelines
            super().save_model(request, obj, form, change)
            services.project_guidelines_update(project=obj, guidelines=new_text)
            return
        super().save_model(request, obj, form, change)
        if not change:
            GuidelineVersion.objects.get_or_create(
                project=obj, version=obj.guidelines_version, defaults={"text": obj.guidelines}
            )


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "category", "__str__")
    list_filter = ("project", "category")


@admin.register(Completion)
class CompletionAdmin(admin.ModelAdmin):
    list_display = ("id", "prompt", "source", "contestant", "is_ready", "failed")
    list_filter = ("source", "contestant")
    raw_id_fields = ("prompt", "generation", "author")


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "kind", "is_ready", "is_gold", "taken")
    list_filter = ("project", "kind", "is_gold", "is_ready")
    raw_id_fields = ("prompt", "completions", "author")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "item", "user", "status", "started_at", "expires_at")
    list_filter = ("status",)
    raw_id_fields = ("item", "user")


@admin.register(Ranking)
class RankingAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "annotator", "origin", "review_status", "created_at")
    list_filter = ("project", "origin", "review_status", "is_gold")
    raw_id_fields = ("prompt", "item", "assignment", "annotator", "reviewer")


@admin.register(Demonstration)
class DemonstrationAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "annotator", "review_status", "created_at")
    list_filter = ("project", "review_status")
    raw_id_fields = ("prompt", "item", "assignment", "annotator", "reviewer", "edited_from")


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    """Read-only: a snapshot is immutable once built and is made through the datasets page."""

    list_display = ("name", "source", "project", "format", "status", "row_count", "created_at")
    list_filter = ("status", "source", "format")
    search_fields = ("name", "content_hash")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
