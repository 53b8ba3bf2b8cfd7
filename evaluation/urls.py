from django.urls import path

from evaluation import views

app_name = "evaluation"
urlpatterns = [
    path("", views.leaderboard_page, name="leaderboard"),
    path("suites/", views.suites_page, name="suites"),
    path("suites/<int:suite_id>/", views.leaderboard_page, name="suite"),
    path("suites/<int:suite_id>/evaluate/", views.evaluation_start, name="start"),
    path("suites/<int:suite_id>/import/", views.alpaca_import, name="import"),
    path("suites/<int:suite_id>/leaderboard.csv", views.leaderboard_csv, name="export"),
    path("evaluations/<int:evaluation_id>/", views.evaluation_detail, name="evaluation"),
]
