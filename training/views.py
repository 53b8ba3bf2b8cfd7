from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.permissions import role_required
from core.roles import Role
from training import selectors, services
from training.forms import RunForm
from training.models import RunKind, RunStatus, TrainingRun

VIEW = (Role.RESEARCHER, Role.ADMIN)


@role_required(*VIEW)
@require_GET
def training_home(request):
    """Runs (filterable), the model tree, and what a new run can start from."""
    status, kind = request.GET.get("status", ""), request.GET.get("kind", "")
    context = {
        "runs": selectors.run_list(status=status, kind=kind)[:200],
        "tree": selectors.model_tree(),
        "statuses": RunStatus.choices,
        "kinds": RunKind.choices,
        "status": status,
        "kind": kind,
    }
    return render(request, "training/home.html", context)


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def run_new(request):
    form = RunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = services.training_run_create(
                kind=data["kind"],
                loss_type=data["loss_type"],
                base_model=data["base_model"],
                snapshot=data["snapshot"],
                hyperparameters=data["hyperparameters"],
                reward_model=data["reward_model"],
                verifier=data["verifier"],
                user=request.user,
            )
        except services.RunError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("training:run", run_id=run.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "training/run_new.html",
        {"form": form, "defaults": services.DEFAULTS},
        status=status,
    )


@role_required(*VIEW)
@require_GET
def run_detail(request, run_id: int):
    run = get_object_or_404(
        TrainingRun.objects.select_related("base_model", "snapshot", "result_contestant"),
        pk=run_id,
    )
    context = {"run": run, "charts": selectors.run_charts(run)}
    template = "training/run.html#progress" if request.htmx else "training/run.html"
    return render(request, template, context)


def _control(request, run_id: int, action) -> object:
    run = get_object_or_404(TrainingRun, pk=run_id)
    try:
        action(run=run)
    except services.RunError as exc:
        messages.error(request, str(exc))
    return redirect("training:run", run_id=run.pk)


@role_required(Role.ADMIN)
@require_POST
def run_cancel(request, run_id: int):
    return _control(request, run_id, services.training_run_cancel)


@role_required(Role.ADMIN)
@require_POST
def run_resume(request, run_id: int):
    return _control(request, run_id, services.training_run_resume)
