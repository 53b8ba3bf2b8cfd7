from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from rest_framework.authtoken.models import Token

from annotation.models import Project
from arena.models import Contestant


@require_GET
def home(request):
    context = {
        "contestant_count": Contestant.objects.active().count(),
        "project_count": Project.objects.count(),
    }
    return render(request, "core/home.html", context)


@require_GET
def healthz(request):
    """Liveness for load balancers and `make run`: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@login_required
@require_http_methods(["GET", "POST"])
def api_token(request):
    """Show, create, rotate or revoke the user's API token."""
    if request.method == "POST":
        action = request.POST.get("action")
        Token.objects.filter(user=request.user).delete()
        if action == "create":
            Token.objects.create(user=request.user)
        return redirect("api-token")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "core/api_token.html", {"token": token})


class ThrottledLoginView(LoginView):
    """The login page, refusing further attempts for a while after repeated failures from one
    address or for one username (password guessing)."""

    def post(self, request, *args, **kwargs):
        keys = _login_keys(request)
        if any((cache.get(k) or 0) >= settings.LOGIN_FAILURES_ALLOWED for k in keys):
            form = self.get_form()
            form.add_error(None, "Too many failed logins; try again in 15 minutes.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        for key in _login_keys(self.request):
            cache.add(key, 0, timeout=15 * 60)
            try:
                cache.incr(key)
            except ValueError:
                pass
        return super().form_invalid(form)


def _login_keys(request) -> list[str]:
    username = (request.POST.get("username") or "").strip().lower()[:150]
    return [f"login-fail:ip:{request.META.get('REMOTE_ADDR')}", f"login-fail:user:{username}"]
