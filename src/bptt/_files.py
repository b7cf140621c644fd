"""Files written and read in a hostile world: regular files only, atomic writes, bounded reads.

- ``atomic_write``: a new file appears whole or not at all, with the old file's permissions.
- ``check_writable``: the up-front check a command runs before any work, so it never fails after.
- ``open_regular`` / ``read_regular``: read only a regular file of bounded size; a FIFO, a device
  or a directory is refused at once, never opened for a blocking or endless read.
- ``format_bytes``: sizes in words (``"74 GiB"``, ``"2.0 MiB"``).
- ``short_repr``: a value read from a file, cut to fit a one-line message.

Errors about the path (what it is, what it holds) are one-line ``ValueError``s that start with
``what``: the flag (``"--out"``) or the function and a colon (``"load:"``). An ``OSError`` while
writing (a full disk, a read-only folder) propagates as itself, after cleaning up.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["atomic_write", "check_writable", "format_bytes", "open_regular", "read_regular", "short_repr"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link that never reaches a file (a loop)"),
)
_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_TEMP_TRIES = 16  # 48 random bits per name: a clash is a sign of something else going on


def format_bytes(n: int) -> str:
    """``n`` bytes in words: ``"512 bytes"``, ``"2.0 MiB"``, ``"74 GiB"`` (binary units)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"format_bytes: expected an int ≥ 0, got {n!r}")
    if n < 1024:
        return "1 byte" if n == 1 else f"{n} bytes"
    value, unit = n / 1024, 0
    while value >= 1023.5 and unit < len(_UNITS) - 1:  # never "1024.0 KiB"
        value, unit = value / 1024, unit + 1
    return f"{value:.1f} {_UNITS[unit]}" if value < 9.95 else f"{value:.0f} {_UNITS[unit]}"


def short_repr(value: object, width: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``width`` characters: a message echoes what a hostile
    file holds (an array's repr spans lines)."""
    text = re.sub(r"\s*\n\s*", " ", repr(value))
    return text if len(text) <= width else text[: width - 3] + "..."


def _kind(mode: int) -> str:
    return next((words for test, words in _KINDS if test(mode)), "a special file")


def _refuse_irregular(st: os.stat_result, what: str, name: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {name} is {_kind(st.st_mode)}, not a regular file")


def _resolve(path: str | os.PathLike[str], what: str) -> str:
    """Where a write to ``path`` lands: its absolute path with every symlink followed."""
    text = os.fspath(path)
    if not text:
        raise ValueError(f"{what} '' is empty; expected a file path")
    return os.path.realpath(text)


def _existing(real: str, what: str, name: str) -> os.stat_result | None:
    """The stat of the resolved target, ``None`` for a new file, or ``ValueError`` if not regular.

    Other ``OSError``s (permission, a name too long) propagate.
    """
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        return None
    _refuse_irregular(st, what, name)
    return st


def _fresh_name(folder: str, base: str, claim: Callable[[str], None]) -> str:
    """Claim an unused hidden name beside the target; ``claim`` must fail if the name exists.

    The name is random, so it never collides with a user's file or a concurrent writer's.
    """
    for _ in range(_TEMP_TRIES):
        name = os.path.join(folder, f".{base[:32]}.{secrets.token_hex(6)}.tmp")
        with contextlib.suppress(FileExistsError):
            claim(name)
            return name
    raise FileExistsError(errno.EEXIST, f"no unused temporary name after {_TEMP_TRIES} tries", folder)


def _open_temp(folder: str, base: str) -> tuple[int, str | None]:
    """A new file for writing in ``folder``: ``(fd, None)`` if it has no name yet, else ``(fd, name)``.

    Linux's ``O_TMPFILE`` makes a file with no name, so a ``kill -9`` mid-write leaves nothing
    behind; elsewhere (or where the filesystem lacks it) it is a uniquely named hidden file.
    The mode is 0o666 less the umask, as for any new file.
    """
    flags = os.O_RDWR | os.O_CLOEXEC
    if hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):
        try:
            return os.open(folder, flags | os.O_TMPFILE, 0o666), None
        except OSError as e:  # the kernel or filesystem has no O_TMPFILE
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    fds: list[int] = []
    name = _fresh_name(folder, base, lambda n: fds.append(os.open(n, flags | os.O_CREAT | os.O_EXCL, 0o666)))
    return fds[0], name


def _name_anonymous(fd: int, name: str) -> None:
    """Give the ``O_TMPFILE`` file open as ``fd`` the new name ``name``.

    Python calls ``link()`` (which would link /proc's magic symlink itself) unless a ``dir_fd``
    is given; with one it calls ``linkat(..., AT_SYMLINK_FOLLOW)``, which links the file the
    symlink stands for. The path is absolute, so the kernel ignores the ``dir_fd`` itself.
    """
    os.link(f"/proc/self/fd/{fd}", name, src_dir_fd=fd, follow_symlinks=True)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None], *, what: str) -> None:
    """Write a file through ``write(f)`` so that a crash leaves the old file or the new one.

    The bytes go to a file beside the target that has no name (Linux ``O_TMPFILE``) or a
    random hidden one, are flushed to disk, and only then get the target's name by a rename.

    Parameters
    ----------
    path : path
        A regular file or a new path. A symlink is written through: its final target (a
        regular file or a new path) is replaced and the link is kept. A directory, device,
        FIFO or socket (at the path or at the end of the links) is refused with ``ValueError``.
    write : callable ``(binary file) -> None``
        Writes the content; it must not close the file.
    what : str
        How error messages start, e.g. ``"save:"``.

    Notes
    -----
    An existing target keeps its permission bits (and, where allowed, its owner); a new file
    gets ``0o666 & ~umask``. Any exception (an ``OSError`` such as a full disk, a
    ``KeyboardInterrupt``) propagates after the temporary file is removed, with the target
    untouched. Only the instant between naming the finished file and the rename can leave a
    hidden ``.*.tmp`` file behind after a ``kill -9``. A target swapped for something else
    between the check and the rename is replaced like a file.
    """
    real = _resolve(path, what)
    st = _existing(real, what, repr(os.fspath(path)))
    folder, base = os.path.split(real)
    fd, tmp = _open_temp(folder, base)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if st is not None:
                with contextlib.suppress(PermissionError):  # only root may give a file away
                    os.fchown(f.fileno(), st.st_uid, st.st_gid)
                os.fchmod(f.fileno(), stat.S_IMODE(st.st_mode))  # after fchown, which clears setuid
            os.fsync(f.fileno())
            if tmp is None:
                tmp = _fresh_name(folder, base, lambda n: _name_anonymous(fd, n))
        os.replace(tmp, real)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def check_writable(path: str | os.PathLike[str], *, what: str) -> None:
    """Refuse, before any work, a path that ``atomic_write`` could not write.

    ``ValueError`` (one line starting with ``what``) for an empty path, a directory or other
    non-regular target, a missing folder, a folder this process cannot write, or a name longer
    than the filesystem allows. What only the write can find out (a full disk) is left to it.
    """
    name = repr(os.fspath(path))
    real = _resolve(path, what)
    folder, base = os.path.split(real)
    if not os.path.isdir(folder):
        state = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise ValueError(f"{what} {name}: the folder {folder!r} {state}")
    limit = os.pathconf(folder, "PC_NAME_MAX")
    if len(os.fsencode(base)) > limit:
        raise ValueError(
            f"{what} {name}: the file name is too long ({len(os.fsencode(base))} bytes; "
            f"this filesystem allows at most {limit})"
        )
    try:
        _existing(real, what, name)
    except OSError as e:
        raise ValueError(f"{what} {name} cannot be written ({_reason(e)})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {name}: the folder {folder!r} is not writable")


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def open_regular(path: str | os.PathLike[str], *, limit: int, what: str) -> BinaryIO:
    """Open a regular file of at most ``limit`` bytes for reading, or raise ``ValueError``.

    The path is checked before it is opened, so a device is never opened (which can have side
    effects); it is opened non-blocking and checked again, so a FIFO swapped in between never
    blocks. A missing file, a directory, a device, a FIFO, an unreadable file or one over
    ``limit`` is refused with a one-line ``ValueError`` starting with ``what``.
    """
    name = repr(os.fspath(path))
    try:
        _refuse_irregular(os.stat(path), what, name)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ValueError(f"{what} {name} does not exist") from None
    except OSError as e:
        raise ValueError(f"{what} {name} cannot be read ({_reason(e)})") from None
    try:
        st = os.fstat(fd)
        _refuse_irregular(st, what, name)
        if st.st_size > limit:
            raise ValueError(
                f"{what} {name} is {format_bytes(st.st_size)}; expected at most {format_bytes(limit)}"
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], *, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; see ``open_regular`` for refusals."""
    with open_regular(path, limit=limit, what=what) as f:
        try:
            data = f.read(limit + 1)  # a file that grows while read, or a /proc file sized 0
        except OSError as e:
            raise ValueError(f"{what} {os.fspath(path)!r} cannot be read ({_reason(e)})") from None
    if len(data) > limit:
        raise ValueError(f"{what} {os.fspath(path)!r} holds more than {format_bytes(limit)}")
    return data
