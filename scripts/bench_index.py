"""`benchmark.py index`: the vector index as the services use it (`VectorIndex`, i.e. ChromaIndex), on a Chroma
server and embedded, at several sizes: add rate, single-query and 16-query-batch latency (beside Chroma's own
`collection.query`), recall@5 against exact search, memory and disk, per HNSW build (M, ef_construction) and
search breadth (ef_search). MongoDB insert/query rates on the configured server.

Vectors are synthetic but face-like: identities are random unit centres and each "face" is its centre plus
noise (cosine ~0.7 to its centre), so neighbours are clustered as real galleries are.

Each store is built once through `VectorIndex.upsert` (kept under --store for the next run: a 1M build takes
minutes) and each (mode, ef_search) is measured in a fresh process (`index-one`), so a reload applies the
ef_search and each process's memory is its own. A million-vector store is built through the server only; the
embedded measurements open the same files.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
import numpy as np
from tqdm import tqdm

from scripts.bench_decode import memory_bytes
from scripts.supervisor.probes import chroma_answers
from scripts.supervisor.processes import find_program
from services.config import Settings
from services.storage.db import connect
from services.storage.vector_index import MAX_BATCH, ChromaIndex, HnswParams, open_client

FACES_PER_IDENTITY = 5
N_QUERIES = 200
BATCH = 16
NAME = "bench.collection"
# Larger stores are built through the server only (the embedded add path is several times slower).
EMBEDDED_BUILD_MAX = 200_000


@dataclass(frozen=True, slots=True)
class Case:
    n: int
    dim: int
    build: HnswParams  # ef_search here is the build's; each measurement sets its own

    def store(self, root: Path, mode: str) -> Path:
        b = self.build
        return root / f"{mode}-{self.n}-{self.dim}-m{b.max_neighbors}-c{b.ef_construction}"


def face_like(n: int, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors in clusters of FACES_PER_IDENTITY, and N_QUERIES fresh faces of random identities."""
    centres = rng.standard_normal((n // FACES_PER_IDENTITY + 1, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = 1.0 / np.sqrt(dim)

    def samples(idx: np.ndarray) -> np.ndarray:
        v = centres[idx] + rng.standard_normal((len(idx), dim)).astype(np.float32) * noise
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    vectors = samples(np.arange(n) // FACES_PER_IDENTITY)
    queries = samples(rng.integers(0, n // FACES_PER_IDENTITY, N_QUERIES))
    return vectors, queries


def exact_top5(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The true 5 nearest neighbours (row numbers) of each query: one matrix product, exact."""
    sims = queries @ vectors.T
    best = np.argpartition(-sims, 4, axis=1)[:, :5]
    return np.take_along_axis(best, np.argsort(-np.take_along_axis(sims, best, 1), axis=1), 1)


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


@contextmanager
def chroma_server(path: Path) -> Iterator[tuple[int, int]]:
    """`chroma run` on a free port over `path`: (port, pid) while it answers; stopped after."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = find_program("chroma") or "chroma"
    args = [exe, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not chroma_answers("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Chroma server over {path} did not start")
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def opened(mode: str, store: Path, hnsw: HnswParams) -> Iterator[tuple[ChromaIndex, int | None]]:
    """The store's ChromaIndex, and the server's pid (None: embedded, in this process)."""
    if mode == "embedded":
        yield ChromaIndex.embedded(store, hnsw), None
        return
    with chroma_server(store / "chroma") as (port, pid):
        yield ChromaIndex(open_client("127.0.0.1", port, store), hnsw), pid


def build(case: Case, store: Path, mode: str, vectors: np.ndarray) -> dict[str, Any]:
    """Add the vectors through VectorIndex.upsert in batches of MAX_BATCH; the add rate (kept in build.json)."""
    marker = store / "build.json"
    if marker.exists():
        return dict(json.loads(marker.read_text()))
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    with opened(mode, store, case.build) as (index, _):
        start = time.perf_counter()
        for s in tqdm(range(0, case.n, MAX_BATCH), desc=f"{mode} add {case.n}x{case.dim}", unit="batch"):
            ids = [str(i) for i in range(s, min(s + MAX_BATCH, case.n))]
            index.upsert(NAME, ids, vectors[s : s + MAX_BATCH], ["p"] * len(ids))
        seconds = time.perf_counter() - start
    built = {"built_by": mode, "add_seconds": round(seconds, 1), "add_per_s": round(case.n / seconds, 1)}
    marker.write_text(json.dumps(built))
    return built


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.array(seconds) * 1000
    return round(float(np.percentile(ms, 50)), 2), round(float(np.percentile(ms, 95)), 2)


def _set_ef_search(index: ChromaIndex, ef: int) -> bool:
    """Make the collection's ef_search `ef`; True when it changed (a reload is needed to apply it)."""
    col = index.client.get_collection(NAME, embedding_function=None)
    if (HnswParams.of(col) or HnswParams()).ef_search == ef:
        return False
    col.modify(configuration={"hnsw": {"ef_search": ef}})
    return True


def measure(mode: str, store: Path, ef: int) -> dict[str, Any]:
    """One (mode, ef_search) in this process (`benchmark.py index-one`): latencies, recall, memory."""
    queries, truth = np.load(store / "queries.npy"), np.load(store / "truth.npy")
    hnsw = HnswParams(ef_search=ef)
    with opened(mode, store, hnsw) as (index, _):
        changed = _set_ef_search(index, ef)
    if changed and mode == "embedded":  # the embedded graph is loaded once per process: measure in a fresh one
        return run_one(mode, store, ef)
    rss_before = memory_bytes()[0]
    with opened(mode, store, hnsw) as (index, pid):
        raw = index.client.get_collection(NAME, embedding_function=None)
        for q in queries[:20]:  # load the graph
            index.query(NAME, q[None, :], 5)
        wrapped, direct, found = [], [], []
        for q in queries:
            t = time.perf_counter()
            raw.query(query_embeddings=q[None, :], n_results=5, include=["metadatas", "distances"])
            direct.append(time.perf_counter() - t)
            t = time.perf_counter()
            hits = index.query(NAME, q[None, :], 5)[0]
            wrapped.append(time.perf_counter() - t)
            found.append({int(h.face_id) for h in hits})
        batches = []
        for _ in range(3):
            for s in range(0, len(queries) - BATCH + 1, BATCH):
                t = time.perf_counter()
                index.query(NAME, queries[s : s + BATCH], 5)
                batches.append(time.perf_counter() - t)
        rss, peak = memory_bytes(pid) if pid else memory_bytes()
        if pid is None:
            rss -= rss_before
    recall = float(np.mean([len(f & set(t.tolist())) / 5 for f, t in zip(found, truth, strict=True)]))
    p50, p95 = _percentiles(wrapped)
    raw50, raw95 = _percentiles(direct)
    b50, b95 = _percentiles(batches)
    return {
        "mode": mode,
        "ef_search": ef,
        "query_p50_ms": p50,
        "query_p95_ms": p95,
        "raw_query_p50_ms": raw50,
        "raw_query_p95_ms": raw95,
        "overhead_p50_ms": round(statistics.median(w - d for w, d in zip(wrapped, direct, strict=True)) * 1000, 2),
        "batch16_p50_ms": b50,
        "batch16_p95_ms": b95,
        "recall_at_5": round(recall, 4),
        "memory_mb": round(rss / 1e6, 1),
        "memory_peak_mb": round(peak / 1e6, 1),
        "memory_of": "the Chroma server process" if pid else "this process's growth (embedded)",
    }


def run_one(mode: str, store: Path, ef: int) -> dict[str, Any]:
    """`measure` in a fresh interpreter; its last stdout line is the result."""
    args = [sys.executable, str(Path(__file__).with_name("benchmark.py")), "index-one", mode, str(store), str(ef)]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"mode": mode, "ef_search": ef, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def bench_case(case: Case, modes: list[str], efs: list[int], root: Path, seed: int = 0) -> list[dict[str, Any]]:
    vectors, queries = face_like(case.n, case.dim, np.random.default_rng(seed))
    truth = exact_top5(vectors, queries)
    rows = []
    for mode in modes:
        store = case.store(root, mode)
        if mode == "embedded" and case.n > EMBEDDED_BUILD_MAX and "server" in modes:
            store = case.store(root, "server")  # the same files, opened embedded
        built = build(case, store, "server" if store.name.startswith("server") else mode, vectors)
        np.save(store / "queries.npy", queries)
        np.save(store / "truth.npy", truth)
        for ef in efs:
            row = {"n": case.n, "dim": case.dim, **_build_fields(case.build), **built, **run_one(mode, store, ef)}
            row["disk_mb"] = round(disk_mb(store / "chroma"), 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _build_fields(build: HnswParams) -> dict[str, int]:
    return {"max_neighbors": build.max_neighbors, "ef_construction": build.ef_construction}


def chosen(rows: list[dict[str, Any]], recall: float = 0.99) -> list[dict[str, Any]]:
    """Per (n, dim, mode): the fastest measured setting whose recall@5 reaches `recall` (else the best recall)."""
    groups: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    for r in rows:
        if "error" not in r:
            groups.setdefault((r["n"], r["dim"], r["mode"]), []).append(r)
    out = []
    for group in groups.values():
        good = [r for r in group if r["recall_at_5"] >= recall]
        out.append(min(good, key=lambda r: r["query_p95_ms"]) if good else max(group, key=lambda r: r["recall_at_5"]))
    return out


def bench_mongo(uri: str, n: int = 20000) -> dict[str, Any]:
    base = uri.rsplit("/", 1)[0]
    db = connect(f"{base}/bench_{uuid.uuid4().hex[:8]}")
    col = db["faces"]
    col.create_index([("person_id", 1)])
    docs = [{"_id": f"f{i}", "person_id": f"p{i // 5}", "vector": bytes(512), "state": "indexed"} for i in range(n)]
    t = time.perf_counter()
    for s in range(0, n, 1000):
        col.insert_many(docs[s : s + 1000], ordered=False)
    bulk = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(1000):
        col.insert_one({"_id": f"single{i}", "person_id": "x", "state": "pending"})
    single = 1000 / (time.perf_counter() - t)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for i in rng.integers(0, n, 2000):
        col.find_one({"_id": f"f{i}"})
    by_id = 2000 / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in rng.integers(0, n // 5, 2000):
        list(col.find({"person_id": f"p{i}"}, {"_id": 1}))
    by_index = 2000 / (time.perf_counter() - t)
    sample = col.find_one({"_id": "f0"}) or {}
    db.client.drop_database(db.name)
    return {
        "uri": base,
        "docs": n,
        "insert_many_docs_per_s": round(bulk),
        "insert_one_per_s": round(single),
        "find_by_id_per_s": round(by_id),
        "find_by_person_index_per_s": round(by_index),
        "bytes_per_doc": len(bson.encode(sample)),  # SecantusDB has no collstats
    }


COLUMNS = (
    ("n", "vectors"),
    ("dim", "dim"),
    ("mode", "mode"),
    ("max_neighbors", "M"),
    ("ef_construction", "ef_c"),
    ("ef_search", "ef_s"),
    ("add_per_s", "add/s"),
    ("query_p50_ms", "query p50 ms"),
    ("query_p95_ms", "p95"),
    ("raw_query_p50_ms", "raw p50"),
    ("overhead_p50_ms", "overhead"),
    ("batch16_p50_ms", "batch16 p50"),
    ("batch16_p95_ms", "p95 "),
    ("recall_at_5", "recall@5"),
    ("memory_mb", "memory MB"),
    ("disk_mb", "disk MB"),
)


def markdown(report: dict[str, Any]) -> str:
    header = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = ["# benchmark index", "", header, "|" + "---|" * len(COLUMNS)]
    for r in report["index"]:
        cells = [
            r.get("error", "")[:60] if key == "recall_at_5" and "error" in r else r.get(key, "") for key, _ in COLUMNS
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "Chosen (fastest p95 with recall@5 >= 0.99):", ""]
    lines += [
        f"- {r['n']} x {r['dim']} {r['mode']}: M {r['max_neighbors']}, ef_construction {r['ef_construction']}, "
        f"ef_search {r['ef_search']}: p95 {r['query_p95_ms']} ms, recall@5 {r['recall_at_5']}"
        for r in report["chosen"]
    ]
    if m := report.get("mongo"):
        lines += [
            "",
            f"MongoDB ({m['uri']}): insert_many {m['insert_many_docs_per_s']}/s, insert_one {m['insert_one_per_s']}/s, "
            f"find by _id {m['find_by_id_per_s']}/s, find by indexed field {m['find_by_person_index_per_s']}/s, "
            f"{m['bytes_per_doc']} bytes per test document",
        ]
    return "\n".join(lines) + "\n"


def run_all(
    cases: list[Case], modes: list[str], efs: list[int], out: Path, store_root: Path, settings: Settings | None
) -> dict[str, Any]:
    """Every case in every mode at every ef_search; the report (also out/index.json and out/index.md)."""
    rows = [row for case in cases for row in bench_case(case, modes, efs, store_root)]
    report: dict[str, Any] = {
        "faces_per_identity": FACES_PER_IDENTITY,
        "queries": N_QUERIES,
        "batch": BATCH,
        "index": rows,
        "chosen": chosen(rows),
        "mongo": bench_mongo(settings.mongo_uri) if settings else None,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.json").write_text(json.dumps(report, indent=2))
    (out / "index.md").write_text(markdown(report))
    return report
