"""Process wiring: ``serve`` (all in one), ``web`` (gunicorn, HTTP only) and ``worker`` (background only).

Stopping (Ctrl-C / SIGTERM): stop accepting, let in-flight requests finish, stop claiming work,
finish the step in hand and give back the claimed rest. Anything unfinished is still a row.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Iterable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from bot.app import Services, build_services, create_app
from bot.http_server import gunicorn_settings, waitress_server
from bot.listeners import start_listeners, stop_listeners
from bot.runner import Runner, RunnerSettings, RunningStep
from bot.steps import ON_DEAD, STEPS
from bot.sweeps import schedule_sweeps
from bot.waiting_room import WaitingRoom
from core.config import Config
from core.steps import CATALOGUE, Lane, lane_of
from storage import migrate
from storage.work_signal import WorkSignals
from vision.types import RecognitionError

log = logging.getLogger(__name__)


def prepare(config: Config, **overrides: Any) -> Services:
    """Migrations, collaborators, and a face backend made usable (the processes that run steps start here)."""
    migrate.upgrade(config.env.database_url)
    services = build_services(config, **overrides)
    prepare_recognition(services)
    return services


def prepare_recognition(services: Services) -> str:
    """Create what the face backend needs (the Rekognition collection of a fresh account) and say so.

    Start-up goes on when it cannot: intake must flow, and /readyz and ``status`` show what is wrong."""
    try:
        state = services.faces.prepare()
    except RecognitionError as exc:
        state = exc.reason
    services.component_state["recognition"] = state
    if state == "ready":
        log.info("face backend %s ready", services.faces.name)
    else:
        log.warning("face backend %s not ready: %s", services.faces.name, state)
    return state


class Background:
    """The step runners, a pool of worker threads per lane (``runner.workers``), plus APScheduler, which only fires
    periodic sweeps and wakes the runners.

    Each worker claims for itself, so a slow step holds one worker of its lane and no other lane at all: a camera
    that is slow to answer never delays a chat answer or another store's analysis. A step that only waits (for a
    picture to become ready) holds no worker at all: it waits in its lane's waiting room (bot/waiting_room.py)."""

    def __init__(self, services: Services):
        self.services = services
        workers = services.config.business.runner.workers
        self.runners: list[Runner] = []
        self._threads: list[threading.Thread] = []
        self._lanes: dict[Lane, list[Runner]] = {}
        self._lane_of = {kind.value: spec.lane for kind, spec in CATALOGUE.items()}
        self.waiting_rooms: dict[Lane, WaitingRoom[RunningStep]] = {}
        for lane in Lane:
            steps = {k: v for k, v in STEPS.items() if k in lane_of(lane)}
            count = getattr(workers, lane.value)
            # A step that waits (a camera picture becoming ready) is parked here, and its worker is free meanwhile.
            self.waiting_rooms[lane] = WaitingRoom(lane.value, on_ready=functools.partial(self._wake_lane, lane))
            for n in range(count):
                # The first worker of a lane polls; the others wait to be woken (by a new step, or by a sibling
                # that found more than it can take), so sixteen idle camera workers are not sixteen claims a second.
                runner = self._runner(steps, batch=1 if count > 1 else None, polls=n == 0, lane=lane)
                self.runners.append(runner)
                self._lanes.setdefault(lane, []).append(runner)
                self._threads.append(threading.Thread(target=runner.run_forever, name=f"{lane}-{n}", daemon=True))
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.scheduler.add_job(self.wake, "interval", seconds=5, id="wake_runner", max_instances=1, coalesce=True)
        schedule_sweeps(self.scheduler, services)  # expiry and retention: each a work item per period
        services.wake_runner = self.wake
        self.signals = (
            None if services.db.is_sqlite else WorkSignals(services.db.url, self.wake, on_state=self._signals)
        )

    def _runner(self, steps: dict[str, Any], *, batch: int | None, polls: bool, lane: Lane) -> Runner:
        tuning = self.services.config.business.runner
        idle_wait_s = tuning.idle_wait_s if polls else max(30.0, tuning.idle_wait_s)
        return Runner(
            db=self.services.db,
            steps=steps,
            dependencies=self.services.dependencies(),
            clock=self.services.clock,
            # One step claimed at a time when a lane has several workers: a batch would sit behind its first step.
            settings=RunnerSettings(
                lease_s=tuning.lease_s,
                batch=batch or tuning.batch,
                max_attempts=tuning.max_attempts,
                idle_wait_s=idle_wait_s,
            ),
            on_step=lambda kind, outcome: self.services.metrics.steps.labels(kind, outcome).inc(),
            on_dead=ON_DEAD,
            on_enqueued=self.wake,
            on_full_batch=lambda: self._wake_lane(lane),
            waiting_room=self.waiting_rooms[lane],
        )

    def wake(self, kinds: Iterable[str] | None = None) -> None:
        """New work: wake one idle worker of each lane it belongs to (every lane when unknown).

        One, not all: each woken worker claims in a write transaction, and on SQLite those queue behind the POS
        intake's. When none is idle, the busy ones are told, so they claim again before they would wait."""
        lanes = set(Lane) if kinds is None else {self._lane_of[k] for k in kinds if k in self._lane_of}
        for lane in lanes:
            self._wake_lane(lane)

    def _wake_lane(self, lane: Lane) -> None:
        runners = self._lanes.get(lane, [])
        idle = next((r for r in runners if r.idle), None)
        if idle is not None:
            idle.idle = False  # taken: the next wake (another picture ready) goes to another idle worker
        for runner in [idle] if idle is not None else runners:
            runner.wake()

    def _signals(self, state: str) -> None:
        self.services.component_state["wakeups"] = state

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        self.scheduler.start()
        if self.signals is not None:
            self.signals.start()
        self.services.component_state["runner"] = "running"

    def stop(self, timeout_s: float = 30) -> None:
        self.services.component_state["runner"] = "stopping"
        self.scheduler.shutdown(wait=False)
        if self.signals is not None:
            self.signals.stop()
        for runner in self.runners:
            runner.stop()
        for lane, room in self.waiting_rooms.items():
            parked = room.close()
            for running in parked:  # another process starts them again, with a new request to the camera
                self._lanes[lane][0].give_back(running)
            if parked:
                log.info("gave back %d %s step(s) that were waiting", len(parked), lane)
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning(
                    "%s still busy after %.0f s; its lease will expire and the step will run again",
                    thread.name,
                    timeout_s,
                )
        self.services.component_state["runner"] = "stopped"


def serve(config: Config) -> None:
    """One process: waitress on HOST:PORT, the background runner, the Webex transport and the entrance watch."""
    services = prepare(config)
    background = Background(services)
    app = create_app(services)
    sockets: dict[int, Any] = {}
    # Threads, body size, request deadline and connection limits: bot/http_server.py.
    server = waitress_server(app, sockets=sockets, host=config.env.host, port=config.env.port)
    stop = _stop_on_signals()
    background.start()
    listeners = start_listeners(services)
    log.info("serving on http://%s:%s (runner in this process)", config.env.host, config.env.port)
    try:
        _serve_until(stop, server, sockets)
    finally:
        stop_listeners(listeners)
        background.stop()
        services.close()
        log.info("stopped cleanly")


def _serve_until(stop: threading.Event, server: Any, sockets: dict[int, Any], grace_s: float = 20) -> None:
    """waitress's loop, run by us so a signal can stop it gracefully: its own ``run()`` ends on
    SystemExit without flushing the answers of requests still in flight, which a POS would then resend."""
    from waitress import wasyncore
    from waitress.channel import HTTPChannel
    from waitress.server import BaseWSGIServer

    def turn(timeout_s: float) -> None:
        wasyncore.loop(timeout=timeout_s, use_poll=server.adj.asyncore_use_poll, map=sockets, count=1)

    while not stop.is_set():
        turn(server.adj.asyncore_loop_timeout)
    listeners = [d for d in list(sockets.values()) if isinstance(d, BaseWSGIServer)]
    for listener in listeners:  # stop accepting; the listeners' wake-up pipes stay open for the drain
        listener.accepting = False
        listener.del_channel()
        listener.socket.close()
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        channels = [d for d in list(sockets.values()) if isinstance(d, HTTPChannel)]
        busy = [c for c in channels if c.requests or c.request is not None or c.total_outbufs_len]
        for idle in set(channels) - set(busy):
            idle.will_close = True  # keep-alive connections with nothing in flight
        if not channels:
            break
        turn(0.05)
    else:
        log.warning("stopping with requests still in flight after %.0f s; their senders will retry", grace_s)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
    wasyncore.close_all(sockets)


def worker(config: Config) -> None:
    services = prepare(config)
    background = Background(services)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    background.start()
    listeners = start_listeners(services)
    log.info("worker running")
    stop.wait()
    stop_listeners(listeners)
    background.stop()
    services.close()
    log.info("worker stopped cleanly")


def web(config: Config) -> None:
    """HTTP only, under gunicorn: stores what arrives; the worker process does the rest."""
    from gunicorn.app.base import BaseApplication

    migrate.upgrade(config.env.database_url)

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{config.env.host}:{config.env.port}")
            self.cfg.set("workers", 2)
            for name, value in gunicorn_settings().items():  # slow clients and header sizes: bot/http_server.py
                self.cfg.set(name, value)
            self.cfg.set("graceful_timeout", 20)
            # gunicorn's control socket (for gunicornc) lives in $HOME and would be shared, and taken over, by every
            # web on the host; nothing here uses it, and a web process keeps no file of its own.
            self.cfg.set("control_socket_disable", True)

        def load(self):
            # Built in each worker after the fork: database connections must not cross a fork.
            services = build_services(config)
            services.component_state["runner"] = "in the worker process"
            return create_app(services)

    _Gunicorn().run()


def _stop_on_signals() -> threading.Event:
    """SIGTERM and Ctrl-C set an event; nothing is raised into whatever the main thread was doing."""
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    return stop
