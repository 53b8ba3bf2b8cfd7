"""REST endpoints of annotation, mounted under /api/annotation/."""

from django.urls import path

from annotation.api import views

urlpatterns = [
    path("projects/", views.ProjectList.as_view(), name="annotation-api-projects"),
    path("projects/<slug:slug>/", views.ProjectDetail.as_view(), name="annotation-api-project"),
    path(
        "projects/<slug:slug>/prompts/", views.PromptList.as_view(), name="annotation-api-prompts"
    ),
    path(
        "projects/<slug:slug>/judgments/",
        views.JudgmentList.as_view(),
        name="annotation-api-judgments",
    ),
    path(
        "projects/<slug:slug>/demonstrations/",
        views.DemonstrationList.as_view(),
        name="annotation-api-demonstrations",
    ),
    path(
        "projects/<slug:slug>/progress/",
        views.ProgressView.as_view(),
        name="annotation-api-progress",
    ),
    path(
        "projects/<slug:slug>/agreement/",
        views.AgreementView.as_view(),
        name="annotation-api-agreement",
    ),
    path(
        "projects/<slug:slug>/leaderboard/",
        views.LeaderboardView.as_view(),
        name="annotation-api-leaderboard",
    ),
    path(
        "projects/<slug:slug>/tasks/next/",
        views.TaskNext.as_view(),
        name="annotation-api-task-next",
    ),
    path(
        "tasks/<int:assignment_id>/ranking/",
        views.TaskRanking.as_view(),
        name="annotation-api-task-ranking",
    ),
    path(
        "tasks/<int:assignment_id>/demonstration/",
        views.TaskDemonstration.as_view(),
        name="annotation-api-task-demonstration",
    ),
    path(
        "tasks/<int:assignment_id>/skip/", views.TaskSkip.as_view(), name="annotation-api-task-skip"
    ),
    path("datasets/", views.DatasetList.as_view(), name="annotation-api-datasets"),
    path("datasets/<int:pk>/", views.DatasetDetail.as_view(), name="annotation-api-dataset"),
    path(
        "datasets/<int:pk>/download/",
        views.DatasetDownload.as_view(),
        name="annotation-api-dataset-download",
    ),
]
