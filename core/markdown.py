"""Markdown from models and annotators, rendered to HTML that cannot run script."""

from __future__ import annotations

import markdown as md
import nh3

_ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "pre",
    "code",
    "blockquote",
    "em",
    "strong",
    "del",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "a",
    "span",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "span": {"class"}}


def render_markdown(text: str) -> str:
    """Markdown (fenced code, tables) to sanitised HTML: tags outside a small allow-list, event
    handlers and `javascript:` links are removed, whatever raw HTML the text carries."""
    html = md.markdown(
        text or "",
        extensions=["fenced_code", "tables", "sane_lists"],
        output_format="html",
    )
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
