"""Unit of work: one database transaction per handler or job, explicit commit, else rollback."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session

from storage.alerts import AlertRepository
from storage.audit import AuditLog
from storage.db import Database
from storage.outbox import Outbox
from storage.patterns import PatternRepository
from storage.snapshots import SnapshotRepository
from storage.transactions import TransactionRepository
from storage.watchlist_entries import WatchlistRepository
from storage.work_queue import WorkQueue


class UnitOfWork:
    """``with UnitOfWork(db, write=True) as uow: …; uow.commit()``.

    Write units on SQLite take the process-wide writer lock for their whole life, so keep
    network calls outside them.
    """

    session: Session

    def __init__(self, db: Database, *, write: bool = False):
        self._db = db
        self._write = write

    def __enter__(self) -> UnitOfWork:
        if self._write and self._db.write_lock is not None:
            self._db.write_lock.acquire()
        try:
            self.session = self._db.session(write=self._write)
        except BaseException:
            self._release()
            raise
        self.transactions = TransactionRepository(self.session)
        self.work = WorkQueue(self.session, skip_locked=not self._db.is_sqlite)
        self.alerts = AlertRepository(self.session)
        self.snapshots = SnapshotRepository(self.session)
        self.outbox = Outbox(self.session, self.work.enqueue)
        self.audit = AuditLog(self.session)
        self.watchlist = WatchlistRepository(self.session)
        self.patterns = PatternRepository(self.session)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            # close() rolls back anything uncommitted; unlike rollback() it leaves loaded objects readable.
            self.session.close()
        finally:
            self._release()

    def commit(self) -> None:
        self.session.commit()

    def _release(self) -> None:
        if self._write and self._db.write_lock is not None:
            self._db.write_lock.release()
