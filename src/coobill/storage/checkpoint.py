"""WAL checkpoints off the hot path.

In WAL mode SQLite appends every commit to the -wal file, and by default the connection whose
commit takes the WAL past 1,000 pages copies it back into the database there and then — a
checkpoint, with an fsync of both files (synchronous=NORMAL), which on a virtual disk takes
milliseconds. On the ledger thread that stall lands on whichever calls are being authorized
or settled at that moment. So the ledger thread's connection never checkpoints
(`wal_autocheckpoint=0`); it nudges this checkpointer after each commit, and every `every`
commits a thread of its own runs a PASSIVE checkpoint on its own connection, which copies what
it can without blocking the writer. (The portal's and the CLI's connections keep SQLite's
automatic checkpoints: they write rarely.)
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("coobill.ledger")


class WalCheckpointer:
    def __init__(self, path: str, *, every: int = 100) -> None:
        self._path = path
        self._every = every
        self._commits = 0
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.checkpointed = threading.Event()  # set after each run (tests wait on it)

    def nudge(self) -> None:
        """One more commit on the ledger thread (called there)."""
        self._commits += 1
        if self._commits >= self._every:
            self._commits = 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="checkpoint",
                                                daemon=True)
                self._thread.start()
            self._wake.set()

    def close(self) -> None:
        """Stop the thread after one last checkpoint."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._closing = True
        self._wake.set()
        thread.join()
        self._closing = False

    def _serve(self) -> None:
        connection = sqlite3.connect(self._path, timeout=5, isolation_level=None,
                                     check_same_thread=False)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                self._checkpoint(connection)
                if self._closing:
                    return
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # a later one, or SQLite's own, will do it
            log.warning("ledger.checkpoint_failed error=%r", exc)
        self.runs += 1
        self.checkpointed.set()
