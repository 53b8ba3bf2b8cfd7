"""REST endpoints of the arena, mounted at the top of /api/ (the registry, generations,
battles and the leaderboard are the API's first resources; its root lists them). `/v1` is
served by `arena.api.openai`, mounted by config/urls.py."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from arena.api import views

router = DefaultRouter()
router.include_format_suffixes = False  # one URL per resource
router.register("contestants", views.ContestantViewSet, basename="contestant")
router.register("generations", views.GenerationViewSet, basename="generation")
router.register("battles", views.BattleViewSet, basename="battle")

urlpatterns = [
    path("leaderboard/", views.LeaderboardView.as_view(), name="api-leaderboard"),
    *router.urls,
]
