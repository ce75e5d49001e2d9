"""Which files a task or a bulk run may read: only regular files under the allowed input roots, checked
after symlinks are resolved, with a size cap applied before a byte is read."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from model.errors import FaceregError, ImageTooLarge, InvalidImage

ROOTS_SETTING = "FACEREG_INPUT_ROOTS"


class InputRefused(FaceregError):
    """A path that may not be read: outside the allowed input roots, or not a regular file."""


class OutsideInputRoots(InputRefused):
    """The path (after resolving symlinks) lies outside every allowed input root."""


def printable(name: str | bytes | os.PathLike[str]) -> str:
    """Text that is always valid UTF-8: bytes of a file name that are not UTF-8 become `\\xNN` escapes."""
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    return raw.decode("utf-8", "backslashreplace")


def _roots_text(roots: Sequence[Path]) -> str:
    return ", ".join(printable(r) for r in roots) or "none"


def within(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def resolve_input(path: str | os.PathLike[str], roots: Sequence[Path]) -> Path:
    """The real path of an existing input under one of `roots` (resolved paths), else a typed refusal."""
    given = Path(path)
    try:
        real = given.resolve(strict=True)
    except FileNotFoundError:
        raise InvalidImage(f"{printable(given)}: no such file") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a permission error on a parent
        raise InputRefused(f"{printable(given)}: cannot be resolved ({exc})") from None
    if not within(real, roots):
        raise OutsideInputRoots(
            f"{printable(given)} resolves to {printable(real)}, outside the allowed input roots "
            f"({_roots_text(roots)}); add its folder to {ROOTS_SETTING}"
        )
    return real


def read_input(path: str | os.PathLike[str], roots: Sequence[Path], max_bytes: int) -> bytes:
    """The bytes of a regular file under `roots`, refusing FIFOs, devices and files over `max_bytes`.

    The opened descriptor is checked again (through /proc/self/fd), so a symlink swapped in between
    the check and the open cannot lead outside the roots."""
    real = resolve_input(path, roots)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputRefused(f"{printable(path)}: cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputRefused(f"{printable(path)}: not a regular file")
        opened = Path(os.readlink(f"/proc/self/fd/{fd}")) if Path("/proc/self/fd").is_dir() else real
        if not within(opened, roots):
            raise OutsideInputRoots(f"{printable(path)}: changed to point outside the allowed input roots")
        if info.st_size > max_bytes:
            raise ImageTooLarge(f"{printable(path)}: {info.st_size} bytes is over the limit of {max_bytes} bytes")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{printable(path)}: grew over the limit of {max_bytes} bytes while being read")
    return data
