"""The index shared by several processes (dashboard, workers, scripts), on the Chroma server and embedded: a search
in one process sees what another process added, deleted, dropped or rebuilt since this one opened the collection;
an embedded index alone with its store never pays the cross-process sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from services.config import REPO_ROOT, Settings
from services.context import open_index
from services.storage.vector_index import ChromaIndex
from tests.integration.conftest import isolated_settings, project_env

NAME = "procs.test"
# Run as a separate interpreter (not multiprocessing: its spawn re-runs whatever __main__ is).
OTHER = """
import json, sys
import numpy as np
from services.config import Settings
from services.context import open_index
op, vector = sys.argv[1], json.loads(sys.argv[2])
index = open_index(Settings())
if op == "add":
    index.upsert("procs.test", ["new"], np.asarray([vector], dtype=np.float32), ["p-new"])
elif op == "delete":
    index.delete("procs.test", ["new"])
else:  # rebuild: the collection dropped and made again, with one vector
    index.drop("procs.test")
    index.upsert("procs.test", ["rebuilt"], np.asarray([vector], dtype=np.float32), ["p-rebuilt"])
"""


def _in_other_process(settings: Settings, op: str, vector: np.ndarray) -> None:
    args = [sys.executable, "-c", OTHER, op, json.dumps(vector.tolist())]
    env = {**os.environ, **project_env(settings)}
    done = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("mode", ["server", "embedded"])
def test_searches_see_other_processes_adds_deletes_and_rebuilds(mode: str, infra: Settings, tmp_path: Path) -> None:
    settings = isolated_settings(infra, tmp_path, chroma_mode=mode)
    rng = np.random.default_rng(0)
    index = open_index(settings)
    index.upsert(NAME, [str(i) for i in range(50)], _unit(rng.normal(size=(50, 16))), [f"p{i}" for i in range(50)])
    query = _unit(rng.normal(size=(1, 16)))
    assert "new" not in [h.face_id for h in index.query(NAME, query, 3)[0]]

    _in_other_process(settings, "add", query[0])
    first = index.query(NAME, query, 3)[0][0]
    assert (first.face_id, first.person_id) == ("new", "p-new") and first.similarity > 0.999

    _in_other_process(settings, "delete", query[0])
    hits = index.query(NAME, query, 3)[0]
    assert "new" not in [h.face_id for h in hits] and len(hits) == 3

    _in_other_process(settings, "rebuild", query[0])  # this process's open collection no longer exists
    assert [(h.face_id, h.person_id) for h in index.query(NAME, query, 3)[0]] == [("rebuilt", "p-rebuilt")]
    assert index.count(NAME) == 1


def test_an_embedded_index_alone_syncs_only_after_a_write(tmp_path: Path) -> None:
    index = ChromaIndex.embedded(tmp_path)
    assert index.write_log is not None
    vectors = _unit(np.random.default_rng(1).normal(size=(10, 8)))
    index.upsert(NAME, [str(i) for i in range(10)], vectors, ["p"] * 10)
    syncs: list[int] = []
    real_catch_up = index.write_log.catch_up
    index.write_log.catch_up = lambda name, sync: real_catch_up(name, lambda: (syncs.append(1), sync())[1])  # type: ignore[method-assign]

    for _ in range(3):
        assert index.query(NAME, vectors[:1], 1)[0][0].face_id == "0"
    assert len(syncs) == 1  # once, for the write above; then nothing changed
    index.delete(NAME, ["9"])
    index.query(NAME, vectors[:1], 1)
    index.query(NAME, vectors[:1], 1)
    assert len(syncs) == 2
