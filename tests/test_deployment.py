"""The deployment files: compose.yaml, .env.example, the Containerfile and deploy/install.sh agree with the product.

No container runs here (no engine, no registry); what can drift is checked instead: every variable compose
passes is one the product reads, the environment it gives web and worker passes their start-up check, the
Containerfile runs the install script as CI does (.ci/run installs with it for real), and the script's check
of an installed environment passes on ours and fails on an empty one.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError, EndpointConnectionError

from core.config import load_config
from core.config_env import EnvSettings
from tests.conftest import REPO

APP_SERVICES = ("create-bucket", "release", "web", "worker")
# Read by boto3 itself (the evidence store's client), and by load_config_from_environment.
BOTO3_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3"}
OUTSIDE_ENV_SETTINGS = BOTO3_VARIABLES | {"FLP_CONFIG"}
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::(?P<kind>[-?])(?P<rest>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))


def interpolate(value: str, dotenv: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}`` with the given .env."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match["name"], match["kind"], match["rest"]
        if dotenv.get(name):
            return dotenv[name]
        if kind == "?":
            raise KeyError(f"{name} is required by compose.yaml: {rest}")
        return rest if kind == "-" else ""

    return INTERPOLATION.sub(one, value)


def filled_env_example() -> dict[str, str]:
    """.env.example as an operator fills it: every empty secret given a made-up value of 64 hex digits."""
    values = {}
    for line in (REPO / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    required = {m["name"] for m in INTERPOLATION.finditer((REPO / "compose.yaml").read_text()) if m["kind"] == "?"}
    return {name: value or ("ab" * 32 if name in required else "") for name, value in values.items()}


def environment_of(compose: dict, service: str) -> dict[str, str]:
    dotenv = filled_env_example()
    return {
        name: interpolate(str(value), dotenv) for name, value in compose["services"][service]["environment"].items()
    }


def test_compose_runs_postgresql_a_bucket_the_release_web_and_two_workers(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "s3", *APP_SERVICES}
    assert services["release"]["command"] == ["db", "upgrade"]
    assert services["web"]["command"] == ["web"] and services["worker"]["command"] == ["worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in APP_SERVICES:
        assert services[name]["build"] == {"context": ".", "dockerfile": "Containerfile"}
    # web and worker start only after the schema and the bucket exist.
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {
            "release": {"condition": "service_completed_successfully"},
            "create-bucket": {"condition": "service_completed_successfully"},
        }
    assert services["release"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_every_variable_compose_passes_is_one_the_product_reads(compose: dict) -> None:
    known = {field.alias for field in EnvSettings.model_fields.values()} | OUTSIDE_ENV_SETTINGS
    for name in APP_SERVICES:
        unknown = set(compose["services"][name]["environment"]) - known
        assert unknown == set(), f"{name}: not read by the product: {sorted(unknown)}"


@pytest.mark.parametrize("mode", ["web", "worker"])
def test_the_environment_compose_gives_web_and_worker_passes_their_start_up_check(compose: dict, mode: str) -> None:
    environ = environment_of(compose, mode)
    assert environ["EVIDENCE_URL"].startswith("s3://") and environ["AWS_ENDPOINT_URL_S3"]
    assert environ["DATABASE_URL"].startswith("postgresql+psycopg://")
    config = load_config(environ, (REPO / "config" / "flp.yaml").read_text(encoding="utf-8"))
    config.require_for(mode)
    assert config.env.session_secret is not None and config.env.webex_access_token is None  # empty is unset


def test_env_example_names_every_variable_compose_reads() -> None:
    interpolated = {m["name"] for m in INTERPOLATION.finditer((REPO / "compose.yaml").read_text())}
    assert interpolated - set(filled_env_example()) == set()


def test_compose_refuses_to_start_without_the_secrets(compose: dict) -> None:
    with pytest.raises(KeyError, match="SESSION_SECRET"):
        interpolate(str(compose["services"]["web"]["environment"]["SESSION_SECRET"]), {})


def test_the_containerfile_runs_the_install_script_as_a_non_root_user() -> None:
    lines = [line.strip() for line in (REPO / "Containerfile").read_text(encoding="utf-8").splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    assert "RUN deploy/install.sh /opt/flp" in instructions
    [user] = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert user.split(":")[0] not in {"root", "0"}
    # The install runs as root (system libraries), before the switch; the product runs after it.
    assert instructions.index("RUN deploy/install.sh /opt/flp") < instructions.index(f"USER {user}")
    assert 'ENTRYPOINT ["python", "-m", "bot"]' in instructions


def test_secrets_and_local_state_stay_out_of_the_image() -> None:
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".venv", "data", ".git"} <= set(ignored)


def test_ci_installs_with_the_same_script() -> None:
    assert re.search(r"^deploy/install\.sh \S+", (REPO / ".ci" / "run").read_text(), re.MULTILINE)


def install_check(venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "deploy" / "install.sh"), "--check", str(venv)], capture_output=True, text=True, timeout=120
    )


def test_the_install_check_passes_on_an_environment_with_every_pin() -> None:
    done = install_check(Path(sys.prefix))
    assert done.returncode == 0, done.stderr
    assert "dlib and its face models, libpq and the time zones load" in done.stdout


def test_the_install_check_names_what_an_environment_lacks(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True, timeout=60)
    done = install_check(tmp_path / "venv")
    assert done.returncode == 1
    assert "flask: not installed, requirements.txt pins" in done.stderr


def load_create_bucket():
    spec = importlib.util.spec_from_file_location("create_bucket", REPO / "deploy" / "create_bucket.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeS3:
    """head_bucket answers from a script of outcomes; create_bucket records its arguments."""

    def __init__(self, *outcomes: Exception | None):
        self.outcomes = list(outcomes)
        self.created: list[dict] = []

    def head_bucket(self, Bucket: str) -> None:  # noqa: N803  (boto3's parameter names)
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome

    def create_bucket(self, **arguments: object) -> None:
        self.created.append(arguments)


def missing() -> ClientError:
    return ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadBucket")


def test_the_bucket_one_shot_creates_a_missing_bucket_once_the_store_answers() -> None:
    create_bucket = load_create_bucket()
    s3 = FakeS3(EndpointConnectionError(endpoint_url="http://s3:8333"), missing())
    assert create_bucket.ensure_bucket(s3, "flp-evidence", "us-east-1", wait_s=0) == "created"
    assert s3.created == [{"Bucket": "flp-evidence"}]
    elsewhere = FakeS3(missing())
    create_bucket.ensure_bucket(elsewhere, "flp-evidence", "eu-west-1", wait_s=0)
    assert elsewhere.created == [
        {"Bucket": "flp-evidence", "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}}
    ]


def test_the_bucket_one_shot_leaves_an_existing_bucket_and_fails_on_a_refusal() -> None:
    create_bucket = load_create_bucket()
    s3 = FakeS3(None)
    assert create_bucket.ensure_bucket(s3, "flp-evidence", None, wait_s=0) == "exists" and s3.created == []
    forbidden = ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadBucket")
    with pytest.raises(ClientError):
        create_bucket.ensure_bucket(FakeS3(forbidden), "flp-evidence", None, wait_s=0)
    assert create_bucket.bucket_of("s3://flp-evidence/evidence") == "flp-evidence"
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        create_bucket.bucket_of("/srv/evidence")
