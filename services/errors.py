"""Typed errors of the domain services, each with a message a person can act on (and a stable `code`,
see model.errors)."""

from __future__ import annotations

from model.errors import FaceregError


class ServiceError(FaceregError):
    """Base class of the services' own errors; raised itself for a request refused as it stands (an invalid
    name, a state that forbids it for now)."""

    code = "invalid_request"


class NotFound(ServiceError):
    """A person, face, gallery or job that does not exist (or was erased)."""

    code = "not_found"


class Conflict(ServiceError):
    """The request contradicts stored state (an external id taken by another person, say)."""

    code = "conflict"


class DuplicatePhoto(Conflict):
    """The same photo (same bytes) is already enrolled for another person of the gallery."""

    code = "duplicate_photo"


class ContractMismatch(ServiceError):
    """A gallery built with one embedding contract was used with another model."""

    code = "contract_mismatch"


class StorageUnavailable(ServiceError):
    """MongoDB or ChromaDB cannot be reached."""

    code = "storage_unavailable"


class SourceUnavailable(ServiceError):
    """A camera, stream, video file or folder of frames that cannot be opened or delivers no frame."""

    code = "source_unavailable"
