"""``python -m bot work list|retry|drop``: dead steps listed with their reasons, revived from their first attempt,
or deleted; live steps are never touched."""

from __future__ import annotations

from bot import work_admin
from bot.__main__ import main
from storage.uow import UnitOfWork


def queue(services, clock) -> dict[str, int]:
    now = clock()
    with UnitOfWork(services.db, write=True) as uow:
        for key in ("dead-1", "dead-2", "alive"):
            uow.work.enqueue(kind="deliver", key=key, ref_id=key, run_at=now, now=now)
        uow.commit()
    with UnitOfWork(services.db, write=True) as uow:
        claimed = {c.ref_id: c for c in uow.work.claim_due(kinds={"deliver"}, now=now, lease_s=60, limit=10)}
        for key in ("dead-1", "dead-2"):
            uow.work.bury(claimed[key], now=now, error=f"Webex answered 403 for {key}")
        uow.work.release(claimed["alive"])
        uow.commit()
        return {c.ref_id or "": c.id for c in claimed.values()}


def rows(services) -> dict[str, tuple[str, int]]:
    with UnitOfWork(services.db) as uow:
        return {w.ref_id: (w.status, w.attempts) for w in uow.work.for_kind("deliver")}


def test_list_shows_each_dead_step_with_its_reason(services, clock, capsys):
    ids = queue(services, clock)
    assert work_admin.run(services.config.env.database_url, "list", []) == 0
    out = capsys.readouterr().out
    assert f"{ids['dead-1']:>8}  deliver" in out and "Webex answered 403 for dead-2" in out
    assert "alive" not in out


def test_retry_revives_only_dead_steps_and_drop_deletes_them(services, clock, capsys):
    ids = queue(services, clock)
    url = services.config.env.database_url
    assert work_admin.run(url, "retry", [ids["dead-1"], ids["alive"]]) == 1  # one of them is not dead
    assert "retrying 1 step(s)" in capsys.readouterr().out
    assert rows(services) == {"dead-1": ("pending", 0), "dead-2": ("dead", 1), "alive": ("pending", 0)}
    assert work_admin.run(url, "drop", [ids["dead-2"]]) == 0
    assert "dead-2" not in rows(services)
    assert work_admin.run(url, "drop", []) == 2


def test_the_command_line_reaches_it(services, clock, capsys, monkeypatch):
    queue(services, clock)
    monkeypatch.setenv("DATABASE_URL", services.config.env.database_url)  # the rest: the committed config
    assert main(["work", "list"]) == 0
    assert "Webex answered 403 for dead-1" in capsys.readouterr().out
