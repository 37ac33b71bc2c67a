"""From storage's counts to the stats card's view, shared by `stats [7d]` and the daily digest so both read alike."""

from __future__ import annotations

from cards.views import RulePrecision, StoreStatsRow
from core.config import Config
from storage.stats import StoreStats


def stats_row(row: StoreStats, config: Config) -> StoreStatsRow:
    """One store's counts as the card shows them (the first currency only: a store bills in one)."""
    store = config.business.store(row.store_id)
    currency, amount = next(iter(sorted(row.loss_prevented.items())), ("", 0))
    return StoreStatsRow(
        store_id=row.store_id,
        store_name=store.name if store else row.store_id,
        transactions_checked=row.transactions,
        pictures=row.pictures,
        alerts_by_rule=dict(row.alerts_by_rule),
        confirmed=row.confirmed,
        dismissed=row.dismissed,
        open_older_than_a_day=row.open_older_than_a_day,
        loss_prevented_amount=f"{amount:.2f}",
        currency=currency,
    )


def rule_rows(precision: dict[str, tuple[int, int]]) -> tuple[RulePrecision, ...]:
    """Each rule's (confirmed, decided), in name order."""
    return tuple(RulePrecision(rule, confirmed, decided) for rule, (confirmed, decided) in sorted(precision.items()))
