"""The Redis result backend without its per-task pub/sub subscription.

Stock `RedisBackend.on_task_call` subscribes to every submitted task's result channel so that
`AsyncResult.get()` can wait on pub/sub. Our clients poll states instead, and that subscription is
what fails, for good ("the Celery application must be restarted"), when Redis restarts under a
long-lived process such as the dashboard. Polling with GET reconnects by itself.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend


class PollingRedisBackend(RedisBackend):
    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None


def backend_url(redis_url: str) -> str:
    """A result_backend setting that selects this class for `redis_url`."""
    return f"workers.result_backend:PollingRedisBackend+{redis_url}"
