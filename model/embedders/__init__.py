"""Embedders: aligned faces -> L2-normalised float32 vectors, behind one protocol."""

from model.embedders.base import Embedder
from model.embedders.factory import create_embedder, resolve_device

__all__ = ["Embedder", "create_embedder", "resolve_device"]
