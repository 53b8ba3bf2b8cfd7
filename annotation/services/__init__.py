"""Writes of annotation, by topic: projects and prompts (`projects`), candidate answers
(`candidates`), the work queue with its overlap guarantee (`queue`), submissions
(`submissions`) and review (`review`). Every public service is importable from here."""

from annotation.services.candidates import (
    candidates_answer_here,
    candidates_generate,
    completion_add_human,
    items_refresh,
    ranking_item_create,
)
from annotation.services.errors import TaskError
from annotation.services.projects import (
    ImportResult,
    demonstration_items_open,
    project_create,
    project_guidelines_update,
    project_overlap_update,
    prompt_create,
    prompts_import,
)
from annotation.services.queue import assignments_expire, task_next, task_skip
from annotation.services.review import feedback_mark_seen, review_decide
from annotation.services.submissions import demonstration_submit, ranking_submit

__all__ = [
    "ImportResult",
    "TaskError",
    "assignments_expire",
    "candidates_answer_here",
    "candidates_generate",
    "completion_add_human",
    "demonstration_items_open",
    "demonstration_submit",
    "feedback_mark_seen",
    "items_refresh",
    "project_create",
    "project_guidelines_update",
    "project_overlap_update",
    "prompt_create",
    "prompts_import",
    "ranking_item_create",
    "ranking_submit",
    "review_decide",
    "task_next",
    "task_skip",
]
