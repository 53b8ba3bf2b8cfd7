from django.urls import path

from training import views

app_name = "training"
urlpatterns = [
    path("", views.training_home, name="home"),
    path("runs/new/", views.run_new, name="run-new"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:run_id>/resume/", views.run_resume, name="run-resume"),
    path("judges/<int:judge_id>/", views.judge_detail, name="judge"),
    path("judges/<int:judge_id>/jobs/", views.judge_job_start, name="judge-jobs"),
    path("judges/<int:judge_id>/best-of-n/", views.judge_best_of_n, name="judge-best-of-n"),
    path(
        "judges/<int:judge_id>/best-of-n/<int:job_id>/",
        views.judge_best_of_n_job,
        name="judge-best-of-n-job",
    ),
]
