"""The worker process's app, built from this process's settings (FACEREG_*). A worker started without -Q
consumes exactly its install's queues:

    celery -A workers.worker worker --concurrency 1 --loglevel INFO
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init, worker_process_init

from services.config import get_settings
from services.storage.private_files import secure_process
from workers.app import create_app

app = create_app(get_settings())


@worker_init.connect
@worker_process_init.connect
def _private_data(**_: Any) -> None:
    """A worker makes its files private before its pool starts (the children inherit the umask 077) and
    tightens the data folder once; a pool child only checks the umask (its parent walked already)."""
    secure_process(get_settings().data_dir)
