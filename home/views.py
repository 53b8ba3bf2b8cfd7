from django.shortcuts import render
from django.views.decorators.http import require_GET

from home.selectors import home_context


@require_GET
def home(request):
    return render(request, "home/home.html", home_context(request.user))
