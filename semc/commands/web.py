"""``semc web``: serve the dashboard, the API and the admin (on 127.0.0.1 unless told otherwise).

The server is `waitress <https://docs.pylonsproject.org/projects/waitress/>`_ when it is installed
(``pip install waitress``: a production WSGI server, pure Python, threads) and Django's development
server otherwise (fine for one facility's loopback or VPN use; not a hardened public server). Static
files (the admin's and the dashboard's) are served by the site itself (``semc.web.urls``, from the apps'
folders, through the middleware) in both cases, so no ``collectstatic`` or separate file server is needed. For access from other machines put it behind
a TLS reverse proxy, bind with ``--host`` and list the host name in ``SEMC_ALLOWED_HOSTS``.

Examples::

    semc web                           # http://127.0.0.1:8000/  (dashboard, /api/, /admin/)
    semc web --port 8080 --server runserver
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging
import os
import signal
import sys

from semc.cli import django_setup

logger = logging.getLogger(__name__)

SERVERS = ("auto", "waitress", "runserver")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--server", choices=SERVERS, default="auto",
                        help="auto: waitress when installed, else Django's development server")
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")


def server_choose(requested: str) -> str:
    """The server to use: ``auto`` picks waitress when it can be imported."""
    if requested == "auto":
        return "waitress" if importlib.util.find_spec("waitress") is not None else "runserver"
    if requested == "waitress" and importlib.util.find_spec("waitress") is None:
        from semc.base.errors import ConfigurationError

        raise ConfigurationError("waitress is not installed (pip install waitress), or use --server runserver")
    return requested


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _exit_cleanly(signum, frame) -> None:
    sys.exit(0)


def run(args: argparse.Namespace) -> int:
    os.environ["SEMC_SERVE_STATIC"] = "1"  # read by the settings: static files through semc.web.urls
    django_setup()
    from django.conf import settings

    server = server_choose(args.server)
    signal.signal(signal.SIGTERM, _exit_cleanly)  # a service manager's stop is a clean exit
    if not _loopback(args.host):
        logger.warning("serving on %s: other machines can connect; use a TLS reverse proxy and list the name "
                       "in SEMC_ALLOWED_HOSTS (now %s)", args.host, ", ".join(settings.ALLOWED_HOSTS))
    if settings.DEBUG:
        logger.warning("SEMC_DEBUG is on: never on a server others can reach")
    if server == "waitress":
        import waitress
        from django.core.wsgi import get_wsgi_application

        logger.info("waitress on http://%s:%s/ (%s threads)", args.host, args.port, args.threads)
        waitress.serve(get_wsgi_application(), host=args.host.strip("[]"), port=args.port,
                       threads=args.threads, ident="semc")
        return 0
    from django.core.management import call_command

    host = args.host.strip("[]")
    ipv6 = ":" in host
    address = f"[{host}]:{args.port}" if ipv6 else f"{host}:{args.port}"
    logger.warning("Django's development server (install waitress for a production server)")
    call_command("runserver", address, use_reloader=False, use_threading=True, use_ipv6=ipv6,
                 use_static_handler=False, skip_checks=False)
    return 0
