"""Who may see and do what. Every organiser query is narrowed by a :class:`Principal`.

Objects outside a principal's scope answer 404, never 403: guessing ids reveals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from events_app.db.models import Event, Registration, Role, User


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    email: str
    role: Role
    event_ids: frozenset[UUID]
    countries: frozenset[str]
    #: "api-token:<name>" when the request came with an API token, for the audit log.
    via: str = ""

    @classmethod
    def of(cls, user: User, via: str = "") -> Principal:
        return cls(
            user_id=user.id,
            email=user.email,
            role=user.role,
            event_ids=frozenset(assignment.event_id for assignment in user.event_assignments),
            countries=frozenset(country.country for country in user.countries),
            via=via,
        )

    @property
    def label(self) -> str:
        return f"{self.email} ({self.via})" if self.via else self.email

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    # --- events -------------------------------------------------------------------------------------

    def can_create_events(self) -> bool:
        return self.role in (Role.ADMIN, Role.EVENT_MANAGER)

    def manages(self, event_id: UUID) -> bool:
        """May edit the event, message its registrants and see all of them."""
        return self.is_admin or (self.role is Role.EVENT_MANAGER and event_id in self.event_ids)

    def sees_event(self, event_id: UUID) -> bool:
        """May open the event's organiser pages (focal points: to reach their countries' registrants)."""
        return self.manages(event_id) or self.role is Role.FOCAL_POINT

    def events_filter(self) -> ColumnElement[bool]:
        if self.is_admin or self.role is Role.FOCAL_POINT:
            return sa.true()
        if self.role is Role.EVENT_MANAGER:
            return Event.id.in_(self.event_ids) if self.event_ids else sa.false()
        return sa.false()

    # --- registrations ------------------------------------------------------------------------------

    def registrations_filter(self) -> ColumnElement[bool]:
        if self.is_admin:
            return sa.true()
        if self.role is Role.EVENT_MANAGER:
            return Registration.event_id.in_(self.event_ids) if self.event_ids else sa.false()
        if self.role is Role.FOCAL_POINT:
            return Registration.country.in_(self.countries) if self.countries else sa.false()
        return sa.false()

    def sees_registration(self, registration: Registration) -> bool:
        if self.is_admin:
            return True
        if self.role is Role.EVENT_MANAGER:
            return registration.event_id in self.event_ids
        if self.role is Role.FOCAL_POINT:
            return registration.country in self.countries
        return False

    def can_decide(self, registration: Registration) -> bool:
        """Approve, reject or promote."""
        return self.sees_registration(registration) and self.role is not Role.CHECKIN_STAFF

    # --- check-in -----------------------------------------------------------------------------------

    def checks_in(self, event_id: UUID) -> bool:
        return checks_in_at(self.role, event_id in self.event_ids)


def checks_in_at(role: Role, assigned: bool) -> bool:
    """Whether a user with ``role`` checks people in at an event (``assigned``: assigned to it)."""
    return role is Role.ADMIN or (role in (Role.CHECKIN_STAFF, Role.EVENT_MANAGER) and assigned)
