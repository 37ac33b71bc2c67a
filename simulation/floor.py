"""Who stands at which register when, and what that register's camera sees: the shop floor of the demo.

The simulated POS steps a customer up to a register just before it posts the payment; the
simulated camera asks the floor for the picture of a register at a moment (now for a live
snapshot, the payment's time for an exact one). A customer stays at the till until the next one
steps up, so a late live snapshot shows the next customer, as a real camera would.
"""

from __future__ import annotations

import bisect
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from simulation import products, scenes

JPEG_QUALITY = 90


@dataclass(frozen=True)
class Customer:
    """A checkout as the camera sees it: people at the till and packages on the counter."""

    people: tuple[scenes.Placement, ...] = ()
    packages: tuple[products.Placement, ...] = ()


@dataclass
class _Register:
    starts: list[float] = field(default_factory=list)  # unix times, ascending
    customers: list[Customer] = field(default_factory=list)
    pictures: dict[int, bytes] = field(default_factory=dict)  # visit index -> JPEG (a still scene looks the same)


class Floor:
    """Thread-safe: the POS writes, the camera's request threads read."""

    def __init__(self, serials: list[str], *, clock: Callable[[], float] = time.time):
        self._registers = {serial: _Register() for serial in serials}
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def serials(self) -> frozenset[str]:
        return frozenset(self._registers)

    def step_up(
        self, serial: str, customer: Customer, *, at: float | None = None, picture: bytes | None = None
    ) -> None:
        """``customer`` is at the register from ``at`` (default now) until the next one steps up.

        ``picture``: the JPEG the camera shows of this visit, composed ahead (``compose(customer, seed=…)``),
        so that no camera request spends the time drawing it (a benchmark's stand-in shares the machine).
        """
        moment = self._clock() if at is None else at
        with self._lock:
            register = self._registers[serial]
            if register.starts and moment < register.starts[-1]:
                raise ValueError("customers step up in time order")
            register.starts.append(moment)
            register.customers.append(customer)
            if picture is not None:
                register.pictures[len(register.customers) - 1] = picture

    def picture(self, serial: str, at: float | None = None) -> bytes:
        """JPEG of what the register's camera sees at ``at`` (default now); an empty counter before anyone."""
        moment = self._clock() if at is None else at
        with self._lock:
            register = self._registers[serial]
            index = bisect.bisect_right(register.starts, moment) - 1
            cached = register.pictures.get(index)
            customer = register.customers[index] if index >= 0 else Customer()
        if cached is not None:
            return cached
        image = compose(customer, seed=index + 1)
        with self._lock:
            return register.pictures.setdefault(index, image)


def compose(customer: Customer, *, seed: int = 0) -> bytes:
    """The register camera's JPEG: people behind the counter (scenes), packages on it (products)."""
    scene = scenes.compose_scene(customer.people, seed=seed)
    if not customer.packages:
        return scene.image
    picture = Image.open(io.BytesIO(scene.image)).convert("RGB")
    for package in customer.packages:
        picture = products.paste_package(picture, package)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
