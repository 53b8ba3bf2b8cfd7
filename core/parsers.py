"""Request body parsers of the API.

A body may spell a NUL character (JSON `"\\u0000"`, a form's `%00`); PostgreSQL cannot store or
even compare text that holds one, so such a body would fail deep inside a query. It is refused
at the door instead, with a 400 that says why, on every database alike, whatever the body's
media type.
"""

from __future__ import annotations

from django.http import QueryDict
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser as DRFFormParser
from rest_framework.parsers import JSONParser as DRFJSONParser
from rest_framework.parsers import MultiPartParser as DRFMultiPartParser

NUL_MESSAGE = "Text may not contain the NUL character (\\u0000)."


def holds_nul(value) -> bool:
    """Whether any string in `value` (nested dicts and lists, keys included) holds a NUL."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(v) for v in value)
    if isinstance(value, QueryDict):
        return holds_nul(dict(value.lists()))
    return False


def _refuse_nul(data):
    if holds_nul(data):
        raise ParseError(NUL_MESSAGE)
    return data


class JSONParser(DRFJSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _refuse_nul(super().parse(stream, media_type, parser_context))


class FormParser(DRFFormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _refuse_nul(super().parse(stream, media_type, parser_context))


class MultiPartParser(DRFMultiPartParser):
    """Field values and file names are checked; file contents are the uploader's business."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        _refuse_nul(parsed.data)
        _refuse_nul([f.name or "" for f in parsed.files.values()])
        return parsed
