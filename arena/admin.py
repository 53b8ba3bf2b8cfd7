from django.contrib import admin

from arena.models import Contestant, Generation


@admin.register(Contestant)
class ContestantAdmin(admin.ModelAdmin):
    list_display = ("display_name", "name", "backend", "organization", "is_active", "parent")
    list_filter = ("backend", "is_active")
    search_fields = ("name", "display_name", "organization")
    prepopulated_fields = {"name": ("display_name",)}
    raw_id_fields = ("parent",)


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ("id", "contestant", "status", "attempts", "created_at", "finished_at")
    list_filter = ("status", "contestant")
    readonly_fields = ("created_at", "updated_at", "started_at", "finished_at")
    raw_id_fields = ("requested_by",)
