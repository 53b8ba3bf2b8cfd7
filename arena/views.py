from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from arena import battle_io, battles, selectors, services
from arena.battles import Actor, BattleError
from arena.forms import (
    BattleFileForm,
    DirectChatForm,
    LeaderboardFilterForm,
    NamedBattleForm,
    PromptForm,
    TryModelForm,
    VoteForm,
)
from arena.models import Battle, BattleMode
from core.client import client_address
from core.permissions import role_required
from core.roles import Role


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
    # Imported vote-only models have no backend to try; they show on the leaderboard instead.
    contestants = selectors.contestant_list().exclude(backend="external")
    context = {"contestants": contestants, "form": form, "generation": generation}
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


# --- Battles ----------------------------------------------------------------------------------
def _actor(request) -> Actor:
    if not request.session.session_key:
        request.session.save()
    return Actor(
        user=request.user if request.user.is_authenticated else None,
        session_key=request.session.session_key,
        ip=client_address(request),
    )


_FORMS = {
    BattleMode.ANONYMOUS: PromptForm,
    BattleMode.SIDE_BY_SIDE: NamedBattleForm,
    BattleMode.DIRECT: DirectChatForm,
}


@require_http_methods(["GET", "POST"])
def battle_new(request, mode: str = BattleMode.ANONYMOUS):
    """The arena: type a prompt, two models answer (or one, in a direct chat)."""
    form = _FORMS[mode](request.POST or None)
    error, status = "", 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            battle = battles.battle_start(
                actor=_actor(request),
                prompt=data["prompt"],
                mode=mode,
                contestant_a=data.get("contestant_a"),
                contestant_b=data.get("contestant_b"),
            )
        except BattleError as exc:
            error = str(exc)
            status = 429 if isinstance(exc, battles.RateLimited) else 400
        else:
            return redirect("arena:battle", public_id=battle.public_id)
    return render(
        request, "arena/battle.html", {"form": form, "mode": mode, "error": error}, status=status
    )


def _own_battle(request, public_id) -> Battle:
    battle = get_object_or_404(
        Battle.objects.select_related("contestant_a", "contestant_b"), public_id=public_id
    )
    actor = _actor(request)
    owner = (battle.user_id and battle.user_id == actor.user_id) or (
        not battle.user_id and battle.session_key == actor.session_key
    )
    if not owner:
        raise Http404("No such battle.")
    return battle


def _render_battle(request, battle: Battle, *, error: str = "", status: int = 200) -> HttpResponse:
    context = selectors.battle_view(battle=battle) | {
        "error": error,
        "continue_form": PromptForm(),
        "mode": battle.mode,
    }
    template = "arena/battle.html#battle" if request.htmx else "arena/battle.html"
    return render(request, template, context, status=status)


@require_GET
def battle_detail(request, public_id):
    return _render_battle(request, _own_battle(request, public_id))


def _battle_action(request, public_id, action) -> HttpResponse:
    battle = _own_battle(request, public_id)
    try:
        action(battle, _actor(request))
    except BattleError as exc:
        status = 429 if isinstance(exc, battles.RateLimited) else 409
        return _render_battle(request, battle, error=str(exc), status=status)
    battle.refresh_from_db()
    if request.htmx:
        return _render_battle(request, battle)
    return redirect("arena:battle", public_id=battle.public_id)


@require_POST
def battle_vote(request, public_id):
    form = VoteForm(request.POST)
    if not form.is_valid():
        return HttpResponse("A vote is one of model_a, model_b, tie, both_bad.", status=400)
    return _battle_action(
        request,
        public_id,
        lambda b, actor: battles.battle_vote(
            battle=b, actor=actor, winner=form.cleaned_data["winner"]
        ),
    )


@require_POST
def battle_continue(request, public_id):
    form = PromptForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Type a message first.", status=400)
    return _battle_action(
        request,
        public_id,
        lambda b, actor: battles.battle_continue(
            battle=b, actor=actor, prompt=form.cleaned_data["prompt"]
        ),
    )


@require_POST
def battle_cancel(request, public_id):
    return _battle_action(
        request, public_id, lambda b, actor: battles.battle_cancel(battle=b, actor=actor)
    )


@require_POST
def battle_regenerate(request, public_id):
    return _battle_action(
        request, public_id, lambda b, actor: battles.battle_regenerate(battle=b, actor=actor)
    )


# --- Leaderboard ------------------------------------------------------------------------------
@require_GET
def leaderboard_page(request):
    form = LeaderboardFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    context = selectors.leaderboard_view(
        category=filters.get("category") or "",
        style_control=bool(filters.get("style_control")),
        query=filters.get("q") or "",
        include_annotation=bool(filters.get("include_annotation")),
    ) | {"form": form}
    if request.htmx:
        return render(request, "arena/leaderboard.html#board", context)
    return render(request, "arena/leaderboard.html", context)


# --- Battle files -----------------------------------------------------------------------------
@role_required(Role.RESEARCHER)
@require_http_methods(["GET", "POST"])
def battle_files_page(request):
    """Researchers import public arena battle files and export the arena's votes."""
    form = BattleFileForm(request.POST or None, request.FILES or None)
    message, error = "", ""
    if request.method == "POST" and form.is_valid():
        try:
            count = battle_io.battles_import_upload(
                upload=form.cleaned_data["file"],
                create_unknown=form.cleaned_data["create_unknown"],
            )
        except ValueError as exc:
            error = f"Nothing was imported: {exc}"
        else:
            message = f"Imported {count} battles."
    status = 400 if error or (request.method == "POST" and not form.is_valid()) else 200
    context = {
        "form": form,
        "message": message,
        "error": error,
        "mode": "files",
        "counts": selectors.battle_counts(),
    }
    return render(request, "arena/battle_files.html", context, status=status)


@role_required(Role.RESEARCHER)
@require_GET
def battle_export(request):
    fmt = request.GET.get("format", "jsonl")
    writers = {
        "jsonl": (battle_io.stream_jsonl, "application/jsonl"),
        "json": (battle_io.stream_json_array, "application/json"),
        "csv": (battle_io.stream_csv, "text/csv"),
    }
    if fmt not in writers:
        return HttpResponse("format is jsonl, json or csv.", status=400)
    stream, content_type = writers[fmt]
    rows = battle_io.battle_export_rows(Battle.objects.all())
    response = StreamingHttpResponse(stream(rows), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="arena-battles.{fmt}"'
    return response
