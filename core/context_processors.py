from core.roles import Role, user_roles


def roles(request):
    """Expose the user's roles to templates as `roles.annotator`, `roles.admin`, ..."""
    held = user_roles(request.user) if hasattr(request, "user") else set()
    return {"roles": {r.value: (r.value in held or Role.ADMIN in held) for r in Role}}
