from django.urls import path

from annotation import views

app_name = "annotation"
urlpatterns = [
    path("", views.project_list, name="projects"),
    path("projects/<slug:slug>/", views.project_detail, name="project"),
]
