"""Entrance watch: Meraki MV Sense messages over MQTT become entrance-visit work items.

An entrance camera publishes its person count (``/merakimv/<serial>/0``) and the objects it
tracks (``/merakimv/<serial>/raw_detections``) several times a second. The listener notices only
someone appearing — the count rising, or a person object it had not seen — and records at most one
visit per camera per window, as a database row (handlers/pipeline/entrance.py takes the picture). So a
burst of messages never turns into a burst of camera API calls, and nothing is lost between the
message and the step: background work is a row first.

paho-mqtt runs the connection in its own thread and reconnects with back-off when the broker goes
away; the state ("connected", "reconnecting", "off") is in ``component_state["broker"]`` for
``status`` and /readyz.
"""

from __future__ import annotations

import json
import logging
import secrets
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.clock import Clock
from handlers.pipeline.entrance import record_visit
from storage.db import Database
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)
# One picture per entrance camera per window (camera.entrance_window_s). Shorter than a rule's cool-down
# on purpose: a watchlist person coming in a minute after someone else must still be pictured. At 30 s
# an entrance camera costs at most 2 snapshot requests a minute of its organisation's 10 requests a second.
ENTRANCE_WINDOW_S = 30.0
MAX_PAYLOAD_BYTES = 64 * 1024  # MV Sense messages are a few hundred bytes; anything bigger is not theirs
# A message's ts names the window (so every worker that hears it records the same row); a camera
# clock this far from ours is wrong, and our own time is used instead.
MAX_CLOCK_SKEW_S = 300
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
CONNECTED, RECONNECTING, OFF = "connected", "reconnecting", "off"


# --- is this someone new at the door? (pure) -------------------------------------------------------


def parse_topic(topic: str) -> tuple[str, str] | None:
    """``/merakimv/<serial>/<channel>`` → (serial, channel); anything else → None."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "" or parts[1] != "merakimv":
        return None
    return parts[2], parts[3]


def parse_payload(raw: bytes | bytearray) -> dict[str, Any] | None:  # paho gives either
    if len(raw) > MAX_PAYLOAD_BYTES:
        return None
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def event_time_ms(payload: dict[str, Any], now_ms: int) -> int:
    ts = payload.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or abs(ts - now_ms) > MAX_CLOCK_SKEW_S * 1000:
        return now_ms
    return int(ts)


class AppearanceDetector:
    """Keeps, per camera, the last person count and the person objects tracked, and says when someone appears."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._people: dict[str, set[Any]] = {}

    def reset(self) -> None:
        """Forget everything (after a reconnect: what happened while away is unknown)."""
        self._counts.clear()
        self._people.clear()

    def observe(self, serial: str, channel: str, payload: dict[str, Any]) -> bool:
        if channel == "0":
            return self._count(serial, payload)
        if channel == "raw_detections":
            return self._objects(serial, payload)
        return False

    def _count(self, serial: str, payload: dict[str, Any]) -> bool:
        counts = payload.get("counts")
        count = counts.get("person") if isinstance(counts, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return False
        before, self._counts[serial] = self._counts.get(serial, 0), count
        return count > before

    def _objects(self, serial: str, payload: dict[str, Any]) -> bool:
        objects = payload.get("objects")
        if not isinstance(objects, list):
            return False
        people = {o.get("oid") for o in objects if isinstance(o, dict) and o.get("type") == "person"}
        people.discard(None)
        before, self._people[serial] = self._people.get(serial, set()), people
        return bool(people - before)


# --- the listener ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: Any) -> BrokerAddress:
        """``mqtt://[user:pass@]host[:1883]`` or ``mqtts://…[:8883]`` (pydantic AnyUrl or text)."""
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(str(url))
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError("MQTT_URL must look like mqtt://host:1883 or mqtts://host:8883")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            parts.hostname,
            parts.port or (8883 if tls else 1883),
            tls,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )


class EntranceWatch:
    """Subscribes to every entrance camera's topics and records one visit per camera per window."""

    def __init__(
        self,
        address: BrokerAddress,
        serials: Collection[str],
        *,
        record: Callable[[str, int], None],
        wake: Callable[[], None],
        clock: Clock,
        component_state: dict[str, str],
        window_s: float = ENTRANCE_WINDOW_S,
        reconnect_s: tuple[int, int] = (RECONNECT_MIN_S, RECONNECT_MAX_S),
    ):
        self._address, self._serials = address, frozenset(serials)
        self._record, self._wake, self._clock, self._state = record, wake, clock, component_state
        self._window_ms = int(window_s * 1000)
        self._detector = AppearanceDetector()
        self._last_window: dict[str, int] = {}
        self.messages_handled = 0  # every message, mine or not: lets tests and operators see it is listening
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"flp-entrance-{secrets.token_hex(4)}", clean_session=True
        )  # nothing queued while away: old appearances are stale
        self._client.reconnect_delay_set(*reconnect_s)
        if address.username is not None:
            self._client.username_pw_set(address.username, address.password)
        if address.tls:
            self._client.tls_set()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._set_state(OFF)

    @property
    def topics(self) -> list[str]:
        return [
            f"/merakimv/{serial}/{channel}" for serial in sorted(self._serials) for channel in ("0", "raw_detections")
        ]

    def start(self) -> None:
        """Connect in paho's thread; a broker that is down now is retried with back-off, like a lost one."""
        self._set_state(RECONNECTING)
        self._client.connect_async(self._address.host, self._address.port, keepalive=30)
        self._client.loop_start()
        log.info(
            "entrance watch: %d camera(s) via broker %s:%s", len(self._serials), self._address.host, self._address.port
        )

    def stop(self) -> None:
        self._set_state(OFF)
        self._client.disconnect()
        self._client.loop_stop()
        log.info("entrance watch stopped")

    # paho's callbacks, all on its network thread (so the detector needs no lock).

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if reason.is_failure:
            log.warning("entrance watch: broker refused the connection: %s", reason)
            return
        self._detector.reset()
        client.subscribe([(topic, 0) for topic in self.topics])  # QoS 0: the next message says the same

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[Any], _properties: Any
    ) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            log.warning("entrance watch: broker refused %d of %d subscription(s)", len(refused), len(reasons))
        self._set_state(CONNECTED)
        log.info("entrance watch: connected and subscribed")

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if self._state.get("broker") == OFF:
            return  # our own stop()
        self._set_state(RECONNECTING)
        log.warning("entrance watch: broker connection lost (%s); reconnecting", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._handle(message.topic, message.payload)
        except Exception:
            # paho would let the exception end its network thread: log, drop this message, keep listening.
            log.exception("entrance watch: a message of %s could not be recorded", message.topic)
        finally:
            self.messages_handled += 1

    def _handle(self, topic: str, raw: bytes | bytearray) -> None:
        where = parse_topic(topic)
        if where is None or where[0] not in self._serials:
            return
        serial, channel = where
        payload = parse_payload(raw)
        if payload is None or not self._detector.observe(serial, channel, payload):
            return
        at_ms = event_time_ms(payload, int(self._clock().timestamp() * 1000))
        window = at_ms // self._window_ms
        if self._last_window.get(serial) == window:
            return  # this window's visit is already a row: the burst stays in memory
        self._record(serial, at_ms)
        self._last_window[serial] = window  # only once the row exists: a failed write is tried on the next message
        self._wake()
        log.info("entrance camera %s: someone appeared; visit recorded", serial)

    def _set_state(self, state: str) -> None:
        self._state["broker"] = state


def visit_recorder(db: Database, clock: Clock, window_s: float = ENTRANCE_WINDOW_S) -> Callable[[str, int], None]:
    """Write an entrance visit as a work item (a no-op when that camera's window already has one)."""

    def record(serial: str, at_ms: int) -> None:
        with UnitOfWork(db, write=True) as work:
            record_visit(work, serial=serial, at_ms=at_ms, window_s=window_s, now=clock())
            work.commit()

    return record


def entrance_cameras(services: Services) -> list[str]:
    """Every store's entrance camera serials, or none (said in the log) when the watch cannot run here."""
    config = services.config
    serials = [serial for store in config.business.stores for serial in store.entrance_cameras]
    reason = (
        "MQTT_URL is not set"
        if config.env.mqtt_url is None
        else "no store has entrance cameras"
        if not serials
        else "the camera is off (MERAKI_DASHBOARD_API_KEY is not set)"
        if services.camera is None
        else None
    )
    if reason is not None:
        services.component_state["broker"] = OFF
        log.info("entrance watch off: %s", reason)
        return []
    return serials


def watch_entrances(
    services: Services, serials: Collection[str], *, reconnect_s: tuple[int, int] = (RECONNECT_MIN_S, RECONNECT_MAX_S)
) -> EntranceWatch:
    """Start listening to these entrance cameras (paho's thread); ``stop()`` ends it."""
    config = services.config
    window_s = config.business.camera.entrance_window_s
    watch = EntranceWatch(
        BrokerAddress.from_url(config.env.mqtt_url),
        serials,
        record=visit_recorder(services.db, services.clock, window_s),
        wake=lambda: services.wake_runner(),  # looked up at each call: Background sets it after build_services
        clock=services.clock,
        component_state=services.component_state,
        window_s=window_s,
        reconnect_s=reconnect_s,
    )
    watch.start()
    return watch


def start_entrance_watch(
    services: Services, *, reconnect_s: tuple[int, int] = (RECONNECT_MIN_S, RECONNECT_MAX_S)
) -> EntranceWatch | None:
    """Listen to every entrance camera in this process when MQTT_URL is set, some store has entrance cameras and
    the camera API is on; else None. (Several workers split the cameras instead: bot/listeners.py.)"""
    serials = entrance_cameras(services)
    return watch_entrances(services, serials, reconnect_s=reconnect_s) if serials else None


def share_of(serial: str, shares: int) -> int:
    """The share a camera belongs to: stable across processes and restarts (not Python's salted hash)."""
    return zlib.crc32(serial.encode()) % shares
