"""``python -m bot work list|retry|drop``: the operator's view of dead-lettered steps.

A step dies after its attempts (the reason is kept on the row) and settles its subject as it dies: a
transaction failed, an outbox message failed. After fixing the cause (a key, a permission, a
camera), ``retry`` runs it again from its first attempt; ``drop`` deletes what is no longer wanted.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.clock import system_clock
from storage.db import Database
from storage.uow import UnitOfWork


def run(database_url: str, action: str, ids: Sequence[int]) -> int:
    db = Database(database_url)
    try:
        if action == "list":
            return _list(db)
        return _change(db, action, ids)
    finally:
        db.dispose()


def _list(db: Database) -> int:
    with UnitOfWork(db) as uow:
        dead = uow.work.dead(limit=200)
        if not dead:
            print("no dead steps")
            return 0
        print(f"{'id':>8}  {'kind':<20} {'died (UTC)':<20} {'attempts':>8}  subject / reason")
        for item in dead:
            died = item.completed_at.strftime("%Y-%m-%d %H:%M:%S") if item.completed_at else "-"
            subject = item.transaction_id or item.ref_id or item.dedupe_key
            print(f"{item.id:>8}  {item.kind:<20} {died:<20} {item.attempts:>8}  {subject}: {item.last_error or ''}")
    return 0


def _change(db: Database, action: str, ids: Sequence[int]) -> int:
    if not ids:
        print(f"work {action}: name the ids of dead steps (see `python -m bot work list`)")
        return 2
    missing = []
    with UnitOfWork(db, write=True) as uow:
        now = system_clock()
        for item_id in ids:
            changed = uow.work.revive(item_id, now=now) if action == "retry" else uow.work.drop(item_id)
            if not changed:
                missing.append(item_id)
        uow.commit()
    done = len(ids) - len(missing)
    print(f"{'retrying' if action == 'retry' else 'dropped'} {done} step(s)")
    if missing:
        print(f"not dead steps (unknown, or running or done): {', '.join(map(str, missing))}")
        return 1
    return 0
