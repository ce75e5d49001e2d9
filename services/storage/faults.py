"""Crash points for consistency tests: the process dies on the spot when FACEREG_CRASH_AT names one.

A real crash, not an exception: nothing after the point runs, no cleanup, no finally blocks.
"""

from __future__ import annotations

import os

CRASH_EXIT_CODE = 86


def crash_point(name: str) -> None:
    if os.environ.get("FACEREG_CRASH_AT") == name:
        os._exit(CRASH_EXIT_CODE)
