"""Review: two workers claiming at once on PostgreSQL must never both get the same work item."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.uow import UnitOfWork

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def test_concurrent_claims_never_take_one_item_twice(database_url):
    db = Database(database_url)
    try:
        with UnitOfWork(db, write=True) as uow:
            for n in range(300):
                uow.work.enqueue(
                    kind="t_race", key=str(n), run_at=NOW - timedelta(seconds=300 - n), now=NOW, store_id=f"s{n % 3}"
                )
            uow.commit()
        taken: list[int] = []
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with UnitOfWork(db, write=True) as uow:
                    claimed = uow.work.claim_due(kinds={"t_race"}, now=NOW, lease_s=600, limit=1)
                    uow.commit()
                if not claimed:
                    return
                with lock:
                    taken.extend(item.id for item in claimed)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        twice = {item: n for item, n in Counter(taken).items() if n > 1}
        assert twice == {}, f"{len(twice)} items claimed more than once"
        assert len(set(taken)) == 300
    finally:
        db.dispose()
