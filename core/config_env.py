"""Secrets and endpoints from the environment (12-factor): one pydantic-settings model, aliases are the names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AnyUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# s3://bucket[/prefix]; the prefix keeps to S3's "safe" characters (no spaces, no percent-escapes to decode).
_EVIDENCE_URL = re.compile(r"s3://(?P<bucket>[^/]+)(?:/(?P<prefix>[A-Za-z0-9!_.*'()/-]*))?")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")


def _url_password(database_url: str) -> str | None:
    """The password in a SQLAlchemy URL, if any (unparseable URLs are refused elsewhere, when connecting)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(database_url).password
    except Exception:
        return None


class EnvSettings(BaseSettings):
    """Secrets and endpoints (12-factor). Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=False)

    database_url: str = Field(
        default="sqlite:///data/flp.db",
        alias="DATABASE_URL",
        description="SQLAlchemy URL; SQLite (WAL) embedded, postgresql+psycopg://… for PostgreSQL",
    )
    data_dir: Path = Field(
        default=Path("data"),
        alias="DATA_DIR",
        description="local files; evidence images, crops, exports when EVIDENCE_URL is unset",
    )
    evidence_url: str | None = Field(
        default=None,
        alias="EVIDENCE_URL",
        description="where pictures, crops and exports live: unset = files under DATA_DIR; "
        "s3://bucket or s3://bucket/prefix = S3 (boto3's AWS_* credentials)",
    )
    aws_endpoint_url_s3: AnyUrl | None = Field(
        default=None,
        alias="AWS_ENDPOINT_URL_S3",
        description="endpoint of an S3-compatible store (MinIO, Ceph, R2…) for EVIDENCE_URL; unset: AWS S3",
    )
    # The secrets an operator chooses are at least 32 characters, as SESSION_SECRET: each one's HMAC or bearer
    # comparison is only as strong as the secret; keys Stripe and Square issue are taken as issued.
    pos_webhook_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        alias="POS_WEBHOOK_SECRET",
        description="HMAC key of the POS and fraud-report webhooks (required except for demo)",
    )
    # At least 32 characters: it signs the console's cookies, so it must not be guessable offline.
    session_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        alias="SESSION_SECRET",
        description="key of the console's session cookies, the same in every process (required for web and worker; "
        "serve and demo make one in DATA_DIR when unset)",
    )
    api_token: SecretStr | None = Field(
        default=None,
        min_length=32,
        alias="API_TOKEN",
        description="bearer token of the read-only API; unset: the read API refuses every call",
    )
    webex_access_token: SecretStr | None = Field(
        default=None, alias="WEBEX_ACCESS_TOKEN", description="bot token; unset: Webex off, console only"
    )
    webex_base_url: AnyUrl = Field(
        default=AnyUrl("https://webexapis.com/v1"),
        alias="WEBEX_BASE_URL",
        description="Webex REST base for every call our code makes",
    )
    webex_discovery_url: AnyUrl = Field(
        default=AnyUrl("https://u2c.wbx2.com/u2c/api/v1/catalog"),
        alias="WEBEX_DISCOVERY_URL",
        description="Webex service discovery (U2C catalog), where the websocket transport finds its device service",
    )
    webex_transport: Literal["websocket", "webhook"] = Field(
        default="websocket", alias="WEBEX_TRANSPORT", description="websocket (no public URL needed) or webhook"
    )
    webex_webhook_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        alias="WEBEX_WEBHOOK_SECRET",
        description="HMAC-SHA1 key of Webex webhooks (required for webhook)",
    )
    public_url: AnyUrl | None = Field(
        default=None, alias="PUBLIC_URL", description="where Webex can reach this service (webhook transport)"
    )
    meraki_dashboard_api_key: SecretStr | None = Field(
        default=None, alias="MERAKI_DASHBOARD_API_KEY", description="Meraki Dashboard API key; unset: camera off"
    )
    meraki_base_url: AnyUrl = Field(
        default=AnyUrl("https://api.meraki.com/api/v1"),
        alias="MERAKI_BASE_URL",
        description="Meraki Dashboard API base",
    )
    meraki_picture_hosts: tuple[str, ...] = Field(
        default=(),
        alias="MERAKI_PICTURE_HOSTS",
        description="comma-separated host or host:port the snapshot pictures may come from over http or from a "
        "private or loopback address (a local stand-in); unset: https to public addresses only",
    )
    recognition_backend: Literal["local", "rekognition"] = Field(
        default="local",
        alias="RECOGNITION_BACKEND",
        description="local (dlib, on this machine) or rekognition (Amazon Rekognition)",
    )
    aws_region: str | None = Field(
        default=None,
        alias="AWS_REGION",
        description="AWS region for Rekognition (boto3's other AWS_* variables apply too)",
    )
    aws_endpoint_url: AnyUrl | None = Field(
        default=None, alias="AWS_ENDPOINT_URL", description="Rekognition endpoint override"
    )
    rekognition_collection_id: str = Field(
        default="flp-watchlist",
        pattern=r"^[a-zA-Z0-9_.\-]{1,255}$",
        alias="REKOGNITION_COLLECTION_ID",
        description="face collection of the watchlist",
    )
    mqtt_url: AnyUrl | None = Field(
        default=None,
        alias="MQTT_URL",
        description="MV Sense broker for entrance cameras (mqtt://host:1883); unset: entrance watch off",
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        alias="STRIPE_WEBHOOK_SECRET",
        description="Stripe endpoint signing secret; unset: Stripe feed off",
    )
    square_signature_key: SecretStr | None = Field(
        default=None, alias="SQUARE_SIGNATURE_KEY", description="Square webhook signature key; unset: Square feed off"
    )
    # A plain string, not a URL type: Square signs the URL exactly as written in its console, and
    # parsing would rewrite it (host case, a default port, a trailing slash, escapes).
    square_notification_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        alias="SQUARE_NOTIFICATION_URL",
        description="the URL Square signs (its notification URL), exactly as in Square's console",
    )
    host: str = Field(default="127.0.0.1", alias="HOST", description="where HTTP listens")
    port: int = Field(default=8080, ge=1, le=65535, alias="PORT", description="HTTP port")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="LOG_LEVEL", description="our log level; third-party loggers are capped at INFO"
    )
    log_format: Literal["text", "json"] = Field(
        default="text", alias="LOG_FORMAT", description="text or json; secrets, card numbers and URL paths are redacted"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment is passed in explicitly (load_config), so tests never depend on os.environ.
        return (init_settings,)

    @field_validator("meraki_picture_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        return tuple(h.strip() for h in value.split(",") if h.strip()) if isinstance(value, str) else value

    @field_validator("meraki_picture_hosts")
    @classmethod
    def _check_hosts(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        from core.outbound_guard import OutboundPolicy

        OutboundPolicy.of(hosts)  # each entry a host or host:port; the error names the one that is not
        return hosts

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper() if isinstance(value, str) else value

    def secrets(self) -> list[str]:
        """Every secret value set, for the log redactor."""
        fields = (
            self.pos_webhook_secret,
            self.session_secret,
            self.api_token,
            self.webex_access_token,
            self.webex_webhook_secret,
            self.meraki_dashboard_api_key,
            self.stripe_webhook_secret,
            self.square_signature_key,
        )
        found = [f.get_secret_value() for f in fields if f is not None and f.get_secret_value()]
        # Passwords inside URLs (the broker's, the database's) are secrets too.
        for url in (self.mqtt_url, _url_password(self.database_url)):
            password = url.password if isinstance(url, AnyUrl) else url
            if password:
                found.append(password)
        return found

    @field_validator("evidence_url")
    @classmethod
    def _check_evidence_url(cls, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        match = _EVIDENCE_URL.fullmatch(url)
        if match is None:
            raise ValueError("must be s3://bucket or s3://bucket/prefix")
        bucket, prefix = match["bucket"], match["prefix"] or ""
        # The value is never echoed: a mistaken URL may carry credentials.
        if "@" in bucket:
            raise ValueError("credentials do not belong in the URL (boto3 reads AWS_ACCESS_KEY_ID and the rest)")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP_ADDRESS.fullmatch(bucket):
            raise ValueError(
                "the bucket name must be 3-63 lower-case letters, digits, dots and hyphens, "
                "starting and ending with a letter or digit, and not an IP address"
            )
        if prefix.strip("/") and any(part in ("", ".", "..") for part in prefix.strip("/").split("/")):
            raise ValueError("the prefix has an empty, '.' or '..' segment")
        return url

    def evidence_location(self) -> tuple[str, str] | None:
        """(bucket, prefix) of EVIDENCE_URL; None keeps evidence under DATA_DIR. The prefix has no slashes around."""
        if self.evidence_url is None:
            return None
        match = _EVIDENCE_URL.fullmatch(self.evidence_url)
        assert match is not None  # the validator refused anything else
        return match["bucket"], (match["prefix"] or "").strip("/")

    def s3_endpoint(self) -> str | None:
        """AWS_ENDPOINT_URL_S3 as given (no trailing slash), for an S3-compatible store; None for AWS."""
        return str(self.aws_endpoint_url_s3).rstrip("/") if self.aws_endpoint_url_s3 else None

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_scheme(cls, url: AnyUrl | None) -> AnyUrl | None:
        if url is not None and url.scheme not in ("mqtt", "mqtts"):
            raise ValueError("must be mqtt://host:port or mqtts://host:port")
        return url
