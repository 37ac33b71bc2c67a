"""Unit of work: one database transaction per handler or job, explicit commit, else rollback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from sqlalchemy.orm import Session

from storage.alerts import AlertRepository
from storage.audit import AuditLog
from storage.console_sessions import ConsoleSessions
from storage.db import Database
from storage.evidence_refs import EvidenceRefs
from storage.face_evaluations import FaceEvaluations
from storage.inbound import InboundEvents
from storage.lookback import LookbackQueries
from storage.outbox import Outbox
from storage.patterns import PatternRepository
from storage.process_leases import ProcessLeases
from storage.retention import Retention
from storage.snapshots import SnapshotRepository
from storage.stats import StatsQueries
from storage.threads import Threads
from storage.transactions import TransactionRepository
from storage.watchlist_entries import WatchlistRepository
from storage.work_queue import WorkQueue
from storage.work_signal import announce


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
        self.inbound = InboundEvents(self.session)
        self.threads = Threads(self.session)
        self.stats = StatsQueries(self.session)
        self.lookback = LookbackQueries(self.session)
        self.evidence_refs = EvidenceRefs(self.session)
        self.retention = Retention(self.session)
        self.leases = ProcessLeases(self.session)
        self.console_sessions = ConsoleSessions(self.session)
        self.face_evaluations = FaceEvaluations(self.session)
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
        if self.work.enqueued and not self._db.is_sqlite:
            announce(self.session, self.work.enqueued)  # delivered at this commit, to every process listening
        self.session.commit()

    def rollback(self) -> None:
        """Undo what this unit did so far (a refused body must leave nothing behind) and go on in it."""
        self.session.rollback()

    def flush(self) -> None:
        """Send pending changes now, so the queries that follow see them (still undone without ``commit``)."""
        self.session.flush()

    def delete(self, row: Any) -> None:
        self.session.delete(row)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an error inside undoes only what was done inside."""
        with self.session.begin_nested():
            yield

    def _release(self) -> None:
        if self._write and self._db.write_lock is not None:
            self._db.write_lock.release()
