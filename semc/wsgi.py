"""WSGI entry point for any WSGI server (``semc.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semc.settings")
application = get_wsgi_application()
