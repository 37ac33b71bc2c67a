"""A real MQTT broker for the tests: Debian's mosquitto on 127.0.0.1, one per test session, on a free port.

Tests may kill it and start it again on the same port (a broker restart); every test that uses
``broker`` gets it running. Without mosquitto the tests skip, except under ``CI=true`` (they fail).
"""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.real_parts import require_or_skip
from tests.served import wait_for

MOSQUITTO = Path("/usr/sbin/mosquitto")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Broker:
    port: int
    folder: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.folder / "mosquitto.conf"
        config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        log = (self.folder / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([str(MOSQUITTO), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: self.process.poll() is not None or _accepting(self.port), what="mosquitto to listen")
        if self.process.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {(self.folder / 'mosquitto.log').read_text()[-500:]}")

    def kill(self) -> None:
        """As a crash: SIGKILL, so clients see their connection drop, not a polite goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Broker:
    if not MOSQUITTO.exists():
        require_or_skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does)")
    broker = Broker(_free_port(), tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.kill()


@pytest.fixture
def broker(mosquitto: Broker) -> Broker:
    mosquitto.ensure_running()  # an earlier test may have killed it
    return mosquitto


class Publisher:
    """Plays the camera: publishes MV Sense messages, each acknowledged by the broker before returning."""

    def __init__(self, broker: Broker):
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-camera")
        self._client.connect("127.0.0.1", broker.port)
        self._client.loop_start()

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self._client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(timeout=10)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def publisher(broker: Broker) -> Publisher:
    client = Publisher(broker)
    yield client
    client.close()
