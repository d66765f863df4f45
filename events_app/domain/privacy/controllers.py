"""The privacy notice, "download my data" and "erase my data", and the organisers' purge list."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from babel.dates import format_date
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, NotFoundException
from litestar.response import Template
from litestar.status_codes import HTTP_410_GONE

from events_app.db.models import Registration, Role
from events_app.deps import DbSession, PathStr, RegistrationServiceDep, SettingsDep, ViewerZone
from events_app.domain.accounts.deps import PrincipalDep
from events_app.domain.events.schemas import present_event
from events_app.domain.privacy import export, retention, services
from events_app.domain.privacy.notices import CURRENT_NOTICE, NOTICE_VERSIONS, NoticeVersion, notice_template
from events_app.domain.privacy.notices import notice_version as find_notice
from events_app.domain.privacy.schemas import MSG_ERASED, MSG_NO_NOTICE, purge_view
from events_app.domain.registrations.notifications import RegistrationMailComposer
from events_app.domain.registrations.services import RegistrationService
from events_app.lib.i18n import babel_locale, current_language, gettext
from events_app.settings import Settings

#: Pages reached by a secret link: no caching, and the link never leaks through a Referer.
SECRET_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def provide_mail_composer(state: State) -> RegistrationMailComposer:
    """The outbox's composer (wired in app.py): the export lists each email's subject as it was built."""
    composer: RegistrationMailComposer = state.mail_composer
    return composer


MailComposerDep = NamedDependency[RegistrationMailComposer]


async def registration_by_link(service: RegistrationService, token: str) -> Registration:
    """The registration of a personal link; 410 with a plain explanation once its data was erased."""
    registration = await service.get_by_manage_token(token)
    if registration is not None:
        return registration
    if await service.erased_by_manage_token(token):
        raise HTTPException(
            status_code=HTTP_410_GONE, detail=gettext(MSG_ERASED), headers=SECRET_PAGE_HEADERS
        )
    raise NotFoundException(gettext("This link is not valid. Check the link in your email."))


def _notice_page(notice: NoticeVersion, settings: Settings) -> Template:
    context = {
        "notice": notice,
        "notice_body": notice_template(notice, current_language()),
        "published_text": format_date(notice.published_on, format="long", locale=babel_locale()),
        "is_current": notice == CURRENT_NOTICE,
        "current": CURRENT_NOTICE,
        "versions": list(reversed(NOTICE_VERSIONS)),
        "programme": settings.programme_name,
        "contact": settings.privacy_contact,
        "retention_days": settings.retention_days,
    }
    return Template("privacy/notice.html", context=context)


class PrivacyPages(Controller):
    include_in_schema = False
    dependencies = {"mail_composer": Provide(provide_mail_composer, sync_to_thread=False)}

    @get("/privacy", name="privacy_notice")
    async def notice(self, settings: SettingsDep) -> Template:
        return _notice_page(CURRENT_NOTICE, settings)

    @get("/privacy/{version:str}", name="privacy_notice_version")
    async def notice_version(self, version: PathStr, settings: SettingsDep) -> Template:
        notice = find_notice(version)
        if notice is None:
            raise NotFoundException(gettext(MSG_NO_NOTICE))
        return _notice_page(notice, settings)

    @get("/my/{token:str}/data.json", name="my_data_export")
    async def export(
        self,
        token: PathStr,
        registration_service: RegistrationServiceDep,
        settings: SettingsDep,
        mail_composer: MailComposerDep,
    ) -> Response[bytes]:
        registration = await registration_by_link(registration_service, token)
        session = registration_service.session
        data = await export.export_data(
            session, registration, mail_composer, settings.base_url, datetime.now(UTC)
        )
        await export.record_export(session, registration)
        filename = f"my-data-{registration.event.slug}.json"
        headers = {**SECRET_PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
        body = msgspec.json.format(msgspec.json.encode(data), indent=2)
        return Response(body, media_type="application/json", headers=headers)

    @get("/my/{token:str}/erase", name="my_data_erase")
    async def erase_confirm(
        self, token: PathStr, registration_service: RegistrationServiceDep, viewer_zone: ViewerZone
    ) -> Template:
        registration = await registration_by_link(registration_service, token)
        context = {
            "event": present_event(registration.event, viewer_zone),
            "is_active": registration.is_active,
            "erase_url": f"/my/{token}/erase",
            "manage_url": f"/my/{token}",
            "data_url": f"/my/{token}/data.json",
        }
        return Template("privacy/erase.html", context=context, headers=SECRET_PAGE_HEADERS)

    @post("/my/{token:str}/erase", name="my_data_erase_submit")
    async def erase(self, token: PathStr, registration_service: RegistrationServiceDep) -> Template:
        registration = await registration_by_link(registration_service, token)
        await services.erase(registration_service, registration)
        return Template("privacy/erased.html", context={}, headers=SECRET_PAGE_HEADERS)


class PurgePages(Controller):
    """Organisers: when the personal data of their events' registrations will be anonymised."""

    path = "/manage/privacy"
    include_in_schema = False

    @get("/", name="manage_privacy_purges")
    async def purges(self, principal: PrincipalDep, db_session: DbSession, settings: SettingsDep) -> Template:
        if principal.role is Role.CHECKIN_STAFF:
            raise NotFoundException
        lines = await retention.upcoming_purges(db_session, principal, settings.retention_days)
        context = {
            "principal": principal,
            "purges": [purge_view(line) for line in lines],
            "retention_days": settings.retention_days,
        }
        return Template("manage/privacy/purges.html", context=context)
