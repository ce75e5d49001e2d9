"""`benchmark.py index`: embedded Chroma (add rate, query latency, recall@5 vs exact search) and
MongoDB insert/query rates on the configured server.

Vectors are synthetic but face-like: identities are random unit centres and each "face" is its
centre plus noise (cosine ~0.7 to its centre), so neighbours are clustered as real galleries are.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from services.config import Settings
from services.storage.db import connect
from services.storage.vector_index import HNSW, MAX_BATCH, ChromaIndex, MemoryIndex, open_client

FACES_PER_IDENTITY = 5
N_QUERIES = 200


def face_like(n: int, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors in clusters of FACES_PER_IDENTITY, and one fresh query per N_QUERIES identities."""
    centres = rng.standard_normal((n // FACES_PER_IDENTITY + 1, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = 1.0 / np.sqrt(dim)

    def samples(idx: np.ndarray) -> np.ndarray:
        v = centres[idx] + rng.standard_normal((len(idx), dim)).astype(np.float32) * noise
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    vectors = samples(np.arange(n) // FACES_PER_IDENTITY)
    queries = samples(rng.integers(0, n // FACES_PER_IDENTITY, N_QUERIES))
    return vectors, queries


def exact_top5(vectors: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    """The true 5 nearest neighbours of each query, from the exact MemoryIndex."""
    exact = MemoryIndex()
    exact.upsert("truth", [str(i) for i in range(len(vectors))], vectors, ["p"] * len(vectors))
    return [{int(h.face_id) for h in hits} for hits in exact.query("truth", queries, 5)]


def bench_chroma(n: int, dim: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    vectors, queries = face_like(n, dim, rng)
    with tempfile.TemporaryDirectory() as tmp:
        index = ChromaIndex(open_client(None, 0, Path(tmp)))
        name = "bench.collection"
        start = time.perf_counter()
        for s in tqdm(range(0, n, MAX_BATCH), desc=f"chroma add {n}", unit="batch"):
            ids = [str(i) for i in range(s, min(s + MAX_BATCH, n))]
            index.upsert(name, ids, vectors[s : s + MAX_BATCH], ["p"] * len(ids))
        add_s = time.perf_counter() - start
        latencies, found = [], []
        for q in queries:
            t = time.perf_counter()
            hits = index.query(name, q[None, :], 5)[0]
            latencies.append(time.perf_counter() - t)
            found.append({int(h.face_id) for h in hits})
        disk_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
    truth = exact_top5(vectors, queries)
    recall = float(np.mean([len(f & t) / 5 for f, t in zip(found, truth, strict=True)]))
    lat = np.array(latencies) * 1000
    return {
        "n": n,
        "dim": dim,
        "add_per_s": round(n / add_s, 1),
        "add_seconds": round(add_s, 1),
        "query_p50_ms": round(float(np.percentile(lat, 50)), 2),
        "query_p95_ms": round(float(np.percentile(lat, 95)), 2),
        "recall_at_5": round(recall, 4),
        "disk_mb": round(disk_mb, 1),
    }


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
    db.client.drop_database(db.name)
    return {
        "uri": base,
        "docs": n,
        "insert_many_docs_per_s": round(bulk),
        "insert_one_per_s": round(single),
        "find_by_id_per_s": round(by_id),
        "find_by_person_index_per_s": round(by_index),
    }


def run_all(sizes: list[int], dim: int, out: Path, settings: Settings) -> dict[str, Any]:
    report: dict[str, Any] = {
        "hnsw": HNSW,
        "dim": dim,
        "faces_per_identity": FACES_PER_IDENTITY,
        "queries": N_QUERIES,
        "chroma": [bench_chroma(n, dim) for n in sizes],
        "mongo": bench_mongo(settings.mongo_uri),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.json").write_text(json.dumps(report, indent=2))
    lines = [
        "# benchmark index",
        "",
        f"HNSW: {HNSW}",
        "",
        "| vectors | dim | add/s | query p50 ms | p95 ms | recall@5 | disk MB |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = ("n", "dim", "add_per_s", "query_p50_ms", "query_p95_ms", "recall_at_5", "disk_mb")
    lines += ["| " + " | ".join(str(c[k]) for k in keys) + " |" for c in report["chroma"]]
    m = report["mongo"]
    lines += [
        "",
        f"MongoDB ({m['uri']}): insert_many {m['insert_many_docs_per_s']}/s, insert_one {m['insert_one_per_s']}/s, "
        f"find by _id {m['find_by_id_per_s']}/s, find by indexed field {m['find_by_person_index_per_s']}/s",
    ]
    (out / "index.md").write_text("\n".join(lines) + "\n")
    return report
