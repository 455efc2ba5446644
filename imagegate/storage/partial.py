"""A reader's own descriptor on a blob file still being written."""

from __future__ import annotations

import asyncio
import os


class FilesystemPartialReader:
    """A reader's own descriptor on a temp file; see ``PartialReader``.

    A descriptor, unlike the name, survives the rename of a commit and the unlink of an
    abort: the reader goes on reading the same bytes. One per reader, opened once.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._busy: asyncio.Future[bytes] | None = None  # the read in a worker thread

    async def read_at(self, offset: int, length: int) -> bytes:
        if self._fd < 0:
            raise ValueError("read from a closed reader")
        loop = asyncio.get_running_loop()
        self._busy = loop.run_in_executor(None, os.pread, self._fd, length, offset)
        return await asyncio.shield(self._busy)  # see close

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        if self._busy is not None and not self._busy.done():
            # A cancelled reader's pread is still running: close only after it, or the
            # number could be reused under it.
            self._busy.add_done_callback(lambda _: os.close(fd))
        else:
            os.close(fd)
