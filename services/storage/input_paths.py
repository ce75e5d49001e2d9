"""Which files a task or a bulk run may read: only regular files under the allowed input roots, checked
after symlinks are resolved, with a size cap applied before a byte is read."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from model.errors import FaceregError, ImageTooLarge, InvalidImage

ROOTS_SETTING = "FACEREG_INPUT_ROOTS"
PROC_FD = Path("/proc/self/fd")


class InputRefused(FaceregError):
    """A path that may not be read: outside the allowed input roots, or not a regular file."""

    code = "input_refused"


class OutsideInputRoots(InputRefused):
    """The path (after resolving symlinks) lies outside every allowed input root."""

    code = "outside_input_roots"


def printable(name: str | bytes | os.PathLike[str]) -> str:
    """Text that is always valid UTF-8: bytes of a file name that are not UTF-8 become `\\xNN` escapes
    (also lone surrogates that no file name can hold, as a JSON message may carry them)."""
    if isinstance(name, bytes):
        raw = name
    else:
        text = os.fspath(name)
        try:
            raw = os.fsencode(text)
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def _roots_text(roots: Sequence[Path]) -> str:
    return ", ".join(printable(r) for r in roots) or "none"


def within(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def resolve_input(path: str | os.PathLike[str], roots: Sequence[Path]) -> Path:
    """The real path of an existing input under one of `roots` (resolved paths), else a typed refusal.

    The containment check comes first, on the path resolved as far as it exists, so a path outside the
    roots is refused alike whether or not it exists (no probing of the host's files)."""
    return _existing(path, roots, "file")[0]


def resolve_folder(path: str | os.PathLike[str], roots: Sequence[Path]) -> Path:
    """The real path of an existing folder under one of `roots`, else a typed refusal."""
    real, info = _existing(path, roots, "folder")
    if not stat.S_ISDIR(info.st_mode):
        raise InputRefused(f"{printable(path)}: not a folder")
    return real


def _existing(path: str | os.PathLike[str], roots: Sequence[Path], kind: str) -> tuple[Path, os.stat_result]:
    given = Path(path)
    try:
        real = Path(os.path.realpath(given))
    except ValueError:  # a NUL byte, a lone surrogate
        raise InvalidImage(f"{printable(given)}: not a valid path") from None
    if not within(real, roots):
        raise OutsideInputRoots(
            f"{printable(given)} resolves to {printable(real)}, outside the allowed input roots "
            f"({_roots_text(roots)}); add its folder to {ROOTS_SETTING}"
        )
    try:
        info = real.lstat()
    except FileNotFoundError:
        raise (InvalidImage if kind == "file" else InputRefused)(f"{printable(given)}: no such {kind}") from None
    except OSError as exc:  # a symlink loop on the way, a permission error on a parent, a name too long
        raise InputRefused(f"{printable(given)}: cannot be resolved ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):  # realpath stops at a symlink only when it loops
        raise InputRefused(f"{printable(given)}: cannot be resolved (a symlink loop)")
    return real, info


def read_input(path: str | os.PathLike[str], roots: Sequence[Path], max_bytes: int) -> bytes:
    """The bytes of a regular file under `roots`, refusing FIFOs, devices, folders and files over `max_bytes`.

    Nothing but a regular file is opened (checked before the open, and on the opened descriptor, which is
    also checked to lie under the roots through /proc/self/fd: a path swapped in between cannot lead out)."""
    real, info = _existing(path, roots, "file")
    _check_file(path, info, max_bytes)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputRefused(f"{printable(path)}: cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        _check_file(path, os.fstat(fd), max_bytes)
        opened = (PROC_FD / str(fd)).readlink() if PROC_FD.is_dir() else real
        if not within(opened, roots):
            raise OutsideInputRoots(f"{printable(path)}: changed to point outside the allowed input roots")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{printable(path)}: grew over the limit of {max_bytes} bytes while being read")
    return data


def _check_file(path: str | os.PathLike[str], info: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise InputRefused(f"{printable(path)}: not a regular file")
    if info.st_size > max_bytes:
        raise ImageTooLarge(f"{printable(path)}: {info.st_size} bytes is over the limit of {max_bytes} bytes")
