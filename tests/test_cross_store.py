"""Cross-store recognition (issue 8, part 3): a person enrolled at one store is recognised at the other
stores of its region when the region shares its watchlist — at a checkout and at the entrance — and
never in another region's stores.

Stores: A (store-001) and B (store-002) in region south, C (store-003) in region north. P-1 is
enrolled at A. Recognition is the fake backend, which honours the watchlist scope it is given.
"""

from __future__ import annotations

import pytest
import yaml

from bot.app import build_services
from bot.runner import Runner
from bot.steps import STEPS
from handlers.pipeline.entrance import record_visit
from storage.uow import UnitOfWork
from tests import factories
from tests.checkouts import URL, body_now
from tests.conftest import REPO
from tests.fakes import FakeCamera, FakeFaceBackend, face

STORES = {"A": "store-001", "B": "store-002", "C": "store-003"}
DOORS = {"A": "Q2XX-AAAA-0009", "B": "Q2XX-BBBB-0009", "C": "Q2XX-CCCC-0009"}


def _store(letter: str, region: str) -> dict:
    return {
        "id": STORES[letter],
        "name": f"Store {letter}",
        "timezone": "America/Sao_Paulo",
        "region": region,
        "meraki_org_id": "1",
        "entrance_cameras": [DOORS[letter]],
        "registers": [{"id": "reg-1", "camera_serial": f"Q2XX-{letter * 4}-0001"}],
    }


@pytest.fixture(params=[True, False], ids=["shared", "not-shared"])
def share(request: pytest.FixtureRequest) -> bool:
    return request.param


@pytest.fixture
def business(share: bool) -> dict:
    return {
        "stores": [_store("A", "south"), _store("B", "south"), _store("C", "north")],
        "regions": [{"id": "south", "share_watchlist": share}, {"id": "north", "share_watchlist": True}],
        "people": [{"email": "carla@example.com", "role": "security", "stores": ["*"]}],
        "rules": yaml.safe_load((REPO / "config" / "flp.yaml").read_text())["rules"],
    }


@pytest.fixture
def environ(environ: dict) -> dict:
    return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key"}


@pytest.fixture
def services(config, clock):
    faces = FakeFaceBackend(
        faces=[face((0.1, 0.2, 0.3, 0.5), name="P-1's face")], similarity={("P-1's face", "P-1"): 96.0}
    )
    built = build_services(config, clock=clock, camera=FakeCamera(), faces=faces, products=None, messenger=None)
    factories.add(built.db, factories.watchlist_person(at=clock(), store_id=STORES["A"], region_id="south"))
    yield built
    built.db.dispose()


def run(services, clock) -> None:
    Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle()


def alerted_stores(services) -> set[str]:
    with UnitOfWork(services.db) as uow:
        return {a.store_id for a in uow.alerts.list() if a.person_id == "P-1" and a.rule == "watchlist_match"}


def expected(share: bool) -> set[str]:
    return {STORES["A"], STORES["B"]} if share else {STORES["A"]}


def test_recognised_at_the_regions_checkouts_only_when_shared(services, post_signed, clock, share):
    for letter in "ABC":
        body = body_now(clock, transaction_id=f"T-{letter}", store_id=STORES[letter], register_id="reg-1")
        assert post_signed(URL, body).status_code == 202
    run(services, clock)
    assert alerted_stores(services) == expected(share)


def test_recognised_at_the_regions_entrances_only_when_shared(services, clock, share):
    for letter in "ABC":
        with UnitOfWork(services.db, write=True) as uow:
            record_visit(uow, serial=DOORS[letter], at_ms=int(clock().timestamp() * 1000), window_s=30, now=clock())
            uow.commit()
    run(services, clock)
    assert alerted_stores(services) == expected(share)
    # Store C is in another region: its entrance never searched P-1, and with nobody in its scope took no picture.
    assert DOORS["C"] not in {serial for serial, _org, _at in services.camera.calls}
