import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Import the URL configuration, and with it every view module (about 1.5 s), while the server
# process starts rather than in its first request: right after a deploy or a restart, the
# first requests of each process are otherwise seconds slow.
get_resolver().url_patterns  # noqa: B018 - reading it imports the views
# Keep the objects of start-up (Django, every view, their libraries: about 150,000) out of the
# garbage collector's full passes, which otherwise walk all of them (about 75 ms, in the middle of
# some request) every few hundred requests.
gc.freeze()
