"""The four roles of the platform, as Django groups.

A superuser holds every role. Roles are checked by name so that a deployment can attach extra
model permissions to the groups in the admin without touching code.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, Group, User
from django.db.models import TextChoices


class Role(TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    RESEARCHER = "researcher", "Researcher"
    ADMIN = "admin", "Admin"


def user_roles(user: User | AnonymousUser) -> set[str]:
    """The role names a user holds (cached on the user object for the request)."""
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_role_names", None)
    if cached is None:
        groups = () if user.is_superuser else user.groups.values_list("name", flat=True)
        cached = user_roles_keep(user, groups)
    return cached


def user_roles_keep(user: User, group_names) -> set[str]:
    """Keep on `user` the roles its groups (`group_names`, read by the caller) give it, for
    `user_roles`; returns them. A superuser holds every role whatever its groups."""
    if user.is_superuser:
        roles = {r.value for r in Role}
    else:
        roles = {name for name in group_names if name in Role.values}
    user._role_names = roles
    return roles


def user_has_role(user: User | AnonymousUser, *roles: str) -> bool:
    """True when the user holds any of the given roles (admins hold them all)."""
    held = user_roles(user)
    return Role.ADMIN in held or any(r in held for r in roles)


def role_groups_ensure() -> dict[str, Group]:
    """Create the role groups if they are missing; returns them by name."""
    return {r.value: Group.objects.get_or_create(name=r.value)[0] for r in Role}


def user_role_grant(*, user: User, role: str) -> None:
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    user.groups.add(role_groups_ensure()[role])
    if role == Role.ADMIN and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    user.__dict__.pop("_role_names", None)
