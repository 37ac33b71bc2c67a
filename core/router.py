"""Routes chat commands (first word, exact) and card presses (``data["action"]``) to handlers, with roles.

Registration is by decorator; a name registered twice raises at import. The router checks the
person's role for messages *and* card presses (webex-bot skips that check for presses), says a
refusal plainly, and audits it. Handlers get their collaborators injected by parameter name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.card_numbers import card_number_fields
from core.config import ROLE_RANK, BusinessConfig, Role
from core.events import CardAction, ChatCommand
from core.injection import call_with

log = logging.getLogger(__name__)


class UserError(Exception):
    """A failure to tell the person in plain words (``reply``), with an optional line for the log (``detail``)."""

    def __init__(self, reply: str, detail: str | None = None):
        super().__init__(detail or reply)
        self.reply, self.detail = reply, detail


class Refused(UserError):
    """The person's role does not allow this: said plainly and audited."""


@dataclass(frozen=True)
class Route:
    name: str
    handler: Callable[..., Any]
    role: Role
    usage: str
    summary: str


class Router:
    def __init__(self) -> None:
        self.commands: dict[str, Route] = {}
        self.actions: dict[str, Route] = {}
        self.fallback: Callable[..., Any] | None = None

    def otherwise(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """The handler for unknown commands and actions (they get help, never silence)."""
        if self.fallback is not None:
            raise ValueError("the fallback handler is registered twice")
        self.fallback = handler
        return handler

    def command(
        self, word: str, *, role: Role, usage: str = "", summary: str = ""
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self._register(self.commands, word.lower(), role, usage or word, summary)

    def action(self, name: str, *, role: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self._register(self.actions, name, role, name, "")

    def _register(self, table: dict[str, Route], name: str, role: Role, usage: str, summary: str) -> Callable[..., Any]:
        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            if name in table:
                raise ValueError(
                    f"{name!r} is registered twice ({table[name].handler.__name__} and {handler.__name__})"
                )
            table[name] = Route(name, handler, role, usage, summary)
            return handler

        return decorate

    def route_for(self, event: ChatCommand | CardAction) -> Route | None:
        if isinstance(event, ChatCommand):
            return self.commands.get(event.word)
        return self.actions.get(event.action)

    def dispatch(
        self,
        event: ChatCommand | CardAction,
        dependencies: Mapping[str, Any],
        *,
        business: BusinessConfig,
        stores_in_context: tuple[str, ...],
    ) -> Any:
        """Run the event's handler if the person's role allows it in this context; else refuse plainly.

        ``stores_in_context`` are the stores the room speaks for (a store's space, a region's, or
        the person's own stores in a 1:1 space); handlers acting on one alert or transaction check
        that object's store again with ``require_role``."""
        route = self.route_for(event)
        if route is None:
            if self.fallback is None:
                raise UserError("Unknown command.")
            return call_with(self.fallback, event, dependencies)
        best = best_role(business, event.person_email, stores_in_context)
        if best is None or ROLE_RANK[best] < ROLE_RANK[route.role]:
            raise Refused(
                f"Sorry, `{route.usage}` needs the {route.role} role here"
                f"{'' if best is None else f' (yours is {best})'}.",
                f"{event.person_email} lacks {route.role}",
            )
        return call_with(route.handler, event, dependencies)


def best_role(business: BusinessConfig, email: str, store_ids: tuple[str, ...]) -> Role | None:
    roles = [r for r in (business.role_of(email, s) for s in store_ids) if r is not None]
    if not roles:
        return None
    # Its own statement: inside `return`, mypy would type the lambda's argument as `Role | None`.
    best: Role = max(roles, key=lambda r: ROLE_RANK[r])
    return best


def require_role(business: BusinessConfig, email: str, store_id: str, role: Role) -> None:
    """For handlers acting on one object: the person needs ``role`` at *that object's* store."""
    have = business.role_of(email, store_id)
    if have is None or ROLE_RANK[have] < ROLE_RANK[role]:
        raise Refused(f"Sorry, that needs the {role} role at {store_id}.", f"{email} lacks {role} at {store_id}")


def require_visible(business: BusinessConfig, email: str, stores: str | Iterable[str], missing: str) -> None:
    """What is at a store where the person has no role does not exist for them: ``missing`` is the very answer a
    missing object gets (a plain error, not an audited refusal), so ids of other stores cannot be probed.
    ``stores`` is the object's store, or the stores that share it (a watchlist entry's region)."""
    at = (stores,) if isinstance(stores, str) else tuple(stores)
    if all(business.role_of(email, store_id) is None for store_id in at):
        raise UserError(missing, f"{email} has no role at {', '.join(at)}")


def entry_stores(business: BusinessConfig, store_id: str, region_id: str | None) -> tuple[str, ...]:
    """The stores that see a watchlist entry: its own, and its region's (the console and `watchlist` list those)."""
    return (store_id, *(s.id for s in business.stores if region_id and s.region == region_id and s.id != store_id))


def refuse_card_numbers(**fields: object) -> None:
    """Free text a person gives us (a reason, a note) never carries a card number: refused, naming the field,
    never echoing the number (nothing is stored)."""
    found = card_number_fields(fields)
    if found:
        names = " and ".join(f"*{name}*" for name in found)
        raise UserError(
            f"The {names} looks like it holds a payment card number, so nothing was stored. "
            "Please leave card numbers out.",
            f"card number in {', '.join(found)}",
        )
