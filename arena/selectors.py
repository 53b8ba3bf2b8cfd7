"""Reads of the arena."""

from __future__ import annotations

from arena.models import Contestant, Generation


def contestant_list(*, active_only: bool = False):
    qs = Contestant.objects.select_related("parent")
    return qs.active() if active_only else qs


def contestant_get_servable(*, name: str) -> Contestant | None:
    """An active contestant with local weights, by name: what `/v1/chat/completions` serves."""
    return Contestant.objects.active().local().filter(name=name).first()


def generation_get_for_user(*, generation_id: int, user) -> Generation | None:
    """A generation the user may see: their own, or any for staff."""
    qs = Generation.objects.select_related("contestant").filter(pk=generation_id)
    if not user.is_staff:
        qs = qs.filter(requested_by=user)
    return qs.first()
