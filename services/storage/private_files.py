"""Data at rest is private: the data folder is 0700, every file facereg writes 0600, every folder 0700.

Faces, names and vectors are personal data. Two mechanisms keep them to their owner, whatever the umask
of the user who starts facereg:

- `private_umask()`: the process's umask gains 077, so every file and folder it creates from then on (and
  those of the children it spawns: SecantusDB, Redis, Chroma, workers, the dashboard) has no group or
  other permission. It only ever adds bits: a stricter umask is kept.
- `secure_data_dir(dir)`: creates the data folder 0700 and takes group/other bits away from everything
  already under it (an install from before, a file copied in by hand), without following symlinks.

Entry points call `secure_process(data_dir)`, which does both, walking each data folder once per process
(~15,000 entries take tens of milliseconds; later calls only set the umask, a system call).
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

from services.config import get_settings

log = logging.getLogger(__name__)

PRIVATE = 0o077  # the group and other permission bits
FILE_MODE = 0o600
DIR_MODE = 0o700

_lock = threading.Lock()
_secured: set[Path] = set()


def private_umask() -> int:
    """Add 077 to this process's umask (idempotent, never loosens it); the previous umask."""
    with _lock:
        # os.umask can only be read by setting it: set the stricter value straight away, so the umask is
        # never looser than 077 even for a moment.
        old = os.umask(PRIVATE)
        if old | PRIVATE != PRIVATE:
            os.umask(old | PRIVATE)
        return old


def private_mkdir(path: Path) -> None:
    """Create `path` and its missing parents, each 0700 (umask or not)."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # created meanwhile by another process
        folder.chmod(DIR_MODE)  # mkdir's mode passes through the umask


def write_private(path: Path, data: bytes, durable: bool = False) -> None:
    """Write `path` atomically, 0600, its missing folders 0700: a unique temporary file beside it (created
    exclusively, so never through a leftover file or a planted link) renamed over it. `durable` also
    fsyncs the file and its folder (for small files that must survive a power cut, such as the users file)."""
    private_mkdir(path.parent)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def open_private_log(path: Path) -> BinaryIO:
    """`path` opened for appending, created 0600 (or made 0600), its missing folders 0700."""
    private_mkdir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return os.fdopen(fd, "ab")


def secure_data_dir(data_dir: Path) -> int:
    """Create `data_dir` 0700 and remove group/other permissions from everything under it (symlinks are
    neither followed nor changed); how many entries were changed. One INFO line when there were any."""
    root = data_dir.expanduser()
    private_mkdir(root)
    root = root.resolve()
    files = folders = 0
    denied: list[str] = []
    if _tighten(root, denied):
        folders += 1
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        st_mode = entry.stat(follow_symlinks=False).st_mode  # one lstat; links are skipped
                    except FileNotFoundError:
                        continue  # removed meanwhile
                    is_dir = stat.S_ISDIR(st_mode)
                    if is_dir:
                        stack.append(entry.path)
                    elif stat.S_ISLNK(st_mode):
                        continue
                    if st_mode & PRIVATE and _chmod(entry.path, st_mode, denied):
                        folders += is_dir
                        files += not is_dir
        except FileNotFoundError:
            continue
        except PermissionError:
            denied.append(folder)
    if files or folders:
        log.info(
            "data at rest: tightened %d file(s) and %d folder(s) under %s to owner-only access (0600/0700)",
            files,
            folders,
            root,
        )
    if denied:
        log.warning(
            "data at rest: could not make %d entry(ies) under %s private (not ours?), e.g. %s",
            len(denied),
            root,
            denied[0],
        )
    return files + folders


def _tighten(path: Path, denied: list[str]) -> bool:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    return bool(mode & PRIVATE) and _chmod(str(path), mode, denied)


def _chmod(path: str, mode: int, denied: list[str]) -> bool:
    try:
        os.chmod(path, stat.S_IMODE(mode) & ~PRIVATE)  # noqa: PTH101 - a str from os.scandir, no Path needed
    except FileNotFoundError:
        return False
    except PermissionError:
        denied.append(path)
        return False
    return True


def secure_process(data_dir: Path | None = None) -> int:
    """What every facereg process does first: the private umask, and its data folder (default: the
    settings' FACEREG_DATA_DIR) created 0700 and tightened, once per process; how many entries changed."""
    private_umask()
    if data_dir is None:
        data_dir = get_settings().data_dir
    key = data_dir.expanduser().resolve()
    with _lock:
        if key in _secured:
            return 0
        _secured.add(key)
    try:
        return secure_data_dir(key)
    except BaseException:
        with _lock:
            _secured.discard(key)
        raise
