"""Organiser accounts: users, logins (database sessions) and API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from events_app.db.models import ApiToken, EventAssignment, FocalPointCountry, Role, User, UserSession
from events_app.domain.accounts.permissions import Principal
from events_app.lib.security import hash_password, hash_token, new_random_token, verify_password

SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 12
#: How precisely an API token's "last used" time is kept (see principal_for_api_token).
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AccountError(ValueError):
    """A user could not be created or changed; the message says why."""


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User


class AccountService(SQLAlchemyAsyncRepositoryService[User, UserRepository]):
    repository_type = UserRepository

    @property
    def session(self) -> AsyncSession:
        session = self.repository.session
        assert isinstance(session, AsyncSession)
        return session

    # --- users --------------------------------------------------------------------------------------

    async def create_user(
        self,
        email: str,
        password: str,
        role: Role,
        full_name: str = "",
        event_ids: list[UUID] | None = None,
        countries: list[str] | None = None,
    ) -> User:
        normalized = normalize_email(email)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        if await self.get_one_or_none(User.email == normalized) is not None:
            raise AccountError(f"a user with the email {normalized} exists already")
        user = User(
            id=uuid7(),
            email=normalized,
            full_name=full_name,
            password_hash=hash_password(password),
            role=role,
        )
        user.event_assignments = [EventAssignment(event_id=event_id) for event_id in event_ids or []]
        user.countries = [FocalPointCountry(country=country.upper()) for country in countries or []]
        self.session.add(user)
        await self.session.flush()
        return user

    async def assign_event(self, user: User, event_id: UUID) -> None:
        if all(assignment.event_id != event_id for assignment in user.event_assignments):
            user.event_assignments.append(EventAssignment(event_id=event_id))
            await self.session.flush()

    async def set_password(self, user: User, password: str) -> None:
        """A new password; every open login of the user ends (API tokens are left alone)."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        user.password_hash = hash_password(password)
        await self.end_sessions_of(user.id)

    async def end_sessions_of(self, user_id: UUID) -> None:
        await self.session.execute(sa.delete(UserSession).where(UserSession.user_id == user_id))

    # --- logging in ---------------------------------------------------------------------------------

    async def authenticate(self, email: str, password: str) -> User | None:
        """The user for these credentials, or None; unknown emails cost the same hashing time."""
        try:
            normalized = normalize_email(email)
        except AccountError:
            normalized = ""
        user = await self.get_one_or_none(User.email == normalized) if normalized else None
        valid = verify_password(user.password_hash if user is not None else None, password)
        if user is None or not valid or not user.is_active:
            return None
        return user

    async def start_session(self, user: User, now: datetime | None = None) -> str:
        """A new session (a new id at every login); returns the cookie value."""
        moment = now or datetime.now(UTC)
        token = new_random_token()
        self.session.add(
            UserSession(
                id=uuid7(),
                token_hash=hash_token(token),
                user_id=user.id,
                expires_at=moment + SESSION_LIFETIME,
            )
        )
        user.last_login_at = moment
        await self.session.flush()
        return token

    async def end_session(self, token: str | None) -> None:
        if token:
            await self.session.execute(
                sa.delete(UserSession).where(UserSession.token_hash == hash_token(token))
            )

    async def principal_for_session(self, token: str | None) -> Principal | None:
        return await self.principal_for(session_caller(token)) if token else None

    async def principal_for(self, caller: Caller) -> Principal | None:
        """The principal behind a session or an API token, with its events and countries.

        One statement (a user has events or countries, seldom both, so a few rows); an API token's
        "last used" time is kept in the caller's transaction.
        """
        rows = (await self.session.execute(_PRINCIPAL_READS[caller.kind], caller.params)).all()
        if not rows:
            return None
        first = rows[0]
        if first.token_id is not None:
            await note_api_token_use(self.session, first.token_id, first.last_used_at)
        return Principal(
            user_id=first.user_id,
            email=first.email,
            role=first.role,
            event_ids=frozenset(row.event_id for row in rows if row.event_id is not None),
            countries=frozenset(row.country for row in rows if row.country is not None),
            via=f"api-token:{first.token_name}" if first.token_id is not None else "",
        )

    # --- API tokens ---------------------------------------------------------------------------------

    async def create_api_token(self, user: User, name: str, created_by: UUID | None) -> tuple[ApiToken, str]:
        token = new_random_token()
        record = ApiToken(
            id=uuid7(), name=name, token_hash=hash_token(token), user_id=user.id, created_by_id=created_by
        )
        self.session.add(record)
        await self.session.flush()
        return record, token

    async def revoke_api_token(self, token_id: UUID) -> ApiToken | None:
        record = await self.session.get(ApiToken, token_id)
        if record is not None and record.revoked_at is None:
            record.revoked_at = datetime.now(UTC)
            await self.session.flush()
        return record

    async def principal_for_api_token(self, token: str | None) -> Principal | None:
        return await self.principal_for(api_token_caller(token)) if token else None


# --- who is asking ------------------------------------------------------------------------------------
# Built once: a statement object reused for every request keeps its compiled form and cache key (building
# and compiling one again costs more than running it). Other areas join their own reads to these (the
# door check-in reads the caller, the event and the ticket in one statement).

#: The user logged in with a session cookie: no row when it is unknown, expired or the user inactive.
#: Columns: user_id, email, role, token_id, token_name, last_used_at (the last three NULL here).
SESSION_CALLER = (
    sa.select(
        User.id.label("user_id"),
        User.email,
        User.role,
        sa.null().label("token_id"),
        sa.null().label("token_name"),
        sa.null().label("last_used_at"),
    )
    .select_from(UserSession)
    .join(User, User.id == UserSession.user_id)
    .where(
        UserSession.token_hash == sa.bindparam("caller_token_hash"),
        UserSession.expires_at > sa.bindparam("caller_now"),
        User.is_active.is_(True),
    )
)
#: The user holding an API token: no row when it is unknown, revoked or the user inactive. Columns as
#: SESSION_CALLER; token_id and last_used_at go on to :func:`note_api_token_use`.
API_TOKEN_CALLER = (
    sa.select(
        User.id.label("user_id"),
        User.email,
        User.role,
        ApiToken.id.label("token_id"),
        ApiToken.name.label("token_name"),
        ApiToken.last_used_at,
    )
    .select_from(ApiToken)
    .join(User, User.id == ApiToken.user_id)
    .where(
        ApiToken.token_hash == sa.bindparam("caller_token_hash"),
        ApiToken.revoked_at.is_(None),
        User.is_active.is_(True),
    )
)
CALLERS: dict[str, sa.Select[Any]] = {"session": SESSION_CALLER, "api_token": API_TOKEN_CALLER}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who says they are asking: ``kind`` names the statement in :data:`CALLERS`, ``params`` its values."""

    kind: str
    params: dict[str, Any]


def session_caller(token: str) -> Caller:
    return Caller("session", {"caller_token_hash": hash_token(token), "caller_now": datetime.now(UTC)})


def api_token_caller(token: str) -> Caller:
    return Caller("api_token", {"caller_token_hash": hash_token(token)})


def _principal_read(caller: sa.Select[Any]) -> sa.Select[Any]:
    found = caller.subquery("caller")
    return (
        sa.select(found, EventAssignment.event_id, FocalPointCountry.country)
        .select_from(found)
        .outerjoin(EventAssignment, EventAssignment.user_id == found.c.user_id)
        .outerjoin(FocalPointCountry, FocalPointCountry.user_id == found.c.user_id)
    )


_PRINCIPAL_READS = {kind: _principal_read(query) for kind, query in CALLERS.items()}
_NOW = sa.bindparam("now", type_=ApiToken.last_used_at.type)
_TOKEN_USED = (
    sa.update(ApiToken)
    .where(ApiToken.id == sa.bindparam("token_id"))
    .values(last_used_at=_NOW, updated_at=_NOW)
)


async def note_api_token_use(session: AsyncSession, token_id: UUID, last_used_at: datetime | None) -> None:
    """Keep the token's "last used" time, in the caller's transaction.

    A scanner calls many times a second: it is written once a minute, not on every call (every write
    would lock the token's row).
    """
    now = datetime.now(UTC)
    if last_used_at is not None and now - _aware(last_used_at) < LAST_USED_RESOLUTION:
        return
    connection = await session.connection()
    await connection.execute(_TOKEN_USED, {"token_id": token_id, "now": now})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalize_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(f"not a valid email address: {email!r}") from exc
