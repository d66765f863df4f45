"""The programme's three demo events, created by ``events-app seed-demo`` (idempotent by slug)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.db.models import Event, EventKind, EventStatus


@dataclass(frozen=True)
class DemoEvent:
    slug: str
    kind: EventKind
    weeks_ahead: int
    weekday: int
    local_start: time
    hours: float
    timezone: str
    capacity: int | None
    venue: dict[str, str]
    texts: dict[str, dict[str, str]]
    join_url: str = ""


DEMO_EVENTS = (
    DemoEvent(
        slug="human-trafficking-network-launch",
        kind=EventKind.IN_PERSON,
        weeks_ahead=3,
        weekday=1,
        local_start=time(9, 30),
        hours=3.5,
        timezone="America/Bogota",
        capacity=120,
        venue={
            "venue_name": "Centro de Convenciones Ágora Bogotá",
            "venue_address": "Calle 24 # 38-47",
            "venue_city": "Bogotá",
            "venue_country": "CO",
        },
        texts={
            "es": {
                "title": "Creación de la red contra la trata de personas",
                "summary": "Lanzamiento presencial de la red latinoamericana de fiscales y policías contra la trata de personas.",
                "description": "Presentación de la red, sus puntos focales nacionales y el plan de trabajo 2027. "
                "Intervienen autoridades de Colombia, Brasil, Argentina y de la Unión Europea.",
            },
            "en": {
                "title": "Creation of the human trafficking network",
                "summary": "In-person launch of the Latin American network of prosecutors and police against human trafficking.",
                "description": "Presentation of the network, its national focal points and the 2027 work plan. "
                "Speakers from Colombia, Brazil, Argentina and the European Union.",
            },
        },
    ),
    DemoEvent(
        slug="webinar-animal-abuse-latin-america",
        kind=EventKind.ONLINE,
        weeks_ahead=5,
        weekday=2,
        local_start=time(10, 0),
        hours=1.5,
        timezone="America/Sao_Paulo",
        capacity=500,
        venue={},
        join_url="https://meet.example.org/j/8345512770",
        texts={
            "es": {
                "title": "Webinario sobre maltrato animal en América Latina",
                "summary": "Delitos contra la fauna y maltrato animal: investigación, cooperación y buenas prácticas.",
                "description": "Webinario para policías, fiscales y jueces de la región, con experiencias de Brasil, México y España.",
            },
            "en": {
                "title": "Webinar on animal abuse in Latin America",
                "summary": "Wildlife crime and animal abuse: investigation, cooperation and good practice.",
                "description": "A webinar for police, prosecutors and judges of the region, with experience from Brazil, Mexico and Spain.",
            },
            "pt_BR": {
                "title": "Webinar sobre maus-tratos a animais na América Latina",
                "summary": "Crimes contra a fauna e maus-tratos a animais: investigação, cooperação e boas práticas.",
                "description": "Webinar para policiais, promotores e juízes da região, com experiências do Brasil, do México e da Espanha.",
            },
        },
    ),
    DemoEvent(
        slug="guide-penitentiary-intelligence",
        kind=EventKind.HYBRID,
        weeks_ahead=7,
        weekday=3,
        local_start=time(15, 0),
        hours=1.0,
        timezone="Europe/Madrid",
        capacity=80,
        venue={
            "venue_name": "Escuela de Estudios Penitenciarios",
            "venue_address": "Calle de Alcalá 38",
            "venue_city": "Madrid",
            "venue_country": "ES",
        },
        join_url="https://meet.example.org/j/penitentiary-guide",
        texts={
            "es": {
                "title": "Presentación de la guía de inteligencia penitenciaria",
                "summary": "Presentación híbrida de la guía regional de inteligencia penitenciaria.",
                "description": "La guía recoge prácticas de 18 sistemas penitenciarios para prevenir el crimen organizado en prisión.",
            },
            "en": {
                "title": "Presentation of the guide on penitentiary intelligence",
                "summary": "Hybrid presentation of the regional guide on penitentiary intelligence.",
                "description": "The guide gathers practice from 18 prison systems to prevent organised crime inside prisons.",
            },
        },
    ),
)


def _start_of(demo: DemoEvent, today: date) -> datetime:
    day = today + timedelta(weeks=demo.weeks_ahead)
    day += timedelta(days=(demo.weekday - day.weekday()) % 7)
    local = datetime.combine(day, demo.local_start, tzinfo=ZoneInfo(demo.timezone))
    return local.astimezone(UTC)


def _fields(demo: DemoEvent, now: datetime) -> dict[str, Any]:
    starts_at = _start_of(demo, now.date())
    return {
        "slug": demo.slug,
        "kind": demo.kind,
        "status": EventStatus.PUBLISHED,
        "base_language": "es",
        "texts": demo.texts,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=demo.hours),
        "timezone": demo.timezone,
        "capacity": demo.capacity,
        "join_url": demo.join_url,
        "registration_opens_at": now - timedelta(days=1),
        "registration_closes_at": starts_at,
        "approval_required": False,
        "contact_name": "Secretaría del programa",
        "contact_email": "eventos@programa.example.org",
        **demo.venue,
    }


async def seed_demo(session: AsyncSession, now: datetime | None = None) -> list[str]:
    """Create the demo events that do not exist yet; returns the slugs created."""
    moment = now or datetime.now(UTC)
    existing = set((await session.execute(sa.select(Event.slug))).scalars())
    created = []
    for demo in DEMO_EVENTS:
        if demo.slug in existing:
            continue
        session.add(Event(**_fields(demo, moment)))
        created.append(demo.slug)
    await session.commit()
    return created
