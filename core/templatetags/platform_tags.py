import json

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


def format_number(value) -> str:
    """A measurement as people read it: four significant digits, scientific notation for very
    small or very large magnitudes (a learning rate of 5e-05 is not 0.0000)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        mantissa, exponent = f"{value:.3e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.1f}"


@register.filter(name="number")
def number(value) -> str:
    return format_number(value)


@register.filter(name="setting")
def setting(value) -> str:
    """A run setting: numbers via `number`, text as it is, lists and mappings as JSON."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)
