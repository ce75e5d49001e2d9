"""Typed errors of the domain services, each with a message a person can act on."""

from __future__ import annotations

from model.errors import FaceregError


class ServiceError(FaceregError):
    """Base class of the services' own errors."""


class NotFound(ServiceError):
    """A person, face, gallery or job that does not exist (or was erased)."""


class Conflict(ServiceError):
    """The request contradicts stored state (an external id taken by another person, say)."""


class ContractMismatch(ServiceError):
    """A gallery built with one embedding contract was used with another model."""


class StorageUnavailable(ServiceError):
    """MongoDB or ChromaDB cannot be reached."""
