"""The one validated configuration: business shape from YAML, secrets and endpoints from the environment.

Only this module reads ``os.environ``. Everything is frozen after loading; an invalid
configuration raises ``ConfigError`` carrying every problem with its key path and YAML line.
The models live in ``core/config_business.py`` (the YAML file) and ``core/config_env.py`` (the
environment); their names are importable from here.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError
from pydantic_core import ErrorDetails

from core.config_business import (  # noqa: F401  (the configuration's names, importable from here as before)
    _LOCATED,
    DEFAULT_CONFIG_PATH,
    ROLE_RANK,
    BusinessConfig,
    CameraConfig,
    CatalogItem,
    DigestConfig,
    EnrollmentConfig,
    Identifier,
    PatternsConfig,
    PersonConfig,
    RecognitionConfig,
    RegionConfig,
    RegisterConfig,
    RetentionConfig,
    Role,
    RuleConfig,
    RunnerConfig,
    StoreConfig,
    TriageConfig,
    _dotted,
)
from core.config_env import EnvSettings


@dataclass(frozen=True)
class Config:
    env: EnvSettings
    business: BusinessConfig
    mode: str = "serve"
    config_dir: Path = Path("config")  # catalog reference_images are relative to it

    def require_for(self, mode: str) -> None:
        """Mode-specific requirements: intake needs its HMAC key except in the demo (and db upgrade)."""
        problems = _mode_problems(self.env, mode)
        if problems:
            raise ConfigError(problems)


SESSION_SECRET_REQUIRED = (
    "SESSION_SECRET: required for web and worker (the console's session key, the same in every process; "
    'at least 32 characters): make one with python -c "import secrets; print(secrets.token_hex(32))"'
)


def _mode_problems(env: EnvSettings, mode: str) -> list[str]:
    problems = []
    if mode in {"serve", "web", "worker"} and env.pos_webhook_secret is None:
        problems.append("POS_WEBHOOK_SECRET: required (HMAC key of the POS and fraud-report webhooks)")
    if env.webex_transport == "webhook" and env.webex_access_token and not env.webex_webhook_secret:
        problems.append("WEBEX_WEBHOOK_SECRET: required when WEBEX_TRANSPORT is webhook")
    if mode in {"web", "worker"} and env.session_secret is None:
        problems.append(SESSION_SECRET_REQUIRED)
    if mode in {"web", "worker"} and env.database_url.startswith("sqlite"):
        problems.append("DATABASE_URL: a split web/worker deployment needs PostgreSQL, not SQLite")
    if mode in {"web", "worker"} and env.evidence_url is None:
        # The worker stores pictures that the web process serves: no disk is shared between them.
        problems.append("EVIDENCE_URL: a split web/worker deployment needs object storage (s3://bucket/prefix)")
    return problems


class ConfigError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def required_secret(secret: SecretStr | None, name: str) -> str:
    """The value of a secret that is optional in general but guaranteed where this is called.

    The guarantee comes from _mode_problems (checked when the configuration loads) or from the
    caller's own setup (the demo fills its secrets in); should it ever not hold, say which one.
    """
    if secret is None:
        raise ConfigError([f"{name}: required here"])
    return secret.get_secret_value()


def load_config(environ: Mapping[str, str], yaml_text: str, *, source: str = DEFAULT_CONFIG_PATH) -> Config:
    """Validate the YAML business shape and the environment together, collecting every error."""
    env, problems = _parse_env(environ)
    try:
        document = yaml.compose(yaml_text)
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        raise ConfigError(problems + [_yaml_problem(exc, source)]) from None
    if not isinstance(data, dict):
        raise ConfigError(problems + [f"{source}: must be a mapping with stores, people, rules, …"])
    problems += [
        f"{_dotted(path)}: appears more than once; only the last one would count ({source}, line {line})"
        for path, line in _repeated_keys(document, [])
    ]
    try:
        business = BusinessConfig.model_validate(data)
    except ValidationError as exc:
        business = None
        errors = exc.errors()
        # A list whose items failed is also reported as too short: noise beside the real errors.
        failing = {e["loc"][:1] for e in errors if len(e["loc"]) > 1}
        for error in errors:
            if error["type"] == "too_short" and error["loc"][:1] in failing:
                continue
            base = [p for p in error["loc"] if p not in _SECTION_NOISE]
            # Cross-field checks report each problem at its own key (see _raise_located).
            located = error["ctx"]["problems"] if error["type"] == _LOCATED else [((), _plain(error))]
            for sub_path, message in located:
                path = base + list(sub_path)
                line = _line_of(document, path)
                where = f" ({source}, line {line})" if line else ""
                problems.append(f"{_dotted(path) or '(top level)'}: {message}{where}")
    if business is not None:
        problems += _reference_image_problems(business, document, source)
    if problems or env is None or business is None:
        raise ConfigError(problems)
    return Config(env=env, business=business, config_dir=Path(source).parent)


def load_config_from_environment(mode: str = "serve") -> Config:
    """The entry points' loader: reads FLP_CONFIG (or the default path) and os.environ."""
    path = Path(os.environ.get("FLP_CONFIG", DEFAULT_CONFIG_PATH))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"FLP_CONFIG: cannot read {path}: {exc.strerror}"]) from None
    try:
        config = load_config(os.environ, text, source=str(path))
    except ConfigError as exc:
        # Say everything at once, including what this command needs from the environment.
        env, _ = _parse_env(os.environ)
        raise ConfigError(exc.problems + (_mode_problems(env, mode) if env else [])) from None
    config.require_for(mode)
    return dataclasses.replace(config, mode=mode)


def _reference_image_problems(business: BusinessConfig, document: yaml.Node | None, source: str) -> list[str]:
    """Catalog photos must exist: a missing one would quietly leave its label "not checked"."""
    base, problems = Path(source).parent, []
    for i, item in enumerate(business.catalog):
        for j, name in enumerate(item.reference_images):
            if not (base / name).is_file():
                path: list[str | int] = ["catalog", i, "reference_images", j]
                problems.append(
                    f"{_dotted(path)}: no such file {str(base / name)!r} ({source}, line {_line_of(document, path)})"
                )
    return problems


def _parse_env(environ: Mapping[str, str]) -> tuple[EnvSettings | None, list[str]]:
    # An empty variable counts as unset: `API_TOKEN=` must not become an empty (guessable) secret.
    # Any, not str: the values are keyword arguments for pydantic to parse, beside EnvSettings' own options.
    values: dict[str, Any] = {k: v for k, v in environ.items() if k in _ENV_NAMES and v != ""}
    try:
        return EnvSettings(**values), []
    except ValidationError as exc:
        return None, [f"{_dotted(e['loc'])}: {_plain(e)}" for e in exc.errors()]


def _yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    what = ", ".join(p for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p) or str(exc)
    return f"not valid YAML: {what} ({source}, line {mark.line + 1})" if mark else f"{source}: not valid YAML: {what}"


def _repeated_keys(node: yaml.Node | None, path: list, visited: set[int] | None = None) -> list[tuple[list, int]]:
    """Keys given twice in one mapping: YAML keeps the last silently, which hides a mistake."""
    visited = set() if visited is None else visited
    if node is None or id(node) in visited:  # an alias is walked once (and may refer to itself)
        return []
    visited.add(id(node))
    found: list[tuple[list, int]] = []
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            if key.value in seen:
                found.append((path + [key.value], key.start_mark.line + 1))
            seen.add(key.value)
            found += _repeated_keys(value, path + [key.value], visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            found += _repeated_keys(value, path + [index], visited)
    return found


_ENV_NAMES = {f.alias for f in EnvSettings.model_fields.values() if f.alias}
_SECTION_NOISE = {"function-after[_check_box(), tuple[float, float, float, float]]"}


def _plain(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (not part of the configuration; check the spelling)"
    if error["type"] == "missing":
        return "required"
    if error["type"] == "string_pattern_mismatch":
        return f"has the wrong form (expected to match {error['ctx']['pattern']})"
    if error["type"] == "too_short" and isinstance(error.get("input"), str):  # pydantic says "items" of a secret
        return f"too short: at least {error['ctx']['min_length']} characters"
    message = error["msg"]
    return re.sub(r"^Value error, ", "", message)


def _line_of(node: yaml.Node | None, path: list) -> int | None:
    """1-based line of the deepest YAML node on the path that exists (the key's line for mapping keys)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                return line
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
