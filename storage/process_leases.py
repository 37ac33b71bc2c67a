"""Leases on what only one process may do at a time, and on each process being alive (``process_leases``).

A lease is held until ``lease_until``; its holder renews it, and anyone may take it once it has run out. Taking
and renewing are one ``INSERT … ON CONFLICT DO UPDATE … WHERE`` statement, so of two processes racing for a lease
that has run out exactly one gets it, on PostgreSQL (the row lock orders them) as on SQLite (one writer).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, or_, select
from sqlalchemy.orm import Session

from storage.db import upsert_insert
from storage.models import ProcessLease


class ProcessLeases:
    def __init__(self, session: Session):
        self._session = session

    def hold(self, name: str, *, holder: str, now: datetime, lease_s: float) -> bool:
        """Take ``name`` if free or run out, or renew it if ``holder`` has it: True when ``holder`` now holds it."""
        until = now + timedelta(seconds=lease_s)
        insert = upsert_insert(self._session, ProcessLease).values(
            name=name, holder=holder, lease_until=until, since=now
        )
        statement = insert.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": holder,
                "lease_until": until,
                "since": case((ProcessLease.holder == holder, ProcessLease.since), else_=now),
            },
            where=or_(ProcessLease.holder == holder, ProcessLease.lease_until < now),
        ).returning(ProcessLease.holder)
        return self._session.execute(statement).scalar_one_or_none() == holder

    def let_go(self, names: list[str], *, holder: str) -> None:
        """Give leases back at once (a clean stop, a share handed to a newcomer): no one waits for them to run out."""
        if names:
            self._session.execute(
                delete(ProcessLease).where(ProcessLease.name.in_(names), ProcessLease.holder == holder)
            )

    def live(self, prefix: str, *, now: datetime) -> int:
        """How many leases named ``prefix…`` are held now (live processes, for ``member:``)."""
        query = select(func.count()).where(ProcessLease.name.startswith(prefix), ProcessLease.lease_until >= now)
        return int(self._session.scalar(query) or 0)

    def holders(self, prefix: str, *, now: datetime) -> dict[str, str]:
        """Name → holder of every lease named ``prefix…`` held now (``status``, tests)."""
        query = select(ProcessLease.name, ProcessLease.holder).where(
            ProcessLease.name.startswith(prefix), ProcessLease.lease_until >= now
        )
        return dict(self._session.execute(query).all())

    def forget(self, *, ran_out_before: datetime) -> None:
        """Remove leases long run out (processes that died): the table holds the living, not history."""
        self._session.execute(delete(ProcessLease).where(ProcessLease.lease_until < ran_out_before))
