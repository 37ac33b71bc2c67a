"""One Webex websocket per deployment: the Mercury stand-in replaces a second socket as Mercury does, and processes
that elect their holder through the database never open two (bot/listeners.py, bot/roles.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.app import build_services
from bot.listeners import webex_role
from bot.roles import RoleGroup, Roles
from bot.webex_socket import WebsocketTransport
from core.config import Config, load_config
from simulation.mercury_server import MercuryStandIn
from simulation.webex_server import WebexStandIn
from tests.mercury import wait_until

TOKEN = "bot-token-" + "x" * 40


@pytest.fixture
def webex() -> Iterator[tuple[WebexStandIn, MercuryStandIn]]:
    rest, mercury = WebexStandIn(access_token=TOKEN).start(), MercuryStandIn(access_token=TOKEN).start()
    yield rest, mercury
    mercury.stop()
    rest.stop()


@pytest.fixture
def webex_config(environ: dict[str, str], business: dict[str, Any], webex) -> Config:
    import yaml

    rest, mercury = webex
    environ = {
        **environ,
        "WEBEX_ACCESS_TOKEN": TOKEN,
        "WEBEX_BASE_URL": rest.base_url,
        "WEBEX_DISCOVERY_URL": mercury.discovery_url,
    }
    return load_config(environ, yaml.safe_dump(business))


def test_the_stand_in_replaces_a_second_socket_on_the_same_device_as_mercury_does(webex) -> None:
    rest, mercury = webex
    transports = [
        WebsocketTransport(
            access_token=TOKEN,
            me=lambda: {"id": rest.me.id},
            accept=lambda event: True,
            discovery_url=mercury.discovery_url,
            backoff_s=(0.05, 0.1),
        )
        for _ in range(2)
    ]
    try:
        for transport in transports:
            transport.start()
        # Unelected, both connect: on one device they replace each other (close 4000) and reconnect, on two
        # devices (registered at the same moment) both get every event. The trap the election avoids.
        assert wait_until(lambda: mercury.replaced >= 1 or mercury.most_at_once >= 2, timeout_s=20)
    finally:
        for transport in transports:
            transport.stop(5)


def test_processes_electing_their_holder_open_one_socket_and_hand_it_over(webex, webex_config, database_url) -> None:
    _, mercury = webex
    processes = [build_services(webex_config) for _ in range(2)]
    groups = [webex_role(services) for services in processes]
    assert all(isinstance(group, RoleGroup) for group in groups)
    roles = [
        Roles(services.db, services.clock, [group], identity=f"p{n}", renew_s=0.2)  # type: ignore[list-item]
        for n, (services, group) in enumerate(zip(processes, groups, strict=True))
    ]
    try:
        for role in roles:
            role.start()
        assert wait_until(lambda: mercury.connections == 1, timeout_s=20)
        holder = next(n for n, r in enumerate(roles) if r.playing("webex"))
        assert wait_until(lambda: processes[holder].component_state["webex"] == "connected", timeout_s=10)
        assert processes[1 - holder].component_state.get("webex") != "connected"
        roles[holder].stop()  # a clean stop: the other takes over at its next renewal
        assert wait_until(lambda: mercury.connections == 2 and mercury.open_now == 1, timeout_s=20)
        assert roles[1 - holder].playing("webex") == {0}
        assert mercury.replaced == 0
        assert mercury.most_at_once == 1
    finally:
        for role in roles:
            role.stop()
        for services in processes:
            services.close()
