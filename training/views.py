from django.shortcuts import render

from arena.models import Contestant
from core.permissions import role_required
from core.roles import Role


@role_required(Role.RESEARCHER, Role.ADMIN)
def training_home(request):
    """The training area: the local models that can serve as a base for a run."""
    base_models = Contestant.objects.local().select_related("parent")
    return render(request, "training/home.html", {"base_models": base_models})
