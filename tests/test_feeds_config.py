"""The feed mapping keys in the configuration: optional, well-formed, and each naming one place."""

from __future__ import annotations

import pytest
import yaml

from core.config import ConfigError, load_config
from tests.conftest import minimal_business

ENV = {"POS_WEBHOOK_SECRET": "s" * 32}


def problems(business: dict) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(ENV, yaml.safe_dump(business))
    return raised.value.problems


def test_feed_keys_are_optional_and_read():
    business = minimal_business()
    business["stores"][0]["square_location_id"] = "L88917AVBK2S5"
    business["stores"][0]["registers"][0].update(stripe_reader_id="tmr_A", square_device_id="device:995CS397A6475287")
    store = load_config(ENV, yaml.safe_dump(business)).business.stores[0]
    assert store.square_location_id == "L88917AVBK2S5"
    assert (store.registers[0].stripe_reader_id, store.registers[0].square_device_id) == (
        "tmr_A",
        "device:995CS397A6475287",
    )
    assert (store.registers[1].stripe_reader_id, store.registers[1].square_device_id) == (None, None)


def test_a_reader_or_device_on_two_registers_is_refused_at_each_repeat():
    business = minimal_business()
    business["stores"].append(
        {
            "id": "store-002",
            "name": "Jardim",
            "timezone": "America/Sao_Paulo",
            "registers": [
                {
                    "id": "reg-1",
                    "camera_serial": "Q2XX-BBBB-0001",
                    "stripe_reader_id": "tmr_A",
                    "square_device_id": "device:1",
                }
            ],
        }
    )
    business["stores"][0]["registers"][0].update(stripe_reader_id="tmr_A", square_device_id="device:1")
    found = problems(business)
    assert any(
        p.startswith(
            "stores.1.registers.0.stripe_reader_id: 'tmr_A' appears more than once "
            "(first at stores.0.registers.0.stripe_reader_id)"
        )
        for p in found
    )
    assert any(p.startswith("stores.1.registers.0.square_device_id: 'device:1' appears more than once") for p in found)


def test_a_square_location_on_two_stores_is_refused():
    business = minimal_business()
    business["stores"].append(
        {"id": "store-002", "name": "Jardim", "timezone": "America/Sao_Paulo", "square_location_id": "L1"}
    )
    business["stores"][0]["square_location_id"] = "L1"
    assert any(p.startswith("stores.1.square_location_id: 'L1' appears more than once") for p in problems(business))


def test_a_processor_id_with_spaces_is_refused():
    business = minimal_business()
    business["stores"][0]["registers"][0]["stripe_reader_id"] = "tmr A"
    assert any(p.startswith("stores.0.registers.0.stripe_reader_id: has the wrong form") for p in problems(business))
