"""Celery app and tasks: the only code that knows about queues."""
