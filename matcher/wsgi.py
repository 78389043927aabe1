"""WSGI entry point for gunicorn: ``gunicorn matcher.wsgi:app``."""

from matcher.app import create_app

app = create_app()
