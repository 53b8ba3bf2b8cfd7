from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from arena import selectors, services
from arena.forms import TryModelForm


@login_required
@require_http_methods(["GET", "POST"])
def models_page(request):
    """The model registry, with a box to try any active model through the worker."""
    form = TryModelForm(request.POST or None)
    generation = None
    if request.method == "POST" and form.is_valid():
        generation = services.generation_request(
            contestant=form.cleaned_data["contestant"],
            messages=[{"role": "user", "content": form.cleaned_data["prompt"]}],
            user=request.user,
        )
        form = TryModelForm(initial={"contestant": form.cleaned_data["contestant"]})
    context = {"contestants": selectors.contestant_list(), "form": form, "generation": generation}
    if request.htmx:
        return render(request, "arena/models.html#try-panel", context)
    return render(request, "arena/models.html", context)


@login_required
@require_GET
def generation_fragment(request, generation_id: int):
    """Polled by htmx until the answer is complete."""
    generation = selectors.generation_get_for_user(generation_id=generation_id, user=request.user)
    if generation is None:
        raise Http404("No such generation.")
    return render(request, "arena/models.html#generation", {"generation": generation})
