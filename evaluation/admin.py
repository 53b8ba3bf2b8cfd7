from django.contrib import admin

from evaluation.models import Evaluation, EvaluationJudging, EvaluationRun, Judgment, Suite


@admin.register(Suite)
class SuiteAdmin(admin.ModelAdmin):
    list_display = ("name", "baseline", "source", "content_hash", "created_at")
    readonly_fields = ("content_hash",)


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "suite", "judge_kind", "phase", "status", "attempts", "created_at")
    list_filter = ("status", "phase", "judge_kind")


@admin.register(EvaluationJudging)
class EvaluationJudgingAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "status", "attempts", "finished_at")


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ("generator", "suite", "judge_label", "win_rate", "lc_win_rate", "imported")
    list_filter = ("judge_label", "imported")


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ("evaluation", "prompt", "order", "preference", "weighted")
    raw_id_fields = ("evaluation", "prompt", "model_answer", "baseline_answer")
