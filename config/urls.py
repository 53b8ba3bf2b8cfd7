from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from arena.api import openai
from arena.api.views import BattleViewSet, ContestantViewSet, GenerationViewSet, LeaderboardView
from core import api as core_api
from core import views as core_views
from training.api import JudgeViewSet, TrainingRunViewSet

router = DefaultRouter()
router.include_format_suffixes = False  # one URL per resource
router.register("contestants", ContestantViewSet, basename="contestant")
router.register("generations", GenerationViewSet, basename="generation")
router.register("battles", BattleViewSet, basename="battle")
router.register("training/runs", TrainingRunViewSet, basename="training-run")
router.register("training/judges", JudgeViewSet, basename="judge")

api_patterns = [
    path("auth/token/", core_api.TokenView.as_view(), name="api-token-auth"),
    path("me/", core_api.MeView.as_view(), name="api-me"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("leaderboard/", LeaderboardView.as_view(), name="api-leaderboard"),
    path("annotation/", include("annotation.api.urls")),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("accounts/login/", core_views.ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/token/", core_views.api_token, name="api-token"),
    path("arena/", include("arena.urls")),
    path("annotation/", include("annotation.urls")),
    path("training/", include("training.urls")),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("v1/chat/completions", openai.ChatCompletionsView.as_view(), name="openai-chat"),
    path("v1/models", openai.ModelsView.as_view(), name="openai-models"),
]
