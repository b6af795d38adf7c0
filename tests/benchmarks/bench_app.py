"""The real app plus one benchmark-only route: a constant USSD screen, the load limit.

gunicorn serves ``tests.benchmarks.bench_app:create_app()`` in the benchmarks, so the
bare endpoint never exists in production code.
"""
from __future__ import annotations

from flask import Flask, Response

from smsgw import create_app as create_real_app

BARE_SCREEN = "CON 1 Prices\n2 Buyer standards\n3 Group orders\n4 Report a sale\n5 My SMS alerts\n6 Language"


def bare() -> Response:
    """The same answer as a USSD hop's, without any work behind it."""
    return Response(BARE_SCREEN, status=200, mimetype="text/plain")


def create_app() -> Flask:
    """The production app with ``POST /bench/bare`` added."""
    app = create_real_app()
    app.add_url_rule("/bench/bare", "bench_bare", bare, methods=["POST"])
    return app
