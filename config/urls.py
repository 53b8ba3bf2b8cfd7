from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from arena.api import openai
from core import api as core_api
from core import views as core_views
from home import views as home_views

api_patterns = [
    path("auth/token/", core_api.TokenView.as_view(), name="api-token-auth"),
    path("me/", core_api.MeView.as_view(), name="api-me"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("annotation/", include("annotation.api.urls")),
    path("training/", include("training.api.urls")),
    path("evaluation/", include("evaluation.api.urls")),
    path("", include("arena.api.urls")),
]

urlpatterns = [
    path("", home_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    # Browsers that ask for /favicon.ico by themselves get the site's SVG icon.
    path("favicon.ico", RedirectView.as_view(url=f"/{settings.STATIC_URL.lstrip('/')}favicon.svg")),
    path("accounts/login/", core_views.ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/token/", core_views.api_token, name="api-token"),
    path("arena/", include("arena.urls")),
    path("annotation/", include("annotation.urls")),
    path("training/", include("training.urls")),
    path("evaluation/", include("evaluation.urls")),
    # One login for people, throttled (core.login_throttle): the admin's own would let password
    # guessing past the limits. Django sends people to it when the admin needs a login.
    path("admin/login/", RedirectView.as_view(url=reverse_lazy("login"), query_string=True)),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("v1/chat/completions", openai.ChatCompletionsView.as_view(), name="openai-chat"),
    path("v1/models", openai.ModelsView.as_view(), name="openai-models"),
]

# JSON errors under /api/ and /v1/ (Django's pages elsewhere).
handler400 = "core.api_errors.bad_request"
handler404 = "core.api_errors.page_not_found"
handler500 = "core.api_errors.server_error"
