from django.urls import path

from arena import views

app_name = "arena"
urlpatterns = [
    path("models/", views.models_page, name="models"),
    path("generations/<int:generation_id>/", views.generation_fragment, name="generation"),
]
