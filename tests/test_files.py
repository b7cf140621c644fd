"""``bptt._files``: writes land whole or not at all, on regular files only; reads never hang or balloon."""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

import bptt
from bptt._files import atomic_write, check_writable, format_bytes, read_regular, short_repr

KIB, MIB, GIB = 2**10, 2**20, 2**30


def _folder(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def _writer(data: bytes) -> Callable[[BinaryIO], None]:
    def write(f: BinaryIO) -> None:
        f.write(data)

    return write


@pytest.fixture(params=["O_TMPFILE", "named"])
def temp_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with Linux's nameless temporary files, and again with the named fallback."""
    if request.param == "named":
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    else:
        assert hasattr(os, "O_TMPFILE"), "this test machine is Linux"
    return str(request.param)


@pytest.fixture
def special(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Make a non-regular file by kind: a FIFO, a socket, a directory, or /dev/null itself."""
    short = Path(tempfile.mkdtemp(dir="/tmp"))  # a socket's path must fit in 108 bytes
    sockets: list[socket.socket] = []

    def make(kind: str) -> Path:
        if kind == "device":
            return Path("/dev/null")
        if kind == "fifo":
            os.mkfifo(tmp_path / "fifo")
            return tmp_path / "fifo"
        if kind == "socket":
            s = socket.socket(socket.AF_UNIX)
            s.bind(str(short / "sock"))
            sockets.append(s)
            return short / "sock"
        (tmp_path / "folder").mkdir()
        return tmp_path / "folder"

    yield make
    for s in sockets:
        s.close()
    (short / "sock").unlink(missing_ok=True)
    short.rmdir()


SPECIAL_WORDS = {
    "device": "is a character device, not a regular file",
    "fifo": "is a FIFO (named pipe), not a regular file",
    "socket": "is a socket, not a regular file",
    "directory": "is a directory, not a regular file",
}


# --- format_bytes and short_repr ------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1023 bytes"),
        (1024, "1.0 KiB"),
        (2 * MIB, "2.0 MiB"),
        (MIB - 1, "1.0 MiB"),
        (int(3.1 * GIB), "3.1 GiB"),
        (74 * GIB, "74 GiB"),
        (int(9.96 * GIB), "10 GiB"),
        (2**70, "1024 EiB"),
    ],
)
def test_format_bytes(n: int, words: str) -> None:
    """Binary units, one decimal below 10, none above, and never '1024 KiB'."""
    assert format_bytes(n) == words


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_format_bytes_refuses_non_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="expected an int ≥ 0"):
        format_bytes(bad)  # type: ignore[arg-type]


def test_short_repr_cuts_long_values() -> None:
    assert short_repr("abc") == "'abc'"
    assert short_repr(list(range(1000))) == repr(list(range(1000)))[:57] + "..."
    assert short_repr(np.zeros((2, 2), np.int64)) == "array([[0, 0], [0, 0]])"


# --- atomic_write: what it writes, and where ---------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_new_file_gets_the_umask_mode(tmp_path: Path, temp_kind: str, mask: int) -> None:
    """A new file holds the bytes, has mode 0o666 & ~umask, and nothing else is left in the folder."""
    old = os.umask(mask)
    try:
        atomic_write(tmp_path / "f.bin", _writer(b"hello"), what="test:")
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").read_bytes() == b"hello"
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o666 & ~mask
    assert _folder(tmp_path) == ["f.bin"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755, 0o444])
def test_existing_file_keeps_its_mode(tmp_path: Path, temp_kind: str, mode: int) -> None:
    """Replacing a file keeps its permission bits: a 0600 file stays 0600."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    path.chmod(mode)
    atomic_write(path, _writer(b"new"), what="test:")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert _folder(tmp_path) == ["f.bin"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_existing_file_keeps_its_owner(tmp_path: Path) -> None:
    """Root replacing a user's file leaves it that user's (and keeps a setgid bit)."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    os.chown(path, 1234, 2345)
    path.chmod(0o2640)
    atomic_write(path, _writer(b"new"), what="test:")
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 2345, 0o2640)


@pytest.mark.parametrize("kind", sorted(SPECIAL_WORDS))
def test_refuses_what_is_not_a_regular_file(
    tmp_path: Path, special: Callable[[str], Path], kind: str
) -> None:
    """A device, FIFO, socket or directory is refused by name and left as it was; nothing is written."""
    path = special(kind)
    before = path.lstat()
    names = _folder(tmp_path)
    with pytest.raises(ValueError) as info:
        atomic_write(path, _writer(b"x"), what="test:")
    assert str(info.value) == f"test: '{path}' {SPECIAL_WORDS[kind]}"
    after = path.lstat()
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert _folder(tmp_path) == names


def test_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    """A link to /dev/null is refused by the link's name; the link stays a link."""
    (tmp_path / "link").symlink_to("/dev/null")
    with pytest.raises(ValueError, match=r"'.*link' is a character device"):
        atomic_write(tmp_path / "link", _writer(b"x"), what="test:")
    assert (tmp_path / "link").is_symlink() and stat.S_ISCHR(Path("/dev/null").stat().st_mode)


@pytest.mark.parametrize("exists", [True, False], ids=["to-a-file", "dangling"])
def test_symlink_is_written_through(tmp_path: Path, temp_kind: str, exists: bool) -> None:
    """Writing to a link replaces (or creates) its final target and keeps the link chain."""
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "f.bin"
    if exists:
        target.write_bytes(b"old")
        target.chmod(0o600)
    (tmp_path / "hop").symlink_to(target)
    (tmp_path / "link").symlink_to(tmp_path / "hop")
    atomic_write(tmp_path / "link", _writer(b"new"), what="test:")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "hop").is_symlink()
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == (0o600 if exists else 0o666 & ~_umask())
    assert _folder(tmp_path / "real") == ["f.bin"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(ValueError, match="loop"):
        atomic_write(tmp_path / "a", _writer(b"x"), what="test:")
    assert _folder(tmp_path) == ["a", "b"]


def test_empty_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"^test: '' is empty; expected a file path$"):
        atomic_write("", _writer(b"x"), what="test:")
    assert _folder(tmp_path) == []


def test_users_own_lookalike_files_survive(tmp_path: Path, temp_kind: str) -> None:
    """Temporary names are random: files named like a fixed temporary name are never touched."""
    lookalikes = ["m.npz.tmp", ".m.npz.tmp", "m.tmp.npz", "m.npz.tmp.png", ".m.npz.0.tmp"]
    for name in lookalikes:
        (tmp_path / name).write_bytes(name.encode())
    for content in (b"one", b"two"):
        atomic_write(tmp_path / "m.npz", _writer(content), what="test:")
    assert _folder(tmp_path) == sorted([*lookalikes, "m.npz"])
    assert all((tmp_path / name).read_bytes() == name.encode() for name in lookalikes)


def test_concurrent_writers_never_mix(tmp_path: Path, temp_kind: str) -> None:
    """Four threads writing one path 25 times each: the file is always one writer's whole content."""
    path = tmp_path / "f.bin"
    contents = [bytes([i]) * 200_000 for i in range(4)]

    def worker(data: bytes) -> None:
        for _ in range(25):
            atomic_write(path, _writer(data), what="test:")

    threads = [threading.Thread(target=worker, args=(c,)) for c in contents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_bytes() in contents
    assert _folder(tmp_path) == ["f.bin"]


# --- atomic_write: every way out leaves the old file and no temporary file ----------------------------


def _dies_midway(error: BaseException) -> Callable[[BinaryIO], None]:
    def write(f: BinaryIO) -> None:
        f.write(b"half of a new file")
        raise error

    return write


@pytest.mark.parametrize(
    "error",
    [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt(), RuntimeError("bug")],
    ids=["full-disk", "ctrl-c", "bug"],
)
@pytest.mark.parametrize("exists", [True, False], ids=["replace", "new"])
def test_a_failed_write_changes_nothing(
    tmp_path: Path, temp_kind: str, error: BaseException, exists: bool
) -> None:
    """The writer's exception propagates as itself; the old file is intact; no temporary file is left."""
    path = tmp_path / "f.bin"
    if exists:
        path.write_bytes(b"old")
    with pytest.raises(type(error)) as info:
        atomic_write(path, _dies_midway(error), what="test:")
    assert info.value is error
    assert _folder(tmp_path) == (["f.bin"] if exists else [])
    if exists:
        assert path.read_bytes() == b"old"


def test_a_failed_rename_leaves_no_temporary_file(
    tmp_path: Path, temp_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError at the very last step (the rename) still removes the named temporary file."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def refuse(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="cross-device"):
        atomic_write(path, _writer(b"new"), what="test:")
    assert _folder(tmp_path) == ["f.bin"] and path.read_bytes() == b"old"


def test_an_unwritable_folder_raises_oserror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EACCES creating the file propagates as PermissionError (the CLI reports it), leaving nothing."""
    real_open = os.open

    def no_write(path: str, flags: int, mode: int = 0o777, **kw: object) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", no_write)
    with pytest.raises(PermissionError):
        atomic_write(tmp_path / "f.bin", _writer(b"x"), what="test:")
    assert _folder(tmp_path) == []


def test_a_name_too_long_raises_oserror(tmp_path: Path, temp_kind: str) -> None:
    with pytest.raises(OSError) as info:
        atomic_write(tmp_path / ("x" * 300), _writer(b"x"), what="test:")
    assert info.value.errno == errno.ENAMETOOLONG
    assert _folder(tmp_path) == []


def test_a_long_name_that_fits_gets_a_temporary_name_that_fits(tmp_path: Path, temp_kind: str) -> None:
    """A 250-byte name is legal; the temporary name beside it must be too."""
    atomic_write(tmp_path / ("x" * 250), _writer(b"x"), what="test:")
    assert _folder(tmp_path) == ["x" * 250]


KILL_CHILD = """
import sys
import numpy as np
import bptt
model = bptt.Sequential([bptt.Dense(1024, 1024, rng=0)])  # 8 MiB of weights
print("ready", flush=True)
for i in range(10**6):
    model.params["0.b"][0] = i
    print("saving", i, flush=True)
    bptt.save(model, sys.argv[1])
"""


def test_kill_9_during_saves_leaves_no_temporary_file(tmp_path: Path) -> None:
    """20 SIGKILLs at random points of repeated 8 MiB saves: the model always loads, no file is left.

    The child says when it starts each save; the parent kills it right after a random number of
    those lines, so the kill lands inside a save (or between two), never after a guessed sleep.
    """
    path = tmp_path / "m.npz"
    rng = np.random.default_rng(0)
    for _ in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", KILL_CHILD, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        for _ in range(int(rng.integers(1, 4))):
            assert child.stdout.readline().startswith("saving")
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        leftovers = [name for name in _folder(tmp_path) if name != "m.npz"]
        assert leftovers == []
        if path.exists():
            assert bptt.load(path).params["0.W"].shape == (1024, 1024)


# --- check_writable -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SPECIAL_WORDS))
def test_check_writable_refuses_non_regular_targets(special: Callable[[str], Path], kind: str) -> None:
    path = special(kind)
    with pytest.raises(ValueError) as info:
        check_writable(str(path), what="--out")
    assert str(info.value) == f"--out '{path}' {SPECIAL_WORDS[kind]}"


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: "", "^--out '' is empty; expected a file path$"),
        (lambda d: str(d / "missing" / "m.npz"), r"the folder '.*missing' does not exist$"),
        (lambda d: str(d / "file" / "m.npz"), r"the folder '.*file' is not a folder$"),
        (
            lambda d: str(d / ("x" * 256)),
            r"the file name is too long \(256 bytes; this filesystem allows at most 255\)$",
        ),
        (lambda d: str(d / ("é" * 128)), r"the file name is too long \(256 bytes;"),
    ],
    ids=["empty", "missing-folder", "file-as-folder", "name-too-long", "utf8-name-too-long"],
)
def test_check_writable_refuses_bad_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[Path], str], words: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ValueError, match=words) as info:
        check_writable(make(tmp_path), what="--out")
    assert str(info.value).startswith("--out ") and "\n" not in str(info.value)
    assert _folder(tmp_path) == ["file"]


def test_check_writable_refuses_an_unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.access decides (root may write anywhere but a read-only mount, so the test asks it)."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: p != str(tmp_path) and real_access(p, mode))
    with pytest.raises(ValueError, match=r"^--out '.*m.npz': the folder '.*' is not writable$"):
        check_writable(str(tmp_path / "m.npz"), what="--out")


@pytest.mark.parametrize("exists", [True, False])
def test_check_writable_accepts_files_and_new_paths(tmp_path: Path, exists: bool) -> None:
    if exists:
        (tmp_path / "m.npz").write_bytes(b"old")
    (tmp_path / "link").symlink_to(tmp_path / "m.npz")
    for path in (tmp_path / "m.npz", tmp_path / "link"):
        check_writable(str(path), what="--out")
    assert (tmp_path / "m.npz").exists() == exists


# --- read_regular ---------------------------------------------------------------------------------


def test_read_regular_reads_up_to_the_limit(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * KIB)
    assert read_regular(tmp_path / "f", limit=KIB, what="read:") == b"x" * KIB
    with pytest.raises(ValueError, match=r"^read: '.*f' is 1.0 KiB; expected at most 1023 bytes$"):
        read_regular(tmp_path / "f", limit=KIB - 1, what="read:")


def test_read_regular_names_the_size_in_words(tmp_path: Path) -> None:
    """A sparse 3.1 GiB file is refused by its size, without reading it."""
    with open(tmp_path / "big", "wb") as f:
        f.truncate(int(3.1 * GIB))
    with pytest.raises(ValueError, match=r"is 3\.1 GiB; expected at most 1\.0 GiB$"):
        read_regular(tmp_path / "big", limit=GIB, what="read:")


@pytest.mark.parametrize("kind", sorted(SPECIAL_WORDS))
def test_read_regular_refuses_at_once(special: Callable[[str], Path], kind: str) -> None:
    """A FIFO with no writer, a device, a socket or a directory is refused without being read.

    The read runs in a thread so that a regression fails the test instead of hanging it.
    """
    path = special(kind)
    result: list[BaseException] = []
    reader = threading.Thread(target=_capture, args=(result, path))
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "read_regular blocked"
    assert len(result) == 1 and isinstance(result[0], ValueError)
    assert str(result[0]) == f"read: '{path}' {SPECIAL_WORDS[kind]}"


def _capture(result: list[BaseException], path: Path) -> None:
    try:
        read_regular(path, limit=GIB, what="read:")
    except BaseException as e:
        result.append(e)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_read_regular_refuses_endless_devices(device: str, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(device)
    for path in (device, tmp_path / "link"):
        with pytest.raises(ValueError, match="is a character device, not a regular file"):
            read_regular(path, limit=GIB, what="read:")


def test_a_fifo_swapped_in_after_the_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a FIFO replaces the file between stat and open, the non-blocking open and fstat refuse it."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "plain").write_bytes(b"x")
    regular = os.stat(tmp_path / "plain")
    monkeypatch.setattr(os, "stat", lambda path: regular)
    with pytest.raises(ValueError, match="is a FIFO"):
        read_regular(tmp_path / "fifo", limit=KIB, what="read:")


def test_read_regular_refuses_a_file_longer_than_its_size_says() -> None:
    """A /proc file says it is 0 bytes long; reading stops at the limit all the same."""
    with pytest.raises(ValueError, match=r"^read: '/proc/self/maps' holds more than 16 bytes$"):
        read_regular("/proc/self/maps", limit=16, what="read:")


@pytest.mark.parametrize(
    "error, words",
    [
        (PermissionError(errno.EACCES, "Permission denied"), "cannot be read (permission denied)"),
        (OSError(errno.EIO, "Input/output error"), "cannot be read (input/output error)"),
    ],
)
def test_read_regular_turns_os_errors_into_value_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, words: str
) -> None:
    (tmp_path / "f").write_bytes(b"x")

    def failing_open(*args: object, **kwargs: object) -> int:
        raise error

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(ValueError, match=f"^read: '.*f' {words.replace('(', '.').replace(')', '.')}$"):
        read_regular(tmp_path / "f", limit=KIB, what="read:")


@pytest.mark.parametrize(
    "path, words",
    [
        ("missing", "does not exist"),
        ("file/inside", "cannot be read (not a directory)"),
        ("", "does not exist"),
    ],
)
def test_read_regular_refuses_missing_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str, words: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(ValueError) as info:
        read_regular(path, limit=KIB, what="read:")
    assert str(info.value) == f"read: {path!r} {words}"
