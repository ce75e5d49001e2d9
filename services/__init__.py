"""The domain: functions over a ServiceContext, grouped by what they do to faces and their records.

Wiring at the top: config (the settings), context (what a call needs, opened once), engine (settings -> the face
pipeline) and errors. The subpackages, bottom up: storage (MongoDB records, the vector index, stored images,
face writes, jobs, audit), registry (galleries, persons, enrollment, bulk, erasure, consistency), search (1:N
identification, 1:1 verification), then dedup, attendance and evaluation, and reports on top. Nothing here
imports workers, dashboard or scripts (tests/unit/test_layering.py).
"""
