"""core/config.py: every problem names its key path and YAML line; the environment is validated too."""

from __future__ import annotations

import copy

import pytest
import yaml

from core.config import ConfigError, load_config
from tests.conftest import REPO, minimal_business
from tests.served import run_check_config

ENV = {"POS_WEBHOOK_SECRET": "x" * 32}
SOURCE = "flp.yaml"


def dump(business: dict) -> str:
    return yaml.safe_dump(business, sort_keys=False)


def problems_of(business: dict | None = None, *, environ: dict | None = None, text: str | None = None) -> list[str]:
    text = dump(business) if text is None else text
    with pytest.raises(ConfigError) as caught:
        load_config(ENV if environ is None else environ, text, source=SOURCE)
    return caught.value.problems


def line(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing ``needle``."""
    hits = [n for n, content in enumerate(text.splitlines(), start=1) if needle in content]
    return hits[occurrence - 1]


def only_problem(business: dict) -> str:
    found = problems_of(business)
    assert len(found) == 1, found
    return found[0]


def two_stores() -> dict:
    business = minimal_business()
    second = copy.deepcopy(business["stores"][0])
    second["id"] = "store-002"
    second["registers"] = [{"id": "reg-1", "camera_serial": "Q2XX-BBBB-0001"}]
    business["stores"].append(second)
    return business


def test_committed_config_is_valid_for_serve():
    config = load_config(ENV, (REPO / "config" / "flp.yaml").read_text(encoding="utf-8"))
    config.require_for("serve")
    assert [s.id for s in config.business.stores] == ["store-001", "store-002"]
    assert config.business.store("store-001").register("reg-2").camera_serial == "Q2XX-AAAA-0002"
    assert config.env.pos_webhook_secret.get_secret_value() == ENV["POS_WEBHOOK_SECRET"]


def test_unknown_top_level_key_names_it_and_its_line():
    business = minimal_business()
    business["trigae"] = {"capture_all": True}
    problem = only_problem(business)
    assert problem.startswith("trigae: unknown key")
    assert f"({SOURCE}, line {line(dump(business), 'trigae:')})" in problem


def test_unknown_nested_key_names_its_full_path():
    business = minimal_business()
    business["stores"][0]["registers"][1]["camera"] = "Q2XX-AAAA-0003"
    problem = only_problem(business)
    assert problem.startswith("stores.0.registers.1.camera: unknown key")
    assert f"line {line(dump(business), 'camera: Q2XX-AAAA-0003')})" in problem


def test_missing_required_field_is_named():
    business = minimal_business()
    del business["stores"][0]["timezone"]
    assert only_problem(business).startswith("stores.0.timezone: required")


def test_bad_timezone():
    business = minimal_business()
    business["stores"][0]["timezone"] = "America/Atlantis"
    problem = only_problem(business)
    assert problem.startswith("stores.0.timezone: unknown time zone 'America/Atlantis'")
    assert f"line {line(dump(business), 'Atlantis')})" in problem


def test_bad_camera_serial():
    business = minimal_business()
    business["stores"][0]["registers"][0]["camera_serial"] = "q2xx-aaaa-1"
    problem = only_problem(business)
    assert problem.startswith("stores.0.registers.0.camera_serial:") and "not a Meraki serial" in problem
    assert f"line {line(dump(business), 'q2xx-aaaa-1')})" in problem


@pytest.mark.parametrize(
    "zone, words",
    [
        ([0, 0, 1.2, 1], "between 0 and 1"),
        ([-0.1, 0, 0.5, 1], "between 0 and 1"),
        ([0.6, 0, 0.2, 1], "x0 < x1"),
        ([0, 0.5, 1, 0.5], "y0 < y1"),
    ],
)
def test_customer_zone_out_of_range_or_inverted(zone, words):
    business = minimal_business()
    business["stores"][0]["registers"][0]["customer_zone"] = zone
    problem = only_problem(business)
    assert problem.startswith("stores.0.registers.0.customer_zone:") and words in problem
    assert f"line {line(dump(business), 'customer_zone:')})" in problem


def test_duplicate_store_ids_point_at_the_repeat():
    business = two_stores()
    business["stores"][1]["id"] = "store-001"
    problem = only_problem(business)
    assert problem.startswith("stores.1.id: 'store-001' appears more than once (first at stores.0.id)")
    assert f"line {line(dump(business), 'id: store-001', occurrence=2)})" in problem


def test_duplicate_camera_serial_across_stores():
    business = two_stores()
    business["stores"][1]["registers"][0]["camera_serial"] = "Q2XX-AAAA-0002"
    problem = only_problem(business)
    assert problem.startswith("stores.1.registers.0.camera_serial: 'Q2XX-AAAA-0002' appears more than once")
    assert "first at stores.0.registers.1.camera_serial" in problem
    assert f"line {line(dump(business), 'Q2XX-AAAA-0002', occurrence=2)})" in problem


def test_entrance_camera_reusing_a_register_camera_is_a_duplicate():
    business = minimal_business()
    business["stores"][0]["entrance_cameras"] = ["Q2XX-AAAA-0001"]
    assert only_problem(business).startswith("stores.0.entrance_cameras.0: 'Q2XX-AAAA-0001' appears more than once")


def test_person_with_unknown_store():
    business = two_stores()
    business["people"][0]["stores"] = ["store-002", "store-404"]
    problem = only_problem(business)
    assert problem.startswith("people.0.stores.1: unknown store 'store-404'")
    assert f"line {line(dump(business), 'store-404')})" in problem


def test_store_with_unknown_region():
    business = minimal_business()
    business["stores"][0]["region"] = "north"
    business["regions"] = [{"id": "south"}]
    problem = only_problem(business)
    assert problem.startswith("stores.0.region: 'north' is not in regions")
    assert f"line {line(dump(business), 'region: north')})" in problem


def test_review_threshold_above_match_threshold():
    business = minimal_business()
    business["recognition"] = {"match_threshold": 85, "review_threshold": 88}
    problem = only_problem(business)
    assert problem.startswith("recognition.review_threshold: must not be above match_threshold")
    assert f"line {line(dump(business), 'review_threshold:')})" in problem


def test_default_expiry_above_max():
    business = minimal_business()
    business["enrollment"] = {"default_expiry_days": 400, "max_expiry_days": 365}
    problem = only_problem(business)
    assert problem.startswith("enrollment.default_expiry_days: must not exceed max_expiry_days")
    assert f"line {line(dump(business), 'default_expiry_days:')})" in problem


@pytest.mark.parametrize("text", ["- stores\n- people\n", "just words\n", ""])
def test_yaml_that_is_not_a_mapping(text):
    assert problems_of(text=text) == [f"{SOURCE}: must be a mapping with stores, people, rules, …"]


def test_invalid_yaml_says_where():
    [problem] = problems_of(text="stores:\n  - id: store-001\n    name: [Centro\n")
    assert problem.startswith("not valid YAML:") and problem.endswith(f"({SOURCE}, line 4)")


def test_a_key_given_twice_is_an_error_not_silently_the_last():
    text = dump(minimal_business()) + "triage: {capture_all: true}\ntriage: {capture_all: false}\n"
    assert problems_of(text=text) == [
        f"triage: appears more than once; only the last one would count ({SOURCE}, line {line(text, 'triage:', 2)})"
    ]


def test_every_problem_is_reported_together():
    business = minimal_business()
    business["colour"] = "red"
    business["stores"][0]["timezone"] = "Nowhere/Land"
    del business["people"][0]["role"]
    business["camera"] = {"live_max_age_s": -1}
    found = problems_of(business, environ={"PORT": "eighty"})
    keys = sorted(p.split(":")[0] for p in found)
    assert keys == ["PORT", "camera.live_max_age_s", "colour", "people.0.role", "stores.0.timezone"]
    assert all(f"({SOURCE}, line " in p for p in found if not p.startswith("PORT"))


def test_port_must_be_an_integer():
    [problem] = problems_of(minimal_business(), environ={**ENV, "PORT": "80a"})
    assert problem.startswith("PORT:") and "integer" in problem


def test_log_level_in_lower_case_is_accepted():
    config = load_config({**ENV, "LOG_LEVEL": "debug"}, dump(minimal_business()))
    assert config.env.log_level == "DEBUG"


def test_invalid_webex_transport():
    [problem] = problems_of(minimal_business(), environ={**ENV, "WEBEX_TRANSPORT": "carrier-pigeon"})
    assert problem.startswith("WEBEX_TRANSPORT:") and "websocket" in problem and "webhook" in problem


def test_empty_environment_variables_count_as_unset():
    config = load_config({"POS_WEBHOOK_SECRET": "", "API_TOKEN": "", "PORT": ""}, dump(minimal_business()))
    assert config.env.pos_webhook_secret is None and config.env.api_token is None and config.env.port == 8080
    with pytest.raises(ConfigError, match="POS_WEBHOOK_SECRET"):
        config.require_for("serve")


def test_serve_requires_the_pos_webhook_secret_but_demo_does_not():
    config = load_config({}, dump(minimal_business()))
    with pytest.raises(ConfigError) as caught:
        config.require_for("serve")
    assert [p.split(":")[0] for p in caught.value.problems] == ["POS_WEBHOOK_SECRET"]
    config.require_for("demo")


def test_web_refuses_sqlite():
    config = load_config({**ENV, "DATABASE_URL": "sqlite:///data/flp.db"}, dump(minimal_business()))
    with pytest.raises(ConfigError, match="DATABASE_URL: .*PostgreSQL"):
        config.require_for("web")
    split = {
        **ENV,
        "DATABASE_URL": "postgresql+psycopg://db/flp",
        "SESSION_SECRET": "s" * 32,
        "EVIDENCE_URL": "s3://flp-evidence",
    }
    load_config(split, dump(minimal_business())).require_for("web")


def test_web_and_worker_need_evidence_in_object_storage():
    environ = {**ENV, "DATABASE_URL": "postgresql+psycopg://db/flp", "SESSION_SECRET": "s" * 32}
    for mode in ("web", "worker"):
        with pytest.raises(ConfigError) as caught:
            load_config(environ, dump(minimal_business())).require_for(mode)
        assert [p.split(":")[0] for p in caught.value.problems] == ["EVIDENCE_URL"]
    load_config(environ, dump(minimal_business())).require_for("serve")  # one machine: files under DATA_DIR


@pytest.mark.parametrize(
    "url, location",
    [
        ("s3://flp-evidence", ("flp-evidence", "")),
        ("s3://flp-evidence/", ("flp-evidence", "")),
        ("s3://flp.evidence-01/stores/south/", ("flp.evidence-01", "stores/south")),
    ],
)
def test_evidence_url_names_a_bucket_and_a_prefix(url, location):
    env = load_config({**ENV, "EVIDENCE_URL": url}, dump(minimal_business())).env
    assert env.evidence_location() == location


def test_evidence_unset_or_empty_stays_under_data_dir():
    for environ in (ENV, {**ENV, "EVIDENCE_URL": ""}):
        assert load_config(environ, dump(minimal_business())).env.evidence_location() is None


@pytest.mark.parametrize(
    "url",
    [
        "file:///srv/evidence",
        "https://flp-evidence.s3.amazonaws.com/x",
        "s3://",
        "s3://ab",  # too short
        "s3://Flp-Evidence",  # upper case
        "s3://-flp",
        "s3://flp..evidence",
        "s3://192.168.0.1",
        "s3://" + "a" * 64,
        "s3://flp/with space",
        "s3://flp/a//b",
        "s3://flp/../up",
        "s3://user:secret@flp",
    ],
)
def test_evidence_url_that_is_not_a_bucket_is_refused(url):
    found = problems_of(minimal_business(), environ={**ENV, "EVIDENCE_URL": url})
    assert len(found) == 1 and found[0].startswith("EVIDENCE_URL"), found
    assert "secret" not in found[0]  # the value is not echoed: it may carry a credential


def test_s3_endpoint_is_a_url():
    env = load_config({**ENV, "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000/"}, dump(minimal_business())).env
    assert env.s3_endpoint() == "http://127.0.0.1:9000"
    assert load_config(ENV, dump(minimal_business())).env.s3_endpoint() is None
    assert problems_of(minimal_business(), environ={**ENV, "AWS_ENDPOINT_URL_S3": "not a url"})[0].startswith(
        "AWS_ENDPOINT_URL_S3"
    )


def test_webhook_transport_requires_its_secret():
    environ = {**ENV, "WEBEX_TRANSPORT": "webhook", "WEBEX_ACCESS_TOKEN": "bot-token"}
    with pytest.raises(ConfigError, match="WEBEX_WEBHOOK_SECRET"):
        load_config(environ, dump(minimal_business())).require_for("serve")
    load_config({**environ, "WEBEX_WEBHOOK_SECRET": "hook" * 8}, dump(minimal_business())).require_for("serve")


def test_role_of_matches_lower_cased_email_and_store():
    business = two_stores()
    business["people"].append({"email": "Carla@Example.com", "role": "security", "stores": ["*"]})
    roles = load_config(ENV, dump(business)).business
    assert roles.role_of("ANA@example.COM", "store-001") == "manager"
    assert roles.role_of("ana@example.com", "store-002") is None
    assert roles.role_of("carla@example.com", "store-002") == "security"
    assert roles.role_of("nobody@example.com", "store-001") is None


def test_check_config_lists_every_problem_with_its_line(tmp_path):
    business = minimal_business()
    business["stores"][0]["timezone"] = "Nowhere/Land"
    business["stores"][0]["registers"][0]["colour"] = "red"
    text = dump(business)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = run_check_config(bad)
    assert result.returncode == 1
    listed = [line_ for line_ in result.stderr.splitlines() if line_.startswith("  - ")]
    assert f"  - stores.0.timezone: unknown time zone 'Nowhere/Land' ({bad}, line {line(text, 'Nowhere')})" in listed
    assert any(
        p.startswith("  - stores.0.registers.0.colour: unknown key") and f"line {line(text, 'colour')})" in p
        for p in listed
    )
    assert any(p.startswith("  - POS_WEBHOOK_SECRET: required") for p in listed)
    assert len(listed) == 3


def test_check_config_passes_on_the_committed_config():
    result = run_check_config(REPO / "config" / "flp.yaml", POS_WEBHOOK_SECRET="s" * 32)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration OK: 2 stores, 3 registers")


def test_bad_rule_is_refused_with_its_key_line_and_cause():
    business = minimal_business()
    business["rules"] = [
        {"name": "ok", "when": "amount >= 500", "message": "Large sale of {amount}"},
        {"name": "typo", "when": "risk_scor > 5", "message": "Risky"},
    ]
    text = dump(business)
    problem = only_problem(business)
    assert problem.startswith("rules.1.when: ")
    assert "risk_scor" in problem and "risk_score" in problem  # names the unknown fact and suggests the right one
    assert f"line {line(text, 'risk_scor')}" in problem


def test_rule_template_and_cooldown_are_checked():
    business = minimal_business()
    business["rules"] = [{"name": "r", "when": "matched", "message": "hi {__class__}", "cooldown": "10 minutes"}]
    found = problems_of(business)
    assert any(p.startswith("rules.0.message: ") and "__class__" in p for p in found)
    assert any(p.startswith("rules.0.cooldown: ") for p in found)


def test_missing_catalog_reference_image_is_named(tmp_path):
    business = minimal_business()
    business["catalog"] = [{"sku": "789", "label": "Bottle", "reference_images": ["products/bottle.png"]}]
    source = tmp_path / "flp.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config({"POS_WEBHOOK_SECRET": "s" * 32}, dump(business), source=str(source))
    assert any(p.startswith("catalog.0.reference_images.0: no such file") for p in caught.value.problems)
    (tmp_path / "products").mkdir()
    (tmp_path / "products" / "bottle.png").write_bytes(b"\x89PNG")
    config = load_config({"POS_WEBHOOK_SECRET": "s" * 32}, dump(business), source=str(source))
    assert config.config_dir == tmp_path


def test_configuration_reference_is_generated_from_the_models():
    from bot.config_docs import render

    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == render(), "regenerate: .venv/bin/python -m bot.config_docs > docs/configuration.md"


def test_passwords_inside_urls_are_secrets_for_the_log_redactor():
    environ = {
        **ENV,
        "MQTT_URL": "mqtt://door:broker-pw@127.0.0.1:1883",
        "DATABASE_URL": "postgresql+psycopg://flp:db-pw@127.0.0.1/flp",
    }
    secrets = load_config(environ, dump(minimal_business()), source=SOURCE).env.secrets()
    assert {"broker-pw", "db-pw"} <= set(secrets)


def test_mqtt_url_must_be_an_mqtt_url():
    found = problems_of(minimal_business(), environ={**ENV, "MQTT_URL": "http://127.0.0.1:1883"})
    assert found == ["MQTT_URL: must be mqtt://host:port or mqtts://host:port"]
