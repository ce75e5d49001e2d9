"""The vector projection of the faces: one cosine collection per gallery + contract.

`VectorIndex` is what the services use; `ChromaIndex` (HNSW in ChromaDB) is the real one, `MemoryIndex` an exact
in-memory one for the fast unit tests. tests/integration/test_vector_index_contract.py runs the same checks on both.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
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


@dataclass(frozen=True, slots=True)
class HnswParams:
    """A collection's HNSW graph: `max_neighbors` (M) and `ef_construction` are fixed when it is built,
    `ef_search` is the search breadth. Chosen by measurement (docs/scaling.md, `benchmark.py index`); a
    gallery's collection takes them when it is created or rebuilt (`reindex.py`)."""

    max_neighbors: int = 32
    ef_construction: int = 200
    ef_search: int = 200

    def configuration(self) -> dict[str, Any]:
        return {"hnsw": {"space": "cosine", **asdict(self)}}

    @classmethod
    def of(cls, collection: Any) -> HnswParams | None:
        """The parameters a Chroma collection was built with (None: not a cosine HNSW collection)."""
        hnsw = (collection.configuration or {}).get("hnsw") or {}
        if hnsw.get("space") != "cosine":
            return None
        return cls(**{f: int(hnsw[f]) for f in ("max_neighbors", "ef_construction", "ef_search")})


@dataclass(frozen=True, slots=True)
class Hit:
    face_id: str
    person_id: str
    similarity: float


def collection_name(gallery: str, contract: str, suffix: str = "") -> str:
    """A valid Chroma name (3-512 chars of [a-zA-Z0-9._-], alphanumeric ends) for gallery + contract
    (+ a suffix telling a rebuilt collection from the one it replaces)."""
    raw = f"{gallery}.{contract}{'.' + suffix if suffix else ''}"
    return re.sub(r"[^a-zA-Z0-9._-]", "-", raw).strip("-._")


class VectorIndex(Protocol):
    """Named collections of (face id, person id, vector); similarity is cosine, 1 - cosine distance.

    A missing collection is an empty one. `upsert` replaces a face's vector and person; `delete` ignores unknown
    ids; `query` returns, per query vector (a batch is one call), at most `k` hits (fewer when the collection
    holds fewer), best first; a vector whose dimension differs from the collection's is refused."""

    def upsert(self, name: str, ids: Sequence[str], vectors: FloatArray, person_ids: Sequence[str]) -> None: ...

    def delete(self, name: str, ids: Sequence[str]) -> None: ...

    def query(self, name: str, vectors: FloatArray, k: int) -> list[list[Hit]]: ...

    def ids(self, name: str) -> set[str]: ...

    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, FloatArray]:
        """The stored vectors (as given to `upsert`) of those of `ids` the collection holds."""
        ...

    def count(self, name: str) -> int: ...

    def hnsw(self, name: str) -> HnswParams | None:
        """The HNSW parameters the collection was built with; None when it does not exist (or is exact)."""
        ...

    def drop(self, name: str) -> None:
        """Remove the collection; nothing happens when it does not exist."""
        ...


def open_client(
    chroma_host: str | None,
    chroma_port: int,
    data_dir: Path,
    token: SecretStr | str | None = None,
    database: str | None = None,
) -> ClientAPI:
    """An HTTP client when a host is given, else the embedded on-disk client under `data_dir/chroma`.

    `database`: the server's database of this install (created when missing), so installs sharing a Chroma
    server never see each other's collections; None: Chroma's default database. `token` (FACEREG_CHROMA_TOKEN)
    goes with every HTTP request as `Authorization: Bearer <token>`: the Chroma 1.x server has no authentication
    of its own, docker-compose puts it behind a proxy that checks it.
    """
    settings = ChromaSettings(anonymized_telemetry=False)
    value = token.get_secret_value() if isinstance(token, SecretStr) else token
    headers = {"Authorization": f"Bearer {value}"} if value else None
    where = f"{chroma_host}:{chroma_port}" if chroma_host else str(data_dir / "chroma")
    try:
        if chroma_host:
            return _http_client(chroma_host, chroma_port, headers, database)
        path = data_dir / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=settings)
    except Exception as exc:  # chromadb raises plain Exception/ValueError subclasses for connection errors
        hint = (
            "; start the local one with `python scripts/local_services.py start`, or use FACEREG_CHROMA_MODE=embedded "
            "for a single process"
            if chroma_host in ("127.0.0.1", "localhost")
            else ""
        )
        raise StorageUnavailable(f"ChromaDB at {where} cannot be opened ({exc}){hint}") from exc


def _http_client(host: str, port: int, headers: dict[str, str] | None, database: str | None) -> ClientAPI:
    settings = ChromaSettings(anonymized_telemetry=False)
    if database is None:
        return chromadb.HttpClient(host=host, port=port, headers=headers, settings=settings)
    try:
        return chromadb.HttpClient(host=host, port=port, headers=headers, settings=settings, database=database)
    except chromadb.errors.NotFoundError:
        admin = ChromaSettings(
            anonymized_telemetry=False,
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host=host,
            chroma_server_http_port=port,
            chroma_server_headers=headers,
        )
        with suppress(chromadb.errors.ChromaError):  # another process created it first
            chromadb.AdminClient(admin).create_database(database)
        return chromadb.HttpClient(host=host, port=port, headers=headers, settings=settings, database=database)


def database_name(install: str) -> str:
    """The Chroma database of an install (Chroma wants 3 characters at least)."""
    return install if len(install) >= 3 else f"facereg-{install}"


class WriteLog:
    """Where the embedded store's write log stands: the last sequence number of Chroma's SQLite queue,
    read on a connection of its own (~10 us).

    Embedded Chroma (1.5) in several processes: a process's HNSW graph of a collection takes in the other
    processes' adds and deletes only when it writes to that collection itself (measured). So before reading a
    collection's graph (a search, stored vectors), an embedded index whose log moved since that graph last caught
    up makes a write to it: a delete of an id that never exists (~5 ms); a process alone with its store never
    pays it. A log that cannot be read makes every read sync, as before this check existed."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}  # collection -> the log position its graph has caught up to
        self._con: sqlite3.Connection | None = None

    def head(self) -> int | None:
        """The last sequence number written by any process (0: none yet; None: the log cannot be read)."""
        with self._lock:
            try:
                if self._con is None:
                    uri = f"file:{self._path}?mode=ro"
                    self._con = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5.0)
                row = self._con.execute("SELECT max(seq_id) FROM embeddings_queue").fetchone()
            except sqlite3.Error:
                self._con = None
                return None
            return 0 if row is None or row[0] is None else int(row[0])

    def catch_up(self, name: str, sync: Callable[[], None]) -> None:
        """Run `sync` (one write to collection `name`) unless nothing was written since its last catch-up."""
        before = self.head()
        if before is not None and before == self._seen.get(name):
            return
        sync()
        after = self.head()
        # Only our own write between the two reads: the graph holds everything up to `after`. Anything else (or an
        # unreadable log): sync again at the next read.
        if before is not None and after == before + 1:
            self._seen[name] = after
        else:
            self._seen.pop(name, None)


SYNC_ID = "__facereg_sync__"


P = ParamSpec("P")
R = TypeVar("R")


def _transient(
    method: Callable[Concatenate[ChromaIndex, P], R],
) -> Callable[Concatenate[ChromaIndex, P], R]:
    """Chroma's internal errors as StorageUnavailable, which tasks retry with backoff. Measured: a worker of an
    embedded Chroma killed while it wrote leaves the next reader "Error creating hnsw segment reader: Nothing found
    on disk" for a moment (tests/integration/test_workers.py kills one mid-run).

    A collection dropped (and maybe created again) by another process since this one cached it: the call is made
    once more on the collection as it is now."""

    @functools.wraps(method)
    def guarded(self: ChromaIndex, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            try:
                return method(self, *args, **kwargs)
            except chromadb.errors.NotFoundError:
                self.forget()
                return method(self, *args, **kwargs)
        except chromadb.errors.InternalError as exc:
            raise StorageUnavailable(f"ChromaDB failed ({exc}); the task is retried") from exc

    return guarded


class ChromaIndex:
    """The index in ChromaDB (HNSW, approximate): a Chroma server over HTTP, or embedded on disk.

    Collections are opened once and kept (a search costs what Chroma's own query costs); one dropped by another
    process is opened again on the first call that finds it gone. `write_log` (embedded only): see WriteLog."""

    def __init__(self, client: ClientAPI, hnsw: HnswParams | None = None, write_log: WriteLog | None = None) -> None:
        self.client = client
        self.params = hnsw or HnswParams()
        self.write_log = write_log
        self._open: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def embedded(cls, data_dir: Path, hnsw: HnswParams | None = None) -> ChromaIndex:
        """The on-disk store under `data_dir/chroma`, safe to share with other processes."""
        client = open_client(None, 0, data_dir)
        return cls(client, hnsw, WriteLog(data_dir / "chroma" / "chroma.sqlite3"))

    def _collection(self, name: str) -> Any:
        with self._lock:
            col = self._open.get(name)
            if col is None:
                # No embedding function: vectors are always passed explicitly, nothing is ever downloaded.
                config = cast(Any, self.params.configuration())
                col = self.client.get_or_create_collection(name, embedding_function=None, configuration=config)
                self._open[name] = col
            return col

    def _caught_up(self, name: str) -> Any:
        """The collection, its graph holding every other process's writes (embedded; see WriteLog)."""
        col = self._collection(name)
        if self.write_log is not None:
            self.write_log.catch_up(name, lambda: col.delete(ids=[SYNC_ID]))
        return col

    def forget(self, name: str | None = None) -> None:
        """Open this collection (every one when None) afresh at its next use."""
        with self._lock:
            if name is None:
                self._open.clear()
            else:
                self._open.pop(name, None)

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
        if len(vectors) == 0:
            return []
        col = self._caught_up(name)
        res = col.query(
            query_embeddings=np.asarray(vectors, dtype=np.float32), n_results=k, include=["metadatas", "distances"]
        )
        # A hit without metadata is a face deleted by another process that this graph still holds
        # (see WriteLog): never a result.
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
        got = self._caught_up(name).get(ids=list(ids), include=["embeddings"])
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], got["embeddings"], strict=True)}

    @_transient
    def count(self, name: str) -> int:
        return int(self._collection(name).count())

    @_transient
    def hnsw(self, name: str) -> HnswParams | None:
        try:
            return HnswParams.of(self.client.get_collection(name, embedding_function=None))
        except chromadb.errors.NotFoundError:
            return None

    def drop(self, name: str) -> None:
        self.forget(name)
        with suppress(Exception):
            self.client.delete_collection(name)


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

    def hnsw(self, name: str) -> HnswParams | None:
        return None  # exact: no graph

    def drop(self, name: str) -> None:
        self._collections.pop(name, None)
