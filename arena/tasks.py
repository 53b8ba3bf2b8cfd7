"""Celery tasks of the arena: thin wrappers that take ids and call one service."""

from celery import shared_task

from arena import services


@shared_task(name="arena.tasks.generation_run", acks_late=True, reject_on_worker_lost=True)
def generation_run(generation_id: int) -> None:
    services.generation_execute(generation_id=generation_id)


@shared_task(name="arena.tasks.leaderboards_refresh")
def leaderboards_refresh() -> int:
    from arena.leaderboards import leaderboards_refresh as refresh

    return refresh()


@shared_task(name="arena.tasks.battles_import_file")
def battles_import_file(path: str) -> int:
    """Import a public battle file already on this machine (the demo's real votes, whose few
    self-battles are left out), then refit the leaderboards."""
    from arena.battle_io import battles_import
    from arena.leaderboards import leaderboards_refresh as refresh

    count = battles_import(path=path, skip_self_battles=True)
    refresh()
    return count
