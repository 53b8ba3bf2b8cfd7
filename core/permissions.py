"""Role checks for views (a decorator) and for the REST API (a DRF permission)."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from core.roles import user_has_role


def role_required(*roles: str):
    """Let a view through only for users holding one of `roles`; others get 403, visitors login."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_has_role(request.user, *roles):
                raise PermissionDenied(f"This page needs the {' or '.join(roles)} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class HasRole(BasePermission):
    """DRF permission: `permission_classes = [HasRole.of("researcher")]`."""

    roles: tuple[str, ...] = ()
    message = "Your account does not hold the role this endpoint needs."

    @classmethod
    def of(cls, *roles: str) -> type[HasRole]:
        return type(f"HasRole_{'_'.join(roles)}", (cls,), {"roles": roles})

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated) and user_has_role(
            request.user, *self.roles
        )
