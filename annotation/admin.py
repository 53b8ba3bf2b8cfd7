from django.contrib import admin

from annotation.models import Project, Prompt


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "overlap", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("contestants",)


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "category", "__str__")
    list_filter = ("project", "category")
