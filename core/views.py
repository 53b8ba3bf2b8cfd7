from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.db import connection
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe
from rest_framework.authtoken.models import Token

from core import login_throttle
from core.authentication import api_token_create, api_token_revoke, token_expiry


@require_safe
def healthz(request):
    """Liveness for load balancers and `make run` (GET or HEAD): the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


TOKEN_LIFETIMES = {"": "never", "30": "in 30 days", "90": "in 90 days", "365": "in a year"}


@login_required
@require_http_methods(["GET", "POST"])
def api_token(request):
    """Show, create, rotate or revoke the user's API token."""
    if request.method == "POST":
        if request.POST.get("action") == "create":
            days = request.POST.get("expires_in_days", "")
            if days not in TOKEN_LIFETIMES:
                return HttpResponseBadRequest("Choose when the token expires from the list.")
            api_token_create(user=request.user, expires_in_days=int(days) if days else None)
        else:
            api_token_revoke(user=request.user)
        return redirect("api-token")
    token = Token.objects.filter(user=request.user).select_related("expiry").first()
    context = {"token": token, "lifetimes": TOKEN_LIFETIMES}
    if token is not None:
        own = getattr(token, "expiry", None)
        context["expires_at"] = token_expiry(
            created=token.created, own=own.expires_at if own else None
        )
    return render(request, "core/api_token.html", context)


class ThrottledLoginView(LoginView):
    """The login page, slowing down password guessing by the rules of `core.login_throttle`
    (shared with the API's token endpoint)."""

    def post(self, request, *args, **kwargs):
        wait = login_throttle.login_wait(request, request.POST.get("username", ""))
        if wait:
            form = self.get_form()
            form.add_error(None, login_throttle.wait_message(wait))
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        login_throttle.login_succeeded(self.request, self.request.POST.get("username", ""))
        return super().form_valid(form)

    def form_invalid(self, form):
        if self.request.POST.get("username"):
            login_throttle.login_failed(self.request, self.request.POST["username"])
        return super().form_invalid(form)
