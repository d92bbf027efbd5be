"""Build a dataset in a forked child process at idle priority, and map the result into this process.

A reload that parses a million lines in the serving process competes with the answering loop for the
GIL (and, pinned to one core, for the core): answers stall for tens of milliseconds at a time, and the
load's temporaries raise the server's peak memory. A forked child does the work instead, at
SCHED_IDLE/nice 19 so that it only gets the CPU the answering loop leaves; it pickles the dataset with
its numpy arrays out of band into an anonymous file (memfd), and the parent maps that file and unpickles
without copying the arrays: taking over a 1,000,000-entry dataset costs about a millisecond.

The child shares the parent's str hash secret (fork copies it), so tables ordered by str hash
(dnset.NameTable) stay valid in the parent. Linux/POSIX only; where fork is missing, callers load in a
thread instead.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
import pickle
import signal
import struct
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

_HEAD = struct.Struct("<8sQQ")  # magic, payload length, number of out-of-band buffers
_MAGIC = b"RGDSv1\x00\x00"
_ALIGN = 64  # buffers start on cache-line boundaries (numpy wants at least the item size)
OK_EXIT, FAIL_EXIT = 0, 3
BUILD_TIMEOUT = 600.0  # seconds; a real list loads in a few


class BuildFailed(RuntimeError):
    """The child could not build the dataset (its error text is the message)."""


@dataclass(slots=True)
class Built:
    value: Any
    child_peak_kib: int  # the child's peak RSS (ru_maxrss), most of it pages shared with the parent
    child_cpu_s: float


def can_fork() -> bool:
    return hasattr(os, "fork") and hasattr(os, "wait4")


def _scratch() -> IO[bytes]:
    """An unnamed file for the child to write into: memory (memfd) where possible, else a temporary file."""
    if hasattr(os, "memfd_create"):
        with contextlib.suppress(OSError):
            return open(os.memfd_create("relayguard-reload", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # type: ignore[attr-defined]
    with contextlib.suppress(OSError):
        os.nice(19)


def write_value(f: IO[bytes], value: Any) -> None:
    """Header, pickle payload, then every out-of-band buffer aligned (the layout read_value maps)."""
    buffers: list[pickle.PickleBuffer] = []
    payload = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    f.write(_HEAD.pack(_MAGIC, len(payload), len(raws)))
    f.write(struct.pack(f"<{len(raws)}Q", *(r.nbytes for r in raws)))
    f.write(payload)
    pos = f.tell()
    for r in raws:
        pad = -pos % _ALIGN
        f.write(b"\x00" * pad)
        f.write(r)
        pos += pad + r.nbytes
    f.flush()


def read_value(f: IO[bytes]) -> Any:
    """Map the file and unpickle; numpy arrays become views of the (private, read-only) mapping."""
    size = os.fstat(f.fileno()).st_size
    if size < _HEAD.size:
        raise BuildFailed("the build wrote nothing")
    mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
    view = memoryview(mm)
    magic, plen, nbuf = _HEAD.unpack_from(view, 0)
    if magic != _MAGIC:
        raise BuildFailed("the build wrote something unexpected")
    pos = _HEAD.size
    lens = struct.unpack_from(f"<{nbuf}Q", view, pos)
    pos += 8 * nbuf
    payload = view[pos : pos + plen]
    pos += plen
    bufs = []
    for n in lens:
        pos += -pos % _ALIGN
        bufs.append(view[pos : pos + n])
        pos += n
    value = pickle.loads(payload, buffers=bufs)
    # the mapping stays alive as long as an array uses it (each view holds a reference to it)
    del payload, bufs, view
    return value


def _wait(pid: int, timeout: float) -> tuple[int, Any]:
    """Reap the child; past timeout (a child stuck on a lock some other thread held at fork time, or on
    a hung file system) kill it: the old data keeps answering and the next check tries again."""
    deadline = time.monotonic() + timeout
    while True:
        got, status, ru = os.wait4(pid, os.WNOHANG)
        if got == pid:
            return status, ru
        if time.monotonic() > deadline:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            _, status, ru = os.wait4(pid, 0)
            raise BuildFailed(f"build process took more than {timeout:.0f}s; killed")
        time.sleep(0.02)


def build_in_child(build: Callable[[], Any], timeout: float = BUILD_TIMEOUT) -> Built:
    """Run build() in a forked child at idle priority and return its result. Blocks: call it from a
    worker thread (it sleeps between checks, without the GIL). Raises BuildFailed if the child fails,
    dies or takes longer than timeout."""
    with _scratch() as f:
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never return into the caller's code
            code = FAIL_EXIT
            try:
                os.close(err_r)
                # no collections: they would only touch (and copy) the parent's pages, and could run
                # finalizers of the parent's garbage (a database connection's) in this process
                gc.disable()
                _lower_priority()
                write_value(f, build())
                code = OK_EXIT
            except BaseException:
                with contextlib.suppress(BaseException):
                    os.write(err_w, traceback.format_exc(limit=4).encode()[-4000:])
            os._exit(code)
        os.close(err_w)
        try:
            status, ru = _wait(pid, timeout)
            with os.fdopen(err_r, "rb") as ef:
                err_r = -1
                err = ef.read().decode(errors="replace").strip()
        finally:
            if err_r >= 0:
                os.close(err_r)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != OK_EXIT:
            raise BuildFailed(err.splitlines()[-1] if err else f"build process ended with status {status}")
        f.seek(0)
        value = read_value(f)
    return Built(value, int(ru.ru_maxrss), ru.ru_utime + ru.ru_stime)
