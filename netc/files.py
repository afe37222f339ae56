"""Writing what netc produces: atomically, so nothing the user had is ever half-overwritten."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import Diagnostic, InputError


def read_error(e: OSError) -> str:
    """A one-line reason for a file that cannot be read."""
    if isinstance(e, IsADirectoryError):
        return "is a directory"
    if isinstance(e, FileNotFoundError):
        return "no such file"
    if isinstance(e, PermissionError):
        return "permission denied"
    return f"cannot read the file: {e.strerror or e}"


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write a file so that a reader sees the old or the new content, never a part.  An existing file keeps
    its mode (a new one gets the umask's), and a symlink keeps pointing at the file it names, which is the
    one rewritten.  Failures are user errors (a missing folder, a directory, no permission)."""
    shown = str(path)

    def fail(msg: str) -> InputError:
        return InputError([Diagnostic("error", msg, source_name=shown)])

    path = Path(os.path.realpath(path))
    if path.is_dir():
        raise fail("is a directory; give the name of a file to write")
    if not path.parent.is_dir():
        raise fail(f"cannot write: the folder {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise fail(f"cannot write here ({e.strerror or e})") from None
    try:
        if isinstance(data, bytes):
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(data)
        if path.exists():
            mode = path.stat().st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
