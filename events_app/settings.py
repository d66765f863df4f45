"""Settings read from the environment (prefix ``EVENTS_``); every one is documented in the README."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = Path(__file__).resolve().parent


class SmtpSecurity(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVENTS_", extra="ignore")

    var_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    programme_name: str = "Europe–Latin America Programme against Organised Crime"
    default_language: str = "es"

    smtp_host: str = ""
    smtp_port: int = 0
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: SmtpSecurity = SmtpSecurity.NONE
    smtp_timeout_seconds: float = 20.0
    mail_from: str = "events@localhost"
    maildir: Path | None = None

    #: PostgreSQL connections each process keeps, and how many more it may open under load. Requests
    #: beyond them wait for a connection, and those waits are not first come, first served: keep the
    #: sum near the concurrent requests one process serves (processes x sum < max_connections).
    db_pool_size: Annotated[int, Field(gt=0)] = 10
    db_max_overflow: Annotated[int, Field(ge=0)] = 30

    run_worker_in_app: bool = True
    outbox_poll_seconds: Annotated[float, Field(gt=0)] = 2.0
    outbox_batch_size: Annotated[int, Field(gt=0)] = 50
    outbox_retry_base_seconds: Annotated[float, Field(ge=0)] = 30.0
    outbox_max_attempts: Annotated[int, Field(gt=0)] = 8
    outbox_lease_seconds: Annotated[float, Field(gt=0)] = 300.0

    # Abuse limits (fixed windows counted in the database; a limit of 0 turns that limit off).
    registration_limit_per_ip: Annotated[int, Field(ge=0)] = 30
    registration_limit_per_ip_window_seconds: Annotated[int, Field(gt=0)] = 60
    registration_limit_per_email: Annotated[int, Field(ge=0)] = 10
    registration_limit_per_email_window_seconds: Annotated[int, Field(gt=0)] = 3600
    resend_limit_per_ip: Annotated[int, Field(ge=0)] = 10
    resend_limit_per_ip_window_seconds: Annotated[int, Field(gt=0)] = 600
    resend_limit_per_email: Annotated[int, Field(ge=0)] = 3
    resend_limit_per_email_window_seconds: Annotated[int, Field(gt=0)] = 3600

    #: Personal data of registrations is anonymised this many days after their event ended.
    #: At least 1: there is no "off" (0 would anonymise every registration the moment its event ends).
    retention_days: Annotated[int, Field(ge=1)] = 365
    #: Who people write to about their data (shown on the privacy notice).
    privacy_contact: str = "privacy@programme.example.org"

    #: Benchmark-only endpoints under /api/bench/ (a bare insert, registration without mail): never in
    #: production; bench/ turns them on for the server it starts.
    bench_endpoints: bool = False

    debug: bool = False

    @field_validator("base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def model_post_init(self, __context: object) -> None:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.var_dir / 'events.sqlite3'}"
        if self.maildir is None:
            self.maildir = self.var_dir / "maildir"
        if not self.secret_key:
            self.secret_key = _load_or_create_secret(self.var_dir / "secret_key")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_smtp(self) -> bool:
        return bool(self.smtp_host)

    @property
    def effective_smtp_port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return {SmtpSecurity.NONE: 25, SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465}[self.smtp_security]

    @property
    def serves_https(self) -> bool:
        return self.base_url.startswith("https://")


def _load_or_create_secret(path: Path) -> str:
    """A secret made once per installation and kept beside the database, never a constant in the code."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(secret)
        path.chmod(0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_text(encoding="utf-8").strip()
    return secret


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
