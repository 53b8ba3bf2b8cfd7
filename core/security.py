"""Content-Security-Policy: the header, set from a setting, with a fresh nonce per request.

`CONTENT_SECURITY_POLICY` is the policy; `{nonce}` in it becomes this response's nonce, which
templates read as `csp_nonce` (the context processor below; `{% htmx_script %}` uses it by
itself). `CONTENT_SECURITY_POLICY_REPORT_ONLY` sends a policy that browsers only report, to try
a stricter one first. An empty setting sends no header. Pages keep their scripts and styles
in static files: no inline `<script>`, no `on...=` handlers, no `hx-on`.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.utils.functional import SimpleLazyObject

HEADERS = (
    ("CONTENT_SECURITY_POLICY", "Content-Security-Policy"),
    ("CONTENT_SECURITY_POLICY_REPORT_ONLY", "Content-Security-Policy-Report-Only"),
)


def _nonce(request) -> str:
    request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    nonce = getattr(request, "_csp_nonce", None)
    if nonce is None:
        nonce = request._csp_nonce = secrets.token_urlsafe(18)
    return nonce


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        for setting, header in HEADERS:
            policy = getattr(settings, setting, "")
            if policy and header not in response:
                if "{nonce}" in policy:
                    policy = policy.replace("{nonce}", _nonce(request))
                response[header] = policy
        return response


def csp_nonce(request) -> dict:
    """`csp_nonce` for templates: `<script nonce="{{ csp_nonce }}">` (made when first used)."""
    return {"csp_nonce": SimpleLazyObject(lambda: _nonce(request))}
