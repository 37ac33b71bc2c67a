"""Watchlist governance in chat: list and show entries (staff), remove one or erase a person (security).

Every view and decision is audited with ids and reason codes. Removal and erasure take effect at
once in the database (the entry is never matched again); the backend work (forgetting faces and
user vectors) follows in steps (handlers/learning/erasure.py), outside any database transaction.
"""

from __future__ import annotations

from datetime import datetime

from cards.actions import WATCHLIST_REMOVE
from cards.views import EntryPrecision, WatchlistEntryView
from cards.watchlist import watchlist_entry_card, watchlist_list_card
from core.config import Config
from core.events import CardAction, ChatCommand
from core.router import UserError, entry_stores, require_role, require_visible
from core.routes import router
from core.steps import StepKind
from handlers.chat.listing import is_page, listing, page_number
from handlers.conversation.reply import Answer
from handlers.conversation.threads import open_thread
from handlers.conversation.views import WRONG_MATCHES_FOR_REVIEW, entry_view
from handlers.learning.erasure import erasure_anchor
from storage.models import WatchlistPerson
from storage.uow import UnitOfWork

USAGE = "Usage: `watchlist`, `watchlist 2` (a page), `watchlist show <id>` or `watchlist remove <id>`."


@router.command(
    "watchlist",
    role="staff",
    usage="watchlist [page|show <id>|remove <id>]",
    summary="the watchlist, one entry, or remove one (security)",
)
def cmd_watchlist(
    cmd: ChatCommand, *, uow: UnitOfWork, reply: Answer, config: Config, stores: tuple[str, ...], now: datetime
) -> None:
    if len(cmd.args) <= 1 and all(is_page(arg) for arg in cmd.args):
        _list(cmd, uow, reply, config, stores, now, page=page_number(cmd.args[0] if cmd.args else None))
        return
    if len(cmd.args) != 2 or cmd.args[0].lower() not in ("show", "remove"):
        raise UserError(USAGE)
    person = _entry(uow, cmd.args[1], config, cmd.person_email)
    if cmd.args[0].lower() == "show":
        require_role(config.business, cmd.person_email, person.store_id, "staff")
        uow.audit.record(
            at=now,
            actor=cmd.person_email,
            action="view",
            subject_type="watchlist",
            subject_id=person.id,
            store_id=person.store_id,
        )
        view = _view(uow, person, config)
        reply(_entry_text(view), card=watchlist_entry_card(view, now=now))
        return
    remove(uow, reply, config, person, cmd.person_email, now)


@router.action(WATCHLIST_REMOVE, role="security")
def act_watchlist_remove(press: CardAction, *, uow: UnitOfWork, reply: Answer, config: Config, now: datetime) -> None:
    person = _entry(uow, str(press.data.get("person_id") or ""), config, press.person_email)
    remove(uow, reply, config, person, press.person_email, now)


@router.command(
    "forget",
    role="security",
    usage="forget <person>",
    summary="erase a person: faces in recognition, photos, crops and entry",
)
def cmd_forget(cmd: ChatCommand, *, uow: UnitOfWork, reply: Answer, config: Config, now: datetime) -> None:
    if len(cmd.args) != 1:
        raise UserError("Usage: `forget <person id>` (e.g. `forget P-1a2b3c4d`).")
    person = _entry(uow, cmd.args[0], config, cmd.person_email)
    require_role(config.business, cmd.person_email, person.store_id, "security")
    person.status = "removed"  # never matched again from this moment; the step erases the rest
    person.expires_at = min(person.expires_at, now)
    uow.audit.record(
        at=now,
        actor=cmd.person_email,
        action="erasure_request",
        subject_type="watchlist",
        subject_id=person.id,
        store_id=person.store_id,
        reason_code="forget",
    )
    open_thread(
        uow,
        reply,
        key=erasure_anchor(person.id),
        now=now,
        markdown=f"Erasing **{person.id}**: its faces in recognition, its enrollment photos and crops, "
        "and its entry. I'll confirm here.",
    )
    uow.work.enqueue(kind=StepKind.ERASE_PERSON, key=person.id, ref_id=person.id, run_at=now, now=now)


def remove(uow: UnitOfWork, reply: Answer, config: Config, person: WatchlistPerson, email: str, now: datetime) -> None:
    """Security ends an entry: status removed at once, its templates forgotten by a step."""
    require_role(config.business, email, person.store_id, "security")
    if person.status in ("removed", "expired"):
        reply(f"{person.id} is already {person.status}; nothing changed.")
        return
    person.status = "removed"
    person.expires_at = min(person.expires_at, now)  # its end, from which retention counts
    uow.audit.record(
        at=now,
        actor=email,
        action="watchlist_remove",
        subject_type="watchlist",
        subject_id=person.id,
        store_id=person.store_id,
        reason_code="removed",
    )
    uow.work.enqueue(kind=StepKind.FORGET_TEMPLATES, key=person.id, ref_id=person.id, run_at=now, now=now)
    reply(
        f"🗑️ **{person.id}** removed from the watchlist by {email}: it will not be matched again, and its faces "
        "are being deleted from recognition."
    )


def watchlist_precision(uow: UnitOfWork, stores: tuple[str, ...], since: datetime) -> tuple[EntryPrecision, ...]:
    """For `stats`: each entry named by alerts decided in these stores since then, with its precision."""
    found = uow.watchlist.precision(store_ids=stores, since=since)
    rows = []
    for person_id, (confirmed, decided) in sorted(found.items()):
        person = uow.watchlist.get(person_id)
        flagged = person is not None and person.wrong_match_count >= WRONG_MATCHES_FOR_REVIEW
        rows.append(EntryPrecision(person_id, confirmed, decided, flagged))
    return tuple(rows)


def _list(
    cmd: ChatCommand,
    uow: UnitOfWork,
    reply: Answer,
    config: Config,
    stores: tuple[str, ...],
    now: datetime,
    *,
    page: int,
) -> None:
    business = config.business
    regions = {s.region for s in business.stores if s.id in stores and s.region}
    shared = [r.id for r in business.regions if r.id in regions and r.share_watchlist]
    people = uow.watchlist.listed(stores, shared)
    precision = uow.watchlist.precision([p.id for p in people])
    views = [entry_view(p, config, precision=_ratio(precision.get(p.id))) for p in people]
    shown = listing(
        f"**Watchlist** ({len(views)})",
        [f"- {_entry_text(v)}" for v in views],
        page=page,
        command="watchlist",
        empty="Nobody is on the watchlist.",
    )
    uow.audit.record(
        at=now,
        actor=cmd.person_email,
        action="view",
        subject_type="watchlist",
        subject_id="list",
        store_id=stores[0] if len(stores) == 1 else None,
    )
    card = watchlist_list_card(
        views[shown.start : shown.end],
        total=len(views),
        more=shown.more,
        next_page=f"watchlist {shown.number + 1}" if shown.more else None,
    )
    reply(shown.text, card=card)


def _view(uow: UnitOfWork, person: WatchlistPerson, config: Config) -> WatchlistEntryView:
    return entry_view(person, config, precision=_ratio(uow.watchlist.precision([person.id]).get(person.id)))


def _entry_text(view: WatchlistEntryView) -> str:
    flag = " · **flagged for review** (repeated wrong matches)" if view.flagged_for_review else ""
    measured = f" · {view.precision:.0%} of decided alerts confirmed" if view.precision is not None else ""
    return (
        f"**{view.id}** {view.status} · {view.store_id} · expires {view.expires_at:%d %b %Y} · "
        f"{view.wrong_match_count} wrong match(es){measured}{flag}"
    )


def _entry(uow: UnitOfWork, typed: str, config: Config, email: str) -> WatchlistPerson:
    """The entry, if it exists where the person has a role (its store or region); else the same answer."""
    person_id = typed.strip()
    if person_id[:2].lower() == "p-":  # typed on a phone: "p-1A2B" names P-1a2b
        person_id = "P-" + person_id[2:].lower()
    person = uow.watchlist.get(person_id) if len(person_id) <= 32 else None
    unknown = f"I know no watchlist entry `{typed}` (never enrolled, or erased)."
    if person is None:
        raise UserError(unknown)
    require_visible(config.business, email, entry_stores(config.business, person.store_id, person.region_id), unknown)
    return person


def _ratio(counts: tuple[int, int] | None) -> float | None:
    return counts[0] / counts[1] if counts and counts[1] else None
