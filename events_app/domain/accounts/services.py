"""Organiser accounts: users, logins (database sessions) and API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
        if not token:
            return None
        result = await self.session.execute(
            sa.select(UserSession).where(
                UserSession.token_hash == hash_token(token), UserSession.expires_at > datetime.now(UTC)
            )
        )
        login = result.scalar_one_or_none()
        if login is None or not login.user.is_active:
            return None
        return Principal.of(login.user)

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
        if not token:
            return None
        result = await self.session.execute(
            sa.select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
        )
        record = result.scalar_one_or_none()
        if record is None or not record.user.is_active:
            return None
        now = datetime.now(UTC)
        # A scanner calls many times a second: write "last used" once a minute, not on every call
        # (every write would lock the token's row and cost a flush).
        if record.last_used_at is None or now - _aware(record.last_used_at) >= LAST_USED_RESOLUTION:
            record.last_used_at = now
        return Principal.of(record.user, via=f"api-token:{record.name}")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalize_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(f"not a valid email address: {email!r}") from exc
