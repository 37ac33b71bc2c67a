"""``python -m bot demo``: the real service (SQLite, local face backend) and a simulated store on 127.0.0.1.

A Meraki stand-in serves pictures of the demo floor, a POS stand-in posts a day of signed
transactions, the narration says what the service did, and the review console is open for people
with the printed tokens. ``--auto`` plays the store manager through the console (confirms the
suspicious, dismisses the harmless, enrolls the charged-back shopper), then prints the summary and
exits; without it the store keeps serving until Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

from pydantic import AnyUrl, SecretStr

from bot.app import build_services, create_app
from bot.demo_story import Story
from bot.listeners import start_listeners, stop_listeners
from bot.narration import Narrator, speaker, summary
from bot.processes import Background, prepare_recognition
from core.config import Config, required_secret
from simulation.camera_server import CameraEvent, CameraStandIn
from simulation.floor import Floor
from simulation.pos import PosStandIn
from storage import migrate

DEMO_CONFIG = "config/demo.yaml"
DEMO_DATA = Path("data/demo")
MANAGER = "ana@example.com"  # the person --auto plays (a manager of the demo store)


def environment_defaults(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Fill what the demo needs and was not given; True when it runs on its own scratch data (reset each run)."""
    own_data = not environ.get("DATABASE_URL") and not environ.get("DATA_DIR")
    defaults = {
        "FLP_CONFIG": DEMO_CONFIG,
        "DATABASE_URL": f"sqlite:///{DEMO_DATA}/demo.db",
        "DATA_DIR": str(DEMO_DATA),
        "POS_WEBHOOK_SECRET": secrets.token_urlsafe(24),
        "API_TOKEN": secrets.token_urlsafe(24),
        "LOG_LEVEL": "WARNING",
    }  # the narration tells the story; warnings and errors still show
    for name, value in defaults.items():
        if not environ.get(name):
            environ[name] = value
    if not environ.get("PORT") and not _can_bind(environ.get("HOST") or "127.0.0.1", 8080):
        environ["PORT"] = str(_free_port(environ.get("HOST") or "127.0.0.1"))
    return own_data


def run(
    config: Config, *, auto: bool, webex_room: str | None = None, fresh: bool = False, out: TextIO = sys.stdout
) -> int:
    missing = [name for name in ("matplotlib", "skimage") if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"The demo's shoppers are public-domain photos shipped inside matplotlib and scikit-image "
            f"({', '.join(missing)} missing here): .venv/bin/pip install -r requirements-dev.txt",
            file=sys.stderr,
        )
        return 1
    say = speaker(out, time.monotonic())
    if fresh:
        shutil.rmtree(DEMO_DATA, ignore_errors=True)  # the demo's own scratch space: every run starts an empty store
    tokens = {person.email: secrets.token_urlsafe(24) for person in config.business.people}
    serials = {r.id: r.camera_serial for store in config.business.stores for r in store.registers}
    floor = Floor(list(serials.values()))
    camera_key = secrets.token_urlsafe(24)
    camera = CameraStandIn(floor, api_key=camera_key, on_event=_camera_narration(say)).start()
    config = _demo_config(config, tokens, camera, camera_key, webex_room, say)
    migrate.upgrade(config.env.database_url)
    services = build_services(config)
    prepare_recognition(services)
    background = Background(services)
    server = ThreadedServer(create_app(services), config.env.host, config.env.port)
    stop = _stop_on_signals()
    narrator, completed, listeners = None, False, []
    try:
        server.start()
        background.start()
        listeners = start_listeners(services)  # with WEBEX_ACCESS_TOKEN: presses in Webex reach the demo too
        narrator = Narrator(services.db, say).start()
        base_url = f"http://{config.env.host}:{config.env.port}"
        _banner(out, config, base_url, tokens, auto)
        # A register's next customer only after its live-picture window: a late live picture would show them.
        pos = PosStandIn(
            base_url,
            required_secret(config.env.pos_webhook_secret, "POS_WEBHOOK_SECRET"),  # environment_defaults set it
            floor,
            serials,
            store_id=config.business.stores[0].id,
            timezone=config.business.stores[0].timezone,
            turnover_s=config.business.camera.live_max_age_s + 0.5,
        )
        story = Story(services, pos, base_url, tokens[MANAGER], say, stop)
        completed = story.play_auto() if auto else story.play_interactive()
        if not auto:
            stop.wait()
    finally:
        if narrator is not None:
            narrator.stop()
        stop_listeners(listeners)
        background.stop(timeout_s=10)
        server.stop()
        camera.stop()
    counts = summary(services.db, pos.prefix)
    _print_summary(out, counts, camera.counts, f"http://{config.env.host}:{config.env.port}/console")
    services.close()
    return 0 if (completed or not auto) else 1


def _demo_config(
    config: Config, tokens: dict[str, str], camera: CameraStandIn, camera_key: str, webex_room: str | None, say: Any
) -> Config:
    """The loaded config with this run's console tokens and the camera stand-in (always: the demo is offline)."""
    business = config.business
    people = tuple(
        p.model_copy(update={"console_token_sha256": hashlib.sha256(tokens[p.email].encode()).hexdigest()})
        for p in business.people
    )
    stores = business.stores
    if webex_room and config.env.webex_access_token:
        stores = tuple(s.model_copy(update={"webex_room_id": webex_room}) for s in stores)
    elif webex_room:
        say("webex", "--webex-room is ignored: WEBEX_ACCESS_TOKEN is not set")
    env = config.env.model_copy(
        update={
            "meraki_dashboard_api_key": SecretStr(camera_key),
            "meraki_base_url": AnyUrl(camera.base_url),
            "meraki_picture_hosts": (camera.picture_host,),  # the stand-in's pictures are http on loopback
        }
    )
    return dataclasses.replace(
        config, env=env, business=business.model_copy(update={"people": people, "stores": stores})
    )


def _camera_narration(say: Any) -> Any:
    def narrate(event: CameraEvent) -> None:
        if event.kind == "refused":
            say("camera", f"{event.serial} answered {event.detail}")

    return narrate


class ThreadedServer:
    """waitress on HOST:PORT in a thread, stopped by us (the demo's main thread runs the story; tests reuse it)."""

    def __init__(self, app: Any, host: str, port: int):
        from waitress import create_server

        self._sockets: dict[int, Any] = {}
        self._server = create_server(
            app, map=self._sockets, host=host, port=port, threads=8, ident="fraud-loss-prevention"
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="waitress", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def start(self) -> ThreadedServer:
        self._thread.start()
        return self

    def _loop(self) -> None:
        from waitress import wasyncore

        while not self._stop.is_set():
            wasyncore.loop(timeout=0.2, map=self._sockets, count=1)

    def stop(self) -> None:
        """Stop polling, let the requests in hand finish (their answers need the trigger), then close everything."""
        from waitress import wasyncore

        self._stop.set()
        self._thread.join(5)
        self._server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(self._sockets)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _banner(out: TextIO, config: Config, base_url: str, tokens: dict[str, str], auto: bool) -> None:
    roles = {p.email: p.role for p in config.business.people}
    people = "\n".join(f"    {email:<20} {roles[email]:<9} {token}" for email, token in tokens.items())
    webex = (
        "on (posting to the store's space)"
        if config.env.webex_access_token
        else "off (set WEBEX_ACCESS_TOKEN to post there too)"
    )
    mode = (
        "--auto: the manager (ana) decides through the console; a summary follows"
        if auto
        else "decide in the console; the charged-back shopper returns once someone enrolls her. Ctrl-C stops."
    )
    # environment_defaults set both secrets when they were not given.
    api_token = required_secret(config.env.api_token, "API_TOKEN")
    pos_secret = required_secret(config.env.pos_webhook_secret, "POS_WEBHOOK_SECRET")
    print(
        f"""
fraud-loss-prevention demo: a store on this machine, offline ({config.env.database_url})
  review console:  {base_url}/console   sign in with a token below (new every run)
{people}
  read API:        {base_url}/api/v1/alerts   Authorization: Bearer {api_token}
  POS intake:      POST {base_url}/api/v1/transactions   POS_WEBHOOK_SECRET={pos_secret}
  camera:          Meraki stand-in at {config.env.meraki_base_url}
  Webex:           {webex}
  {mode}
""",
        file=out,
        flush=True,
    )


def _print_summary(out: TextIO, counts: dict[str, int], camera: dict[str, int], console_url: str) -> None:
    print(
        f"""
Summary
  transactions: {counts["transactions"]} ({counts["pictured"]} pictured, the rest skipped by triage)
  pictures: {counts["pictures"]}
  faces: {counts["faces"]} in customer zones
  matches: {counts["matches"]}
  alerts: {counts["alerts"]}
  decisions: {counts["decisions"]} ({counts["confirmed"]} confirmed, {counts["dismissed"]} dismissed; {counts["open"]} still open)
  fraud reports: {counts["fraud reports"]}
  watchlist: {counts["watchlist"]}
  camera calls: {camera.get("snapshot", 0)} snapshots, {camera.get("image_not_ready", 0)} not-ready answers, {camera.get("refused", 0)} refusals
  console: {console_url}
""",
        file=out,
        flush=True,
    )


def _can_bind(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
