"""Celery app and tasks (see issue 4)."""
