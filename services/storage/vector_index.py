"""The vector projection of the faces: one cosine collection per gallery + contract.

`VectorIndex` is what the services use; `ChromaIndex` (HNSW in ChromaDB) is the real one, `MemoryIndex` an exact
in-memory one for the fast unit tests. tests/integration/test_vector_index_contract.py runs the same checks on both.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import chromadb
import chromadb.errors
import numpy as np
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaSettings
from pydantic import SecretStr

from model.embedders.base import l2_normalise
from model.types import FloatArray
from services.errors import StorageUnavailable

# Chroma refuses batches over ~5,461 items.
MAX_BATCH = 5000
# Search breadth: recall@5 ~0.97 at 100 and ~0.998 at 400 on face-like queries at 100k (PITFALLS.md).
HNSW: dict[str, Any] = {"space": "cosine", "ef_construction": 200, "ef_search": 200, "max_neighbors": 32}


@dataclass(frozen=True, slots=True)
class Hit:
    face_id: str
    person_id: str
    similarity: float


def collection_name(gallery: str, contract: str) -> str:
    """A valid Chroma name (3-512 chars of [a-zA-Z0-9._-], alphanumeric ends) for gallery + contract."""
    raw = f"{gallery}.{contract}"
    return re.sub(r"[^a-zA-Z0-9._-]", "-", raw).strip("-._")


class VectorIndex(Protocol):
    """Named collections of (face id, person id, vector); similarity is cosine, 1 - cosine distance.

    A missing collection is an empty one. `upsert` replaces a face's vector and person; `delete` ignores unknown
    ids; `query` returns, per query vector, at most `k` hits (fewer when the collection holds fewer), best first;
    a vector whose dimension differs from the collection's is refused."""

    def upsert(self, name: str, ids: Sequence[str], vectors: FloatArray, person_ids: Sequence[str]) -> None: ...

    def delete(self, name: str, ids: Sequence[str]) -> None: ...

    def query(self, name: str, vectors: FloatArray, k: int) -> list[list[Hit]]: ...

    def ids(self, name: str) -> set[str]: ...

    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, FloatArray]:
        """The stored vectors (as given to `upsert`) of those of `ids` the collection holds."""
        ...

    def count(self, name: str) -> int: ...

    def drop(self, name: str) -> None:
        """Remove the collection; nothing happens when it does not exist."""
        ...


def open_client(
    chroma_host: str | None, chroma_port: int, data_dir: Path, token: SecretStr | str | None = None
) -> ClientAPI:
    """An HTTP client when a host is configured, else the embedded on-disk client.

    `token` (FACEREG_CHROMA_TOKEN) goes with every HTTP request as `Authorization: Bearer <token>`: the
    Chroma 1.x server has no authentication of its own, docker-compose puts it behind a proxy that checks it.
    """
    settings = ChromaSettings(anonymized_telemetry=False)
    value = token.get_secret_value() if isinstance(token, SecretStr) else token
    headers = {"Authorization": f"Bearer {value}"} if value else None
    try:
        if chroma_host:
            return chromadb.HttpClient(host=chroma_host, port=chroma_port, headers=headers, settings=settings)
        path = data_dir / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=settings)
    except Exception as exc:  # chromadb raises plain Exception/ValueError subclasses for connection errors
        where = f"{chroma_host}:{chroma_port}" if chroma_host else str(data_dir / "chroma")
        raise StorageUnavailable(f"ChromaDB at {where} cannot be opened ({exc})") from exc


# Embedded Chroma (1.5) in several processes: a process's HNSW graph takes in the other processes'
# adds and deletes only when it writes itself (measured). A delete of an id that never exists is
# such a write (~5 ms), so an embedded index makes one before each search.
SYNC_ID = "__facereg_sync__"


P = ParamSpec("P")
R = TypeVar("R")


def _transient(
    method: Callable[Concatenate[ChromaIndex, P], R],
) -> Callable[Concatenate[ChromaIndex, P], R]:
    """Chroma's internal errors as StorageUnavailable, which tasks retry with backoff. Measured: a worker of an
    embedded Chroma killed while it wrote leaves the next reader "Error creating hnsw segment reader: Nothing found
    on disk" for a moment (tests/integration/test_workers.py kills one mid-run)."""

    @functools.wraps(method)
    def guarded(self: ChromaIndex, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except chromadb.errors.InternalError as exc:
            raise StorageUnavailable(f"ChromaDB failed ({exc}); the task is retried") from exc

    return guarded


class ChromaIndex:
    """The index in ChromaDB (HNSW, approximate): an HTTP server, or embedded on disk under the data dir."""

    def __init__(self, client: ClientAPI, embedded: bool = False) -> None:
        self.client = client
        self.embedded = embedded

    def _collection(self, name: str) -> Any:
        # No embedding function: vectors are always passed explicitly, nothing is ever downloaded.
        return self.client.get_or_create_collection(
            name, embedding_function=None, configuration=cast(Any, {"hnsw": dict(HNSW)})
        )

    @_transient
    def upsert(self, name: str, ids: Sequence[str], vectors: FloatArray, person_ids: Sequence[str]) -> None:
        col = self._collection(name)
        for start in range(0, len(ids), MAX_BATCH):
            end = start + MAX_BATCH
            col.upsert(
                ids=list(ids[start:end]),
                embeddings=np.asarray(vectors[start:end], dtype=np.float32),
                metadatas=[{"person_id": p} for p in person_ids[start:end]],
            )

    @_transient
    def delete(self, name: str, ids: Sequence[str]) -> None:
        if ids:
            col = self._collection(name)
            for start in range(0, len(ids), MAX_BATCH):
                col.delete(ids=list(ids[start : start + MAX_BATCH]))

    @_transient
    def query(self, name: str, vectors: FloatArray, k: int) -> list[list[Hit]]:
        col = self._collection(name)
        if self.embedded:
            col.delete(ids=[SYNC_ID])
        total = col.count()
        if total == 0 or len(vectors) == 0:
            return [[] for _ in range(len(vectors))]
        res = col.query(
            query_embeddings=np.asarray(vectors, dtype=np.float32),
            n_results=min(k, total),
            include=["metadatas", "distances"],
        )
        # A hit without metadata is a face deleted by another process that this graph still holds
        # (see SYNC_ID): never a result.
        return [
            [
                Hit(face_id, str(meta["person_id"]), 1.0 - float(dist))
                for face_id, meta, dist in zip(ids, metas, dists, strict=True)
                if meta is not None
            ]
            for ids, metas, dists in zip(res["ids"], res["metadatas"], res["distances"], strict=True)
        ]

    @_transient
    def ids(self, name: str) -> set[str]:
        col = self._collection(name)
        out: set[str] = set()
        offset = 0
        while True:
            batch = col.get(limit=MAX_BATCH, offset=offset, include=[])["ids"]
            out.update(batch)
            if len(batch) < MAX_BATCH:
                return out
            offset += MAX_BATCH

    @_transient
    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, FloatArray]:
        if not ids:
            return {}
        got = self._collection(name).get(ids=list(ids), include=["embeddings"])
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], got["embeddings"], strict=True)}

    @_transient
    def count(self, name: str) -> int:
        return int(self._collection(name).count())

    def drop(self, name: str) -> None:
        try:
            self.client.delete_collection(name)
        except Exception:
            return


@dataclass(slots=True)
class _Collection:
    """A MemoryIndex collection: vectors as given and their persons, and the matrix of unit rows searched."""

    vectors: dict[str, FloatArray] = field(default_factory=dict)
    persons: dict[str, str] = field(default_factory=dict)
    dim: int | None = None  # set by the first vector, as Chroma does: kept when the collection empties
    cache: tuple[list[str], FloatArray] | None = None

    def put(self, ids: Sequence[str], vectors: FloatArray, person_ids: Sequence[str]) -> None:
        self.check_dim(vectors)
        for face_id, vector, person_id in zip(ids, vectors, person_ids, strict=True):
            self.vectors[face_id] = vector.copy()
            self.persons[face_id] = person_id
        self.dim, self.cache = vectors.shape[1], None

    def remove(self, ids: Sequence[str]) -> None:
        for face_id in ids:
            if self.vectors.pop(face_id, None) is not None:
                del self.persons[face_id]
                self.cache = None

    def matrix(self) -> tuple[list[str], FloatArray]:
        """The ids and their unit vectors as rows (rebuilt after a change)."""
        if self.cache is None:
            ids = list(self.vectors)
            self.cache = (ids, l2_normalise(np.stack([self.vectors[i] for i in ids])))
        return self.cache

    def check_dim(self, vectors: FloatArray) -> None:
        if vectors.ndim != 2 or (self.dim is not None and vectors.shape[1] != self.dim):
            raise ValueError(f"the collection holds vectors of dimension {self.dim}, got shape {vectors.shape}")


class MemoryIndex:
    """An exact cosine index in this process's memory (a matrix product per search): the unit tests' index."""

    def __init__(self) -> None:
        self._collections: dict[str, _Collection] = {}

    def _collection(self, name: str) -> _Collection:
        return self._collections.setdefault(name, _Collection())

    def upsert(self, name: str, ids: Sequence[str], vectors: FloatArray, person_ids: Sequence[str]) -> None:
        if len(ids):
            self._collection(name).put(ids, np.asarray(vectors, dtype=np.float32), person_ids)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        self._collection(name).remove(ids)

    def query(self, name: str, vectors: FloatArray, k: int) -> list[list[Hit]]:
        col = self._collection(name)
        queries = np.asarray(vectors, dtype=np.float32)
        if not col.vectors or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        col.check_dim(queries)
        ids, matrix = col.matrix()
        n = min(k, len(ids))
        out = []
        for row in l2_normalise(queries) @ matrix.T:
            best = np.argpartition(-row, n - 1)[:n]
            best = best[np.argsort(-row[best], kind="stable")]
            out.append([Hit(ids[j], col.persons[ids[j]], float(row[j])) for j in best])
        return out

    def ids(self, name: str) -> set[str]:
        return set(self._collection(name).vectors)

    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, FloatArray]:
        held = self._collection(name).vectors
        return {i: held[i].copy() for i in ids if i in held}

    def count(self, name: str) -> int:
        return len(self._collection(name).vectors)

    def drop(self, name: str) -> None:
        self._collections.pop(name, None)
