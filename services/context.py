"""Everything a service call needs, opened once: settings, MongoDB, Chroma, stored images, the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.config import Settings
from services.storage.db import Collections, collections, connect, ensure_indexes
from services.storage.image_store import ImageStore
from services.storage.private_files import secure_process
from services.storage.vector_index import ChromaIndex, HnswParams, VectorIndex, database_name, open_client

if TYPE_CHECKING:  # the model (torch) loads only where a face is embedded, never in the dashboard
    from model.pipeline import FacePipeline


@dataclass
class ServiceContext:
    settings: Settings
    db: Collections
    index: VectorIndex
    images: ImageStore
    _pipeline: FacePipeline | None = field(default=None, repr=False)

    @property
    def pipeline(self) -> FacePipeline:
        """The face pipeline, loaded on first use (the model load is the slow part)."""
        if self._pipeline is None:
            from services.engine import build_pipeline  # torch: only for processes that embed

            self._pipeline = build_pipeline(self.settings)
        return self._pipeline

    def use_pipeline(self, pipeline: FacePipeline) -> None:
        self._pipeline = pipeline


def open_context(settings: Settings, pipeline: FacePipeline | None = None) -> ServiceContext:
    """Open the services; first this process's files are made private (umask 077, the data folder 0700 and
    tightened once per process: see services.storage.private_files)."""
    secure_process(settings.data_dir)
    database = connect(settings.mongo_uri)
    ensure_indexes(database)
    images = ImageStore(settings.data_dir / "images")
    return ServiceContext(settings, collections(database), open_index(settings), images, pipeline)


def hnsw_params(settings: Settings) -> HnswParams:
    return HnswParams(settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_ef_search)


def open_index(settings: Settings) -> ChromaIndex:
    """The install's Chroma: its database on the Chroma server, or the embedded store under the data folder."""
    if settings.chroma_mode == "embedded":
        return ChromaIndex.embedded(settings.data_dir, hnsw_params(settings))
    database = database_name(settings.install)
    client = open_client(settings.chroma_host, settings.chroma_port, settings.data_dir, settings.chroma_token, database)
    return ChromaIndex(client, hnsw_params(settings))
