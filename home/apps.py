from django.apps import AppConfig


class HomeConfig(AppConfig):
    """The site's front: the home page of each role and the demo data. It stands on every other
    app, so that `core` stays the base they all build on."""

    name = "home"
