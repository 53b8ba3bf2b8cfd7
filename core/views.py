from django.contrib.auth.decorators import login_required
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
