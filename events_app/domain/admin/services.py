"""Administration: organiser accounts, API tokens and the audit-log viewer (administrators only).

Each change writes its audit entry in the same transaction. API tokens are shown once, when made; only
their hashes are stored, and the audit log never holds one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.db.models import (
    ApiToken,
    AuditEntry,
    Event,
    EventAssignment,
    FocalPointCountry,
    Role,
    User,
)
from events_app.domain.accounts.permissions import Principal
from events_app.domain.accounts.services import MIN_PASSWORD_LENGTH, AccountService
from events_app.domain.admin.schemas import (
    MSG_EMAIL_TAKEN,
    MSG_SELF_DEACTIVATE,
    MSG_SELF_DEMOTE,
    ROLE_LABELS,
    TOKEN_FIELDS,
    USER_FIELDS,
    FormInvalid,
    FormValues,
    TokenForm,
    UserForm,
    parse_token_form,
    parse_user_form,
    role_label,
)
from events_app.domain.audit.services import record, search
from events_app.domain.events.schemas import valid_zone
from events_app.domain.registrations.schemas import has_forbidden_characters
from events_app.lib.countries import country_choices, country_name
from events_app.lib.i18n import current_language, format_datetime_in_zone, gettext

AUDIT_PAGE_SIZE = 50
MAX_AUDIT_PAGE = 10_000


def when_text(instant: datetime | None, viewer_zone: str | None) -> str:
    """A moment in the viewer's zone (else UTC), in the page's language; "" for never."""
    if instant is None:
        return ""
    return format_datetime_in_zone(instant, valid_zone(viewer_zone) or "UTC", fmt="medium")


# --- what the pages show -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserRow:
    id: UUID
    email: str
    full_name: str
    role: str
    is_active: bool
    events: list[str]
    countries: list[str]
    last_login: str
    last_login_iso: str


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: UUID
    name: str
    owner: str
    created: str
    last_used: str
    revoked: str
    is_revoked: bool


@dataclass(frozen=True, slots=True)
class AuditRow:
    when: str
    when_iso: str
    actor: str
    action: str
    object: str
    event: str
    details: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[AuditRow]
    actions: list[str]
    events: list[tuple[str, str]]
    action: str
    actor: str
    event: str
    page: int
    previous_url: str | None
    next_url: str | None


@dataclass(frozen=True, slots=True)
class AuditFilters:
    action: str = ""
    actor: str = ""
    event_id: UUID | None = None
    page: int = 1

    @classmethod
    def parse(
        cls, action: str | None, actor: str | None, event: str | None, page: str | None
    ) -> AuditFilters:
        """Query-string filters; raises ValueError for an event id that is not one."""
        event_id = UUID(event) if event else None
        try:
            number = min(max(int(page or "1"), 1), MAX_AUDIT_PAGE)
        except ValueError:
            number = 1
        return cls(printable(action or "")[:64], printable(actor or "").strip()[:320], event_id, number)

    def url(self, page: int) -> str:
        query = {"action": self.action, "actor": self.actor, "event": str(self.event_id or ""), "page": page}
        return "/manage/audit?" + urlencode({key: value for key, value in query.items() if value})


def printable(text: str) -> str:
    """Without control characters (PostgreSQL refuses NUL in text; none belongs in a filter)."""
    return "".join(ch for ch in text if not has_forbidden_characters(ch))


def detail_pairs(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(key), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))
        for key, value in sorted(details.items())
    ]


class AdminService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.accounts = AccountService(session=session)

    # --- events and users as choices ----------------------------------------------------------------

    async def event_titles(self, event_ids: Sequence[UUID] | None = None) -> dict[UUID, str]:
        """Event titles in the page's language, newest event first (all events when no ids are given)."""
        statement = sa.select(Event).order_by(Event.starts_at.desc(), Event.id)
        if event_ids is not None:
            if not event_ids:
                return {}
            statement = statement.where(Event.id.in_(set(event_ids)))
        language = current_language()
        events = (await self.session.execute(statement)).scalars()
        return {event.id: event.text("title", language) or event.slug for event in events}

    async def users(self) -> list[User]:
        statement = sa.select(User).order_by(User.email)
        return list((await self.session.execute(statement)).scalars())

    async def get_user(self, user_id: UUID) -> User | None:
        return await self.session.get(User, user_id)

    # --- users --------------------------------------------------------------------------------------

    async def user_rows(self, viewer_zone: str | None) -> list[UserRow]:
        users = await self.users()
        titles = await self.event_titles([a.event_id for user in users for a in user.event_assignments])
        language = current_language()
        return [
            UserRow(
                id=user.id,
                email=user.email,
                full_name=user.full_name,
                role=role_label(user.role),
                is_active=user.is_active,
                events=sorted(titles.get(a.event_id, str(a.event_id)) for a in user.event_assignments),
                countries=sorted(country_name(c.country, language) for c in user.countries),
                last_login=when_text(user.last_login_at, viewer_zone),
                last_login_iso=user.last_login_at.isoformat() if user.last_login_at else "",
            )
            for user in users
        ]

    async def user_form_context(
        self, values: FormValues, errors: dict[str, str], user: User | None = None
    ) -> dict[str, Any]:
        partners, others = country_choices()
        titles = await self.event_titles()
        return {
            "user": user,
            "values": values.text,
            "selected_events": values.events,
            "selected_countries": values.countries,
            "errors": [(name, errors[name]) for name in USER_FIELDS if name in errors],
            "error_for": errors,
            "roles": [(role.value, gettext(label)) for role, label in ROLE_LABELS.items()],
            "events": [(str(event_id), title) for event_id, title in titles.items()],
            "partner_countries": partners,
            "other_countries": others,
            "min_password": MIN_PASSWORD_LENGTH,
        }

    @staticmethod
    def values_of(user: User) -> FormValues:
        return FormValues(
            text={
                "email": user.email,
                "full_name": user.full_name,
                "role": user.role.value,
                "is_active": "yes" if user.is_active else "",
            },
            events={str(a.event_id) for a in user.event_assignments},
            countries={c.country for c in user.countries},
        )

    async def _parse_user(self, raw: Mapping[str, Any], creating: bool) -> UserForm:
        return parse_user_form(raw, set(await self.event_titles()), creating)

    async def create_user(self, principal: Principal, raw: Mapping[str, Any]) -> User:
        """Raises :class:`FormInvalid` (with the reasons) when the form is not acceptable."""
        form = await self._parse_user(raw, creating=True)
        if await self.session.scalar(sa.select(User.id).where(User.email == form.email)) is not None:
            raise FormInvalid({"email": gettext(MSG_EMAIL_TAKEN)})
        try:
            user = await self.accounts.create_user(
                form.email, form.password, form.role, form.full_name, form.event_ids, form.countries
            )
        except IntegrityError as exc:  # the same email, created at the same moment by someone else
            await self.session.rollback()
            raise FormInvalid({"email": gettext(MSG_EMAIL_TAKEN)}) from exc
        record(
            self.session,
            principal,
            "user_created",
            "user",
            user.id,
            email=user.email,
            role=user.role.value,
            events=[str(event_id) for event_id in form.event_ids],
            countries=form.countries,
        )
        await self.session.commit()
        return user

    async def update_user(self, principal: Principal, user: User, raw: Mapping[str, Any]) -> None:
        """Role, name, active flag, events, countries and (when given) a new password."""
        form = await self._parse_user(raw, creating=False)
        if user.id == principal.user_id:
            self._check_own_account(form)
        changed = self._changes(user, form)
        user.full_name = form.full_name
        user.role = form.role
        user.is_active = form.is_active
        self._set_events(user, form.event_ids)
        self._set_countries(user, form.countries)
        if form.password:
            await self.accounts.set_password(user, form.password)
            changed.append("password")
        if not form.is_active:
            await self.accounts.end_sessions_of(user.id)
        record(
            self.session,
            principal,
            "user_updated",
            "user",
            user.id,
            email=user.email,
            changed=changed,
            role=form.role.value,
            is_active=form.is_active,
            events=[str(event_id) for event_id in form.event_ids],
            countries=form.countries,
        )
        await self.session.commit()

    @staticmethod
    def _check_own_account(form: UserForm) -> None:
        errors = {}
        if not form.is_active:
            errors["is_active"] = gettext(MSG_SELF_DEACTIVATE)
        if form.role is not Role.ADMIN:
            errors["role"] = gettext(MSG_SELF_DEMOTE)
        if errors:
            raise FormInvalid(errors)

    @staticmethod
    def _changes(user: User, form: UserForm) -> list[str]:
        before = {
            "full_name": user.full_name,
            "role": user.role,
            "is_active": user.is_active,
            "events": {a.event_id for a in user.event_assignments},
            "countries": {c.country for c in user.countries},
        }
        after = {
            "full_name": form.full_name,
            "role": form.role,
            "is_active": form.is_active,
            "events": set(form.event_ids),
            "countries": set(form.countries),
        }
        return [name for name in before if before[name] != after[name]]

    @staticmethod
    def _set_events(user: User, event_ids: list[UUID]) -> None:
        """Keeps the rows that stay (no delete-and-insert of the same pair under the unique constraint)."""
        wanted = set(event_ids)
        kept = [a for a in user.event_assignments if a.event_id in wanted]
        present = {a.event_id for a in kept}
        user.event_assignments = kept + [
            EventAssignment(event_id=event_id) for event_id in event_ids if event_id not in present
        ]

    @staticmethod
    def _set_countries(user: User, countries: list[str]) -> None:
        wanted = set(countries)
        kept = [c for c in user.countries if c.country in wanted]
        present = {c.country for c in kept}
        user.countries = kept + [FocalPointCountry(country=code) for code in countries if code not in present]

    async def deactivate_user(self, principal: Principal, user: User) -> None:
        """Ends the user's logins; their API tokens stop working too (they act as the user)."""
        if user.id == principal.user_id:
            raise FormInvalid({"is_active": gettext(MSG_SELF_DEACTIVATE)})
        if user.is_active:
            user.is_active = False
            await self.accounts.end_sessions_of(user.id)
            record(self.session, principal, "user_deactivated", "user", user.id, email=user.email)
        await self.session.commit()

    # --- API tokens ---------------------------------------------------------------------------------

    async def token_rows(self, viewer_zone: str | None) -> list[TokenRow]:
        statement = sa.select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        tokens = (await self.session.execute(statement)).scalars()
        return [
            TokenRow(
                id=token.id,
                name=token.name,
                owner=token.user.email,
                created=when_text(token.created_at, viewer_zone),
                last_used=when_text(token.last_used_at, viewer_zone),
                revoked=when_text(token.revoked_at, viewer_zone),
                is_revoked=token.revoked_at is not None,
            )
            for token in tokens
        ]

    async def token_page_context(
        self, viewer_zone: str | None, values: FormValues | None = None, errors: dict[str, str] | None = None
    ) -> dict[str, Any]:
        errors = errors or {}
        active_users = [user for user in await self.users() if user.is_active]
        return {
            "tokens": await self.token_rows(viewer_zone),
            "users": [(str(user.id), user.email) for user in active_users],
            "values": (values or FormValues()).text,
            "errors": [(name, errors[name]) for name in TOKEN_FIELDS if name in errors],
            "error_for": errors,
        }

    async def create_token(self, principal: Principal, raw: Mapping[str, Any]) -> tuple[ApiToken, str]:
        """The new token and its secret, which is shown this once and never stored."""
        active = {user.id for user in await self.users() if user.is_active}
        form: TokenForm = parse_token_form(raw, active)
        owner = await self.accounts.get(form.user_id)
        token, secret = await self.accounts.create_api_token(owner, form.name, created_by=principal.user_id)
        record(
            self.session,
            principal,
            "api_token_created",
            "api_token",
            token.id,
            name=token.name,
            owner=owner.email,
        )
        await self.session.commit()
        return token, secret

    async def revoke_token(self, principal: Principal, token_id: UUID) -> ApiToken | None:
        token = await self.session.get(ApiToken, token_id)
        if token is None:
            return None
        if token.revoked_at is None:
            await self.accounts.revoke_api_token(token_id)
            record(
                self.session,
                principal,
                "api_token_revoked",
                "api_token",
                token.id,
                name=token.name,
                owner=token.user.email,
            )
            await self.session.commit()
        return token

    # --- audit log ----------------------------------------------------------------------------------

    async def audit_page(self, filters: AuditFilters, viewer_zone: str | None) -> AuditPage | None:
        """One page of the log, newest first; None when the event filter names no event."""
        titles = await self.event_titles()
        if filters.event_id is not None and filters.event_id not in titles:
            return None
        entries = await search(
            self.session,
            action=filters.action or None,
            actor=filters.actor or None,
            event_id=filters.event_id,
            limit=AUDIT_PAGE_SIZE + 1,
            offset=(filters.page - 1) * AUDIT_PAGE_SIZE,
        )
        actions = await self.session.execute(
            sa.select(AuditEntry.action).group_by(AuditEntry.action).order_by(AuditEntry.action)
        )
        return AuditPage(
            rows=[self._audit_row(entry, titles, viewer_zone) for entry in entries[:AUDIT_PAGE_SIZE]],
            actions=list(actions.scalars()),
            events=[(str(event_id), title) for event_id, title in titles.items()],
            action=filters.action,
            actor=filters.actor,
            event=str(filters.event_id or ""),
            page=filters.page,
            previous_url=filters.url(filters.page - 1) if filters.page > 1 else None,
            next_url=filters.url(filters.page + 1) if len(entries) > AUDIT_PAGE_SIZE else None,
        )

    @staticmethod
    def _audit_row(entry: AuditEntry, titles: Mapping[UUID, str], viewer_zone: str | None) -> AuditRow:
        event = titles.get(entry.event_id, str(entry.event_id)) if entry.event_id else ""
        return AuditRow(
            when=when_text(entry.created_at, viewer_zone),
            when_iso=entry.created_at.isoformat(),
            actor=entry.actor_label,
            action=entry.action,
            object=f"{entry.object_type} {entry.object_id}".strip(),
            event=event,
            details=detail_pairs(entry.details or {}),
        )
