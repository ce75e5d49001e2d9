"""Embedded Chroma shared by several processes (dashboard, workers, scripts): a search in one process
sees what another process added or deleted since this one loaded the collection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from services.config import REPO_ROOT
from services.storage.vector_index import ChromaIndex, open_client

NAME = "procs.test"
# Run as a separate interpreter (not multiprocessing: its spawn re-runs whatever __main__ is).
OTHER = """
import json, sys
from pathlib import Path
import numpy as np
from services.storage.vector_index import ChromaIndex, open_client
data_dir, op, vector = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
index = ChromaIndex(open_client(None, 0, Path(data_dir)), embedded=True)
if op == "add":
    index.upsert("procs.test", ["new"], np.asarray([vector], dtype=np.float32), ["p-new"])
else:
    index.delete("procs.test", ["new"])
"""


def _in_other_process(data_dir: Path, op: str, vector: np.ndarray) -> None:
    args = [sys.executable, "-c", OTHER, str(data_dir), op, json.dumps(vector.tolist())]
    done = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_searches_see_other_processes_adds_and_deletes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    index = ChromaIndex(open_client(None, 0, tmp_path), embedded=True)
    index.upsert(NAME, [str(i) for i in range(50)], base, [f"p{i}" for i in range(50)])
    query = rng.normal(size=(1, 16)).astype(np.float32)
    query /= np.linalg.norm(query)
    assert "new" not in [h.face_id for h in index.query(NAME, query, 3)[0]]

    _in_other_process(tmp_path, "add", query[0])
    first = index.query(NAME, query, 3)[0][0]
    assert (first.face_id, first.person_id) == ("new", "p-new") and first.similarity > 0.999

    _in_other_process(tmp_path, "delete", query[0])
    hits = index.query(NAME, query, 3)[0]
    assert "new" not in [h.face_id for h in hits] and len(hits) == 3
