"""The VectorIndex contract, checked on the real index (the Chroma server, embedded Chroma) and on the unit tests'
MemoryIndex alike, so the fake cannot drift from what the services get in production."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from chromadb.errors import ChromaError

from services.config import Settings
from services.context import open_index
from services.storage.vector_index import MAX_BATCH, ChromaIndex, MemoryIndex, VectorIndex
from tests.integration.conftest import isolated_settings

NAME = "gallery.contract"
# What each index raises for a request it refuses: Chroma its own errors (a TypeError for k < 1), MemoryIndex
# ValueError.
REFUSED = (ValueError, TypeError, ChromaError)


@pytest.fixture(params=["server", "embedded", "memory"])
def index(request: pytest.FixtureRequest, infra: Settings, tmp_path: Path) -> VectorIndex:
    if request.param == "server":
        return open_index(isolated_settings(infra, tmp_path))  # this test's own database on the session's server
    if request.param == "embedded":
        return ChromaIndex.embedded(tmp_path)
    return MemoryIndex()


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def filled(index: VectorIndex, n: int = 30, dim: int = 16, seed: int = 0) -> np.ndarray:
    """`n` random unit vectors stored as faces f0.. of persons p0.. (two faces each)."""
    vectors = unit(np.random.default_rng(seed).normal(size=(n, dim)))
    index.upsert(NAME, [f"f{i}" for i in range(n)], vectors, [f"p{i // 2}" for i in range(n)])
    return vectors


def test_a_missing_collection_is_empty(index: VectorIndex) -> None:
    assert index.count(NAME) == 0 and index.ids(NAME) == set()
    assert index.query(NAME, np.ones((2, 8), dtype=np.float32), 3) == [[], []]
    assert index.vectors(NAME, ["nope"]) == {}
    index.delete(NAME, ["nope"])
    index.drop("never.created")


def test_query_is_cosine_best_first_and_k_is_capped_by_the_count(index: VectorIndex) -> None:
    vectors = filled(index)
    queries = unit(np.random.default_rng(1).normal(size=(3, 16)))
    results = index.query(NAME, queries, 5)
    assert len(results) == 3
    for query, hits in zip(queries, results, strict=True):
        sims = vectors @ query
        best = np.argsort(-sims)[:5]
        assert [h.face_id for h in hits] == [f"f{i}" for i in best]
        assert [h.person_id for h in hits] == [f"p{i // 2}" for i in best]
        assert [h.similarity for h in hits] == pytest.approx(sims[best].tolist(), abs=1e-5)
    assert len(index.query(NAME, queries[:1], 100)[0]) == 30
    assert index.query(NAME, np.zeros((0, 16), dtype=np.float32), 5) == []


def test_similarity_ignores_the_length_of_the_vectors(index: VectorIndex) -> None:
    index.upsert(NAME, ["a", "b"], np.array([[3, 4, 0, 0], [0, 0, 2, 0]], dtype=np.float32), ["p", "q"])
    hits = index.query(NAME, np.array([[10, 0, 0, 0]], dtype=np.float32), 2)[0]
    assert [(h.face_id, h.person_id) for h in hits] == [("a", "p"), ("b", "q")]
    assert [h.similarity for h in hits] == pytest.approx([0.6, 0.0], abs=1e-5)
    # What was stored is given back as it was, not normalised.
    assert index.vectors(NAME, ["a", "missing"]).keys() == {"a"}
    assert index.vectors(NAME, ["a"])["a"].tolist() == [3, 4, 0, 0]


def test_upsert_replaces_the_vector_and_the_person(index: VectorIndex) -> None:
    vectors = filled(index)
    index.upsert(NAME, ["f0"], -vectors[:1], ["someone-else"])
    assert index.count(NAME) == 30
    best = index.query(NAME, -vectors[:1], 1)[0][0]
    assert (best.face_id, best.person_id) == ("f0", "someone-else") and best.similarity == pytest.approx(1.0, abs=1e-5)
    assert "f0" not in [h.face_id for h in index.query(NAME, vectors[:1], 3)[0]]


def test_delete_removes_faces_and_ignores_unknown_ids(index: VectorIndex) -> None:
    vectors = filled(index)
    index.delete(NAME, ["f0", "f1", "unknown"])
    index.delete(NAME, [])
    assert index.count(NAME) == 28 and index.ids(NAME) == {f"f{i}" for i in range(2, 30)}
    assert {h.face_id for h in index.query(NAME, vectors[:2], 28)[0]}.isdisjoint({"f0", "f1"})
    assert index.vectors(NAME, ["f0", "f2"]).keys() == {"f2"}


def test_collections_are_separate_and_drop_removes_one(index: VectorIndex) -> None:
    vectors = filled(index)
    index.upsert("other.collection", ["x"], vectors[:1], ["px"])
    assert index.count("other.collection") == 1 and index.count(NAME) == 30
    assert [h.face_id for h in index.query("other.collection", vectors[:1], 5)[0]] == ["x"]
    index.drop(NAME)
    assert index.count(NAME) == 0 and index.ids(NAME) == set() and index.count("other.collection") == 1


def test_a_vector_of_another_dimension_or_k_below_one_is_refused(index: VectorIndex) -> None:
    filled(index, dim=16)
    with pytest.raises(REFUSED):
        index.upsert(NAME, ["wide"], np.ones((1, 17), dtype=np.float32), ["p"])
    with pytest.raises(REFUSED):
        index.query(NAME, np.ones((1, 17), dtype=np.float32), 1)
    with pytest.raises(REFUSED):
        index.query(NAME, np.ones((1, 16), dtype=np.float32), 0)
    index.delete(NAME, list(index.ids(NAME)))
    with pytest.raises(REFUSED):  # an emptied collection keeps its dimension
        index.upsert(NAME, ["wide"], np.ones((1, 17), dtype=np.float32), ["p"])


def test_more_faces_than_one_batch(index: VectorIndex) -> None:
    n = MAX_BATCH + 7
    vectors = filled(index, n=n, dim=4)
    assert index.count(NAME) == n and len(index.ids(NAME)) == n
    index.delete(NAME, [f"f{i}" for i in range(n - 10)])
    assert index.ids(NAME) == {f"f{i}" for i in range(n - 10, n)}
    assert index.query(NAME, vectors[-1:], 1)[0][0].face_id == f"f{n - 1}"
