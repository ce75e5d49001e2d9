"""Chroma's internal errors reach the services as StorageUnavailable, which tasks retry with backoff."""

from __future__ import annotations

from typing import Any, cast

import chromadb.errors
import pytest

from services.errors import StorageUnavailable
from services.storage.vector_index import ChromaIndex

# What a worker read in CI when another worker of the same embedded Chroma was killed while it wrote.
MESSAGE = "Error executing plan: Internal error: Error creating hnsw segment reader: Nothing found on disk"


class _Collection:
    def count(self) -> int:
        raise chromadb.errors.InternalError(MESSAGE)


class _Client:
    def get_or_create_collection(self, *_: object, **__: object) -> _Collection:
        return _Collection()


def test_an_internal_chroma_error_is_storage_unavailable() -> None:
    index = ChromaIndex(cast(Any, _Client()))
    with pytest.raises(StorageUnavailable, match="Nothing found on disk") as raised:
        index.count("gallery.contract")
    assert isinstance(raised.value.__cause__, chromadb.errors.InternalError)


def test_other_errors_pass_through() -> None:
    index = ChromaIndex(cast(Any, _Client()))
    with pytest.raises(AttributeError):
        index.ids("gallery.contract")  # the fake collection has no `get`: not a Chroma error, not retried
