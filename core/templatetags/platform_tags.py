from django import template
from django.utils.safestring import mark_safe

from core.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> str:
    # render_markdown sanitises, so the result is safe to insert.
    return mark_safe(render_markdown(text))  # noqa: S308


@register.filter(name="get_item")
def get_item(mapping: dict, key: str):
    return mapping.get(key, "") if isinstance(mapping, dict) else ""
