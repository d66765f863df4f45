"""Users, API tokens and the audit log: administrators only, everyone else gets 404."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from events_app.db.models import User
from events_app.deps import DbSession, ViewerZone
from events_app.domain.accounts.deps import PrincipalDep
from events_app.domain.accounts.permissions import Principal
from events_app.domain.admin.schemas import FormInvalid, FormValues, form_values
from events_app.domain.admin.services import AdminService, AuditFilters

FormData = URLEncodedBody[dict[str, Any]]
Query = Annotated[str | None, QueryParameter()]
#: The page that shows a new API token: never cached, never sent on as a Referer.
SECRET_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise NotFoundException()


async def _user_or_404(service: AdminService, user_id: UUID) -> User:
    user = await service.get_user(user_id)
    if user is None:
        raise NotFoundException()
    return user


def _form_page(template: str, principal: Principal, context: dict[str, Any], status: int = 200) -> Template:
    return Template(template, context={"principal": principal, **context}, status_code=status)


class UserPages(Controller):
    path = "/manage/users"
    include_in_schema = False

    @get("/", name="admin_users")
    async def list_users(
        self, principal: PrincipalDep, db_session: DbSession, viewer_zone: ViewerZone
    ) -> Template:
        require_admin(principal)
        rows = await AdminService(db_session).user_rows(viewer_zone)
        return _form_page("manage/admin/users.html", principal, {"users": rows})

    @get("/new", name="admin_user_new")
    async def new_user(self, principal: PrincipalDep, db_session: DbSession) -> Template:
        require_admin(principal)
        values = FormValues(text={"role": "event_manager"})
        context = await AdminService(db_session).user_form_context(values, {})
        return _form_page("manage/admin/user_form.html", principal, context)

    @post("/new", name="admin_user_create")
    async def create_user(
        self, principal: PrincipalDep, db_session: DbSession, data: FormData
    ) -> Template | Redirect:
        require_admin(principal)
        service = AdminService(db_session)
        try:
            await service.create_user(principal, data)
        except FormInvalid as invalid:
            context = await service.user_form_context(form_values(data), invalid.errors)
            return _form_page(
                "manage/admin/user_form.html", principal, context, HTTP_422_UNPROCESSABLE_ENTITY
            )
        return Redirect("/manage/users")

    @get("/{user_id:uuid}/edit", name="admin_user_edit")
    async def edit_user(
        self, user_id: FromPath[UUID], principal: PrincipalDep, db_session: DbSession
    ) -> Template:
        require_admin(principal)
        service = AdminService(db_session)
        user = await _user_or_404(service, user_id)
        context = await service.user_form_context(service.values_of(user), {}, user)
        return _form_page("manage/admin/user_form.html", principal, context)

    @post("/{user_id:uuid}/edit", name="admin_user_update")
    async def update_user(
        self, user_id: FromPath[UUID], principal: PrincipalDep, db_session: DbSession, data: FormData
    ) -> Template | Redirect:
        require_admin(principal)
        service = AdminService(db_session)
        user = await _user_or_404(service, user_id)
        try:
            await service.update_user(principal, user, data)
        except FormInvalid as invalid:
            values = form_values(data)
            values.text["email"] = user.email
            context = await service.user_form_context(values, invalid.errors, user)
            return _form_page(
                "manage/admin/user_form.html", principal, context, HTTP_422_UNPROCESSABLE_ENTITY
            )
        return Redirect("/manage/users")

    @post("/{user_id:uuid}/deactivate", name="admin_user_deactivate")
    async def deactivate_user(
        self, user_id: FromPath[UUID], principal: PrincipalDep, db_session: DbSession
    ) -> Template | Redirect:
        require_admin(principal)
        service = AdminService(db_session)
        user = await _user_or_404(service, user_id)
        try:
            await service.deactivate_user(principal, user)
        except FormInvalid as invalid:
            context = await service.user_form_context(service.values_of(user), invalid.errors, user)
            return _form_page(
                "manage/admin/user_form.html", principal, context, HTTP_422_UNPROCESSABLE_ENTITY
            )
        return Redirect("/manage/users")


class TokenPages(Controller):
    path = "/manage/tokens"
    include_in_schema = False

    @get("/", name="admin_tokens")
    async def list_tokens(
        self, principal: PrincipalDep, db_session: DbSession, viewer_zone: ViewerZone
    ) -> Template:
        require_admin(principal)
        context = await AdminService(db_session).token_page_context(viewer_zone)
        return _form_page("manage/admin/tokens.html", principal, context)

    @post("/", name="admin_token_create")
    async def create_token(
        self, principal: PrincipalDep, db_session: DbSession, viewer_zone: ViewerZone, data: FormData
    ) -> Template:
        require_admin(principal)
        service = AdminService(db_session)
        try:
            token, secret = await service.create_token(principal, data)
        except FormInvalid as invalid:
            context = await service.token_page_context(viewer_zone, form_values(data), invalid.errors)
            return _form_page("manage/admin/tokens.html", principal, context, HTTP_422_UNPROCESSABLE_ENTITY)
        context = {"principal": principal, "token": token, "secret": secret}
        return Template("manage/admin/token_created.html", context=context, headers=SECRET_PAGE_HEADERS)

    @post("/{token_id:uuid}/revoke", name="admin_token_revoke")
    async def revoke_token(
        self, token_id: FromPath[UUID], principal: PrincipalDep, db_session: DbSession
    ) -> Redirect:
        require_admin(principal)
        if await AdminService(db_session).revoke_token(principal, token_id) is None:
            raise NotFoundException()
        return Redirect("/manage/tokens")


class AuditPages(Controller):
    include_in_schema = False

    @get("/manage/audit", name="admin_audit")
    async def audit_log(
        self,
        principal: PrincipalDep,
        db_session: DbSession,
        viewer_zone: ViewerZone,
        action: Query = None,
        actor: Query = None,
        event: Query = None,
        page: Query = None,
    ) -> Template:
        require_admin(principal)
        try:
            filters = AuditFilters.parse(action, actor, event, page)
        except ValueError as exc:
            raise NotFoundException() from exc
        found = await AdminService(db_session).audit_page(filters, viewer_zone)
        if found is None:
            raise NotFoundException()
        return _form_page("manage/admin/audit.html", principal, {"log": found})
