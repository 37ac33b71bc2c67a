"""What brings events in besides HTTP, in the processes that run steps: the Webex websocket (or the webhook
registration) and the entrance watch, each played by as few processes as it needs (bot/roles.py).

Exactly one process holds the Webex websocket; the entrance cameras are split into shares spread over the
processes alive (one listener per share), so three workers do not each handle every MQTT message.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.entrance import EntranceWatch, entrance_cameras, share_of, watch_entrances
from bot.http.webex_events import target_url
from bot.roles import RoleGroup, Roles
from bot.webex_activities import accept_into
from bot.webex_socket import WebsocketTransport
from core.config import required_secret
from core.messenger import WebexError

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)
HANDOVER_STOP_S = 5.0  # a websocket handed over must be closed well before its lease runs out elsewhere


def start_listeners(services: Services) -> list[Any]:
    """Elect this process into the roles it should play, and keep doing so until ``stop_listeners``."""
    groups = [group for group in (webex_role(services), entrance_roles(services)) if group is not None]
    if not groups:
        return []
    roles = Roles(services.db, services.clock, groups)
    services.component_state["process"] = roles.identity
    roles.start()
    return [roles]


def stop_listeners(listeners: list[Any]) -> None:
    for listener in listeners:
        listener.stop()


def webex_role(services: Services) -> RoleGroup | None:
    """One role: the websocket (or, for the webhook transport, registering the webhooks once per holder)."""
    if services.config.env.webex_access_token is None or services.messenger is None:
        return None
    transport: list[WebsocketTransport] = []

    def play(held: frozenset[int]) -> None:
        if held:
            started = start_webex(services)
            transport[:] = [started] if started is not None else []
            return
        for running in transport:
            running.stop(HANDOVER_STOP_S)
        transport.clear()
        services.component_state["webex"] = "held by another process"

    return RoleGroup("webex", 1, play)


def entrance_roles(services: Services) -> RoleGroup | None:
    """``camera.entrance_shares`` roles; this process listens to the cameras of the shares it plays."""
    serials = entrance_cameras(services)
    if not serials:
        return None
    shares = services.config.business.camera.entrance_shares
    watch: list[EntranceWatch] = []

    def play(held: frozenset[int]) -> None:
        for running in watch:
            running.stop()
        watch.clear()
        mine = [serial for serial in serials if share_of(serial, shares) in held]
        services.component_state["entrance"] = f"{len(mine)} of {len(serials)} cameras in this process"
        if mine:
            watch.append(watch_entrances(services, mine))
        log.info("entrance watch: shares %s here, %d of %d cameras", sorted(held), len(mine), len(serials))

    return RoleGroup("entrance", shares, play)


def start_webex(services: Services) -> WebsocketTransport | None:
    """Webex inbound: the websocket in this process, or (webhook transport) our webhooks re-registered."""
    env, client = services.config.env, services.messenger
    if env.webex_access_token is None or client is None:
        return None
    if env.webex_transport == "webhook":
        if env.public_url is None:
            services.component_state["webex"] = "webhook: PUBLIC_URL not set"
            return None
        try:
            # _mode_problems requires WEBEX_WEBHOOK_SECRET with a token and the webhook transport.
            secret = required_secret(env.webex_webhook_secret, "WEBEX_WEBHOOK_SECRET")
            client.register_webhooks(target_url(str(env.public_url)), secret)
            services.component_state["webex"] = "configured"
        except WebexError as exc:
            log.warning("Webex webhooks not registered: %s", exc.reason)
            services.component_state["webex"] = "webhook registration failed"
        return None
    transport = WebsocketTransport(
        access_token=env.webex_access_token.get_secret_value(),
        me=client.me,
        accept=accept_into(services),
        on_state=lambda state: services.component_state.__setitem__("webex", state),
        discovery_url=str(env.webex_discovery_url),
    )
    transport.start()
    return transport
