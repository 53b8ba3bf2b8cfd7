from django.urls import path

from annotation import views

app_name = "annotation"
urlpatterns = [
    path("", views.project_list, name="projects"),
    path("my-work/", views.my_work, name="my-work"),
    path("projects/<slug:slug>/", views.project_detail, name="project"),
    path("projects/<slug:slug>/next/", views.task_next, name="next"),
    path("projects/<slug:slug>/review/", views.review_page, name="review"),
    path("projects/<slug:slug>/dashboard/", views.dashboard, name="dashboard"),
    path("projects/<slug:slug>/import/", views.prompts_import, name="import"),
    path("projects/<slug:slug>/generate/", views.candidates_generate, name="generate"),
    path("tasks/<int:assignment_id>/", views.task_page, name="task"),
    path("tasks/<int:assignment_id>/skip/", views.task_skip, name="skip"),
    path("review/<str:kind>/<int:work_id>/", views.review_decide, name="decide"),
    path("preview/", views.markdown_preview, name="preview"),
    path("datasets/", views.dataset_list, name="datasets"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset"),
    path("datasets/<int:pk>/download/", views.dataset_download, name="dataset-download"),
    path("datasets/<int:pk>/retry/", views.dataset_retry, name="dataset-retry"),
]
