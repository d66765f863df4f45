"""Administration: users and their scopes, API tokens shown once, the audit-log viewer; admins only."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from conftest import PASSWORD, add_event, create_user, csrf_token, login
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from events_app.db.models import ApiToken, AuditEntry, Event, Role, User
from events_app.domain.accounts.services import AccountService
from events_app.domain.admin.services import AUDIT_PAGE_SIZE
from events_app.lib.security import hash_token

NEW_PASSWORD = "a brand new passphrase 2027"
TOKEN_FIELD = re.compile(r'id="token-secret" type="text" readonly value="([^"]+)"')


async def as_admin(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> User:
    admin = await create_user(session_maker, "admin@example.org", Role.ADMIN)
    response = await login(client, "admin@example.org")
    assert response.status_code == 200
    return admin


async def two_events(session_maker: async_sessionmaker[AsyncSession]) -> tuple[Event, Event]:
    launch = await add_event(session_maker, slug="launch", texts={"en": {"title": "Launch in Bogotá"}})
    webinar = await add_event(session_maker, slug="webinar", texts={"en": {"title": "Webinar on evidence"}})
    return launch, webinar


async def post_form(
    client: AsyncTestClient[Litestar], page: str, action: str, fields: dict[str, Any] | None = None
) -> Any:
    token = await csrf_token(client, page)
    return await client.post(action, data={"_csrf_token": token, **(fields or {})}, follow_redirects=False)


async def user_by_email(session_maker: async_sessionmaker[AsyncSession], email: str) -> User:
    async with session_maker() as session:
        user = await session.scalar(sa.select(User).where(User.email == email))
        assert user is not None
        return user


async def audit_actions(
    session_maker: async_sessionmaker[AsyncSession],
) -> list[tuple[str, str, dict[str, Any]]]:
    async with session_maker() as session:
        rows = await session.execute(
            sa.select(AuditEntry.action, AuditEntry.actor_label, AuditEntry.details).order_by(AuditEntry.id)
        )
        return [(action, actor, details) for action, actor, details in rows.tuples()]


async def test_admin_creates_users_of_every_role_and_they_see_their_scope(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    launch, webinar = await two_events(session_maker)
    await as_admin(client, session_maker)
    form_page = (await client.get("/manage/users/new")).text
    assert 'name="events"' in form_page
    assert "Launch in Bogotá" in form_page
    accounts = [
        {
            "email": "Manager@Example.org",
            "full_name": "Marta",
            "role": "event_manager",
            "events": [str(launch.id)],
        },
        {"email": "door@example.org", "role": "checkin_staff", "events": [str(webinar.id), str(launch.id)]},
        {
            "email": "focal@example.org",
            "role": "focal_point",
            "countries": ["BR", "co"],
            "events": str(launch.id),
        },
        {"email": "second-admin@example.org", "role": "admin", "countries": "AR"},
    ]
    for account in accounts:
        response = await post_form(
            client, "/manage/users/new", "/manage/users/new", {**account, "password": PASSWORD}
        )
        assert response.status_code in (302, 303), response.text
        assert response.headers["location"] == "/manage/users"

    manager = await user_by_email(session_maker, "manager@example.org")
    assert (manager.role, manager.full_name) == (Role.EVENT_MANAGER, "Marta")
    assert [a.event_id for a in manager.event_assignments] == [launch.id]
    door = await user_by_email(session_maker, "door@example.org")
    assert {a.event_id for a in door.event_assignments} == {launch.id, webinar.id}
    focal = await user_by_email(session_maker, "focal@example.org")
    assert sorted(c.country for c in focal.countries) == ["BR", "CO"]
    assert focal.event_assignments == []  # events are only for managers and check-in staff
    second = await user_by_email(session_maker, "second-admin@example.org")
    assert (second.role, second.countries) == (Role.ADMIN, [])

    listing = (await client.get("/manage/users")).text
    for text in ("manager@example.org", "Event manager", "Check-in staff", "Focal point", "Brazil, Colombia"):
        assert text in listing
    assert "Webinar on evidence" in listing
    created = [
        details for action, actor, details in await audit_actions(session_maker) if action == "user_created"
    ]
    assert [details["email"] for details in created] == [
        "manager@example.org",
        "door@example.org",
        "focal@example.org",
        "second-admin@example.org",
    ]
    assert created[0]["events"] == [str(launch.id)]
    assert all(PASSWORD not in str(details) for details in created)

    # The new event manager logs in and sees only their event.
    assert (await login(client, "manager@example.org")).status_code == 200
    home = (await client.get("/manage")).text
    assert "Launch in Bogotá" in home
    assert "Webinar on evidence" not in home
    assert (await client.get("/manage/users")).status_code == 404


async def test_user_form_errors_are_inline_and_keep_what_was_typed(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await as_admin(client, session_maker)
    fields = {
        "email": "not-an-email",
        "full_name": "Zoë <b>Bold</b>",
        "role": "focal_point",
        "password": "too short",
        "events": str(uuid7()),
    }
    response = await post_form(client, "/manage/users/new", "/manage/users/new", fields)
    assert response.status_code == 422
    page = response.text
    for field in ("email", "password", "events", "countries"):
        assert f'id="{field}-error"' in page, field
    assert re.search(r'id="email"[^>]*aria-invalid="true" aria-describedby="email-error"', page)
    assert re.search(
        r'id="password"[^>]*aria-invalid="true" aria-describedby="password-hint password-error"', page
    )
    assert "at least 12 characters" in page
    assert 'value="Zoë &lt;b&gt;Bold&lt;/b&gt;"' in page
    assert 'value="not-an-email"' in page
    assert "too short" not in page  # a password is never sent back
    assert '<option value="focal_point" selected>' in page

    await create_user(session_maker, "taken@example.org", Role.FOCAL_POINT, countries=["CL"])
    fields = {"email": "TAKEN@example.org", "role": "admin", "password": PASSWORD}
    response = await post_form(client, "/manage/users/new", "/manage/users/new", fields)
    assert response.status_code == 422
    assert "A user with this email exists already." in response.text
    response = await post_form(client, "/manage/users/new", "/manage/users/new", {**fields, "role": "chief"})
    assert response.status_code == 422
    assert "Choose a role from the list." in response.text

    # In Spanish too, and still a 422, never a 500.
    response = await post_form(client, "/manage/users/new?lang=es", "/manage/users/new", {"email": "x"})
    assert response.status_code == 422
    assert "Este campo es obligatorio." in response.text
    async with session_maker() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(User)) == 2


async def test_edit_reset_password_and_deactivate(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    launch, webinar = await two_events(session_maker)
    admin = await as_admin(client, session_maker)
    manager = await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[launch])
    edit = f"/manage/users/{manager.id}/edit"
    assert "checked" in (await client.get(edit)).text

    fields = {
        "full_name": "Marta R.",
        "role": "event_manager",
        "events": [str(webinar.id)],
        "is_active": "yes",
        "password": NEW_PASSWORD,
    }
    response = await post_form(client, edit, edit, fields)
    assert response.status_code in (302, 303), response.text
    stored = await user_by_email(session_maker, "manager@example.org")
    assert [a.event_id for a in stored.event_assignments] == [webinar.id]
    assert stored.full_name == "Marta R."
    [updated] = [
        details for action, _, details in await audit_actions(session_maker) if action == "user_updated"
    ]
    assert sorted(updated["changed"]) == ["events", "full_name", "password"]
    assert NEW_PASSWORD not in str(updated)

    # Changing the role to focal point drops the events and needs countries.
    response = await post_form(client, edit, edit, {**fields, "role": "focal_point", "password": ""})
    assert response.status_code == 422
    assert 'id="countries-error"' in response.text
    response = await post_form(
        client, edit, edit, {**fields, "role": "focal_point", "password": "", "countries": "PE"}
    )
    assert response.status_code in (302, 303)
    stored = await user_by_email(session_maker, "manager@example.org")
    assert (stored.role, stored.event_assignments, [c.country for c in stored.countries]) == (
        Role.FOCAL_POINT,
        [],
        ["PE"],
    )

    # The old password no longer works, the new one does; then the user is deactivated.
    # (A login ends the session of the cookie it comes with, so the cookies are cleared in between.)
    client.cookies.clear()
    assert (await login(client, "manager@example.org")).status_code == 401
    assert (await login(client, "manager@example.org", NEW_PASSWORD)).status_code == 200
    assert (await client.get("/manage")).status_code == 200
    manager_session = client.cookies.get("session") or ""
    client.cookies.clear()
    await login(client, "admin@example.org")
    response = await post_form(client, "/manage/users", f"/manage/users/{manager.id}/deactivate")
    assert response.status_code in (302, 303)
    admin_session = client.cookies.get("session") or ""
    client.cookies.set("session", manager_session, domain="testserver.local")
    assert (await client.get("/manage", follow_redirects=False)).status_code in (302, 303)
    client.cookies.clear()
    assert (await login(client, "manager@example.org", NEW_PASSWORD)).status_code == 401
    client.cookies.set("session", admin_session, domain="testserver.local")
    listing = (await client.get("/manage/users")).text
    manager_row = listing.split(f'data-user="{manager.id}"')[1].split("</tr>")[0]
    assert "<td>No</td>" in manager_row
    assert "Deactivate manager@example.org" not in manager_row

    # An admin cannot deactivate or demote themselves.
    own = f"/manage/users/{admin.id}/edit"
    response = await post_form(client, "/manage/users", f"/manage/users/{admin.id}/deactivate")
    assert response.status_code == 422
    assert "You cannot deactivate your own account." in response.text
    response = await post_form(client, own, own, {"role": "admin"})
    assert response.status_code == 422
    assert 'id="is_active-error"' in response.text
    response = await post_form(
        client, own, own, {"role": "focal_point", "countries": "CO", "is_active": "yes"}
    )
    assert response.status_code == 422
    assert "You cannot remove your own administrator role." in response.text
    assert (await user_by_email(session_maker, "admin@example.org")).is_active
    assert (await client.get("/manage/users")).status_code == 200
    assert (await client.get(f"/manage/users/{uuid7()}/edit")).status_code == 404

    actions = [action for action, _, _ in await audit_actions(session_maker)]
    assert actions.count("user_updated") == 2
    assert actions.count("user_deactivated") == 1


async def test_non_admins_get_404_on_every_admin_route(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    launch, _ = await two_events(session_maker)
    admin = await create_user(session_maker, "admin@example.org", Role.ADMIN)
    async with session_maker() as session:
        stored_admin = await AccountService(session=session).get(admin.id)
        token, _ = await AccountService(session=session).create_api_token(stored_admin, "ci", None)
        await session.commit()
    users = [
        await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[launch]),
        await create_user(session_maker, "focal@example.org", Role.FOCAL_POINT, countries=["CO"]),
        await create_user(session_maker, "door@example.org", Role.CHECKIN_STAFF, events=[launch]),
    ]
    pages = [
        "/manage/users",
        "/manage/users/new",
        f"/manage/users/{admin.id}/edit",
        "/manage/tokens",
        "/manage/audit",
    ]
    forms = {
        "/manage/users/new": {"email": "intruder@example.org", "role": "admin", "password": PASSWORD},
        f"/manage/users/{admin.id}/edit": {"role": "checkin_staff"},
        f"/manage/users/{admin.id}/deactivate": {},
        "/manage/tokens": {"name": "stolen", "user_id": str(admin.id)},
        f"/manage/tokens/{token.id}/revoke": {},
    }
    for user in users:
        assert (await login(client, user.email)).status_code == 200
        for page in pages:
            assert (await client.get(page)).status_code == 404, (user.role, page)
        csrf = await csrf_token(client, "/login")
        for action, fields in forms.items():
            response = await client.post(action, data={"_csrf_token": csrf, **fields}, follow_redirects=False)
            assert response.status_code == 404, (user.role, action)
    async with session_maker() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(User)) == 4
        assert (await session.get(ApiToken, token.id)).revoked_at is None  # type: ignore[union-attr]
        assert (await session.get(User, admin.id)).is_active  # type: ignore[union-attr]
        assert await session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 1

    client.cookies.clear()
    response = await client.get("/manage/users", follow_redirects=False)
    assert response.status_code in (302, 303)
    assert response.headers["location"].startswith("/login")


async def test_api_token_is_shown_once_works_and_can_be_revoked(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    launch, webinar = await two_events(session_maker)
    await as_admin(client, session_maker)
    manager = await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[launch])

    response = await post_form(client, "/manage/tokens", "/manage/tokens", {"name": "", "user_id": "nobody"})
    assert response.status_code == 422
    assert 'id="name-error"' in response.text
    assert 'id="user_id-error"' in response.text

    response = await post_form(
        client, "/manage/tokens", "/manage/tokens", {"name": "CRM <sync>", "user_id": str(manager.id)}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    found = TOKEN_FIELD.search(response.text)
    assert found
    secret = found.group(1)
    assert len(secret) >= 40

    listing = (await client.get("/manage/tokens")).text
    assert secret not in listing
    assert "CRM &lt;sync&gt;" in listing
    assert "manager@example.org" in listing
    async with session_maker() as session:
        stored = await session.scalar(sa.select(ApiToken))
        assert stored is not None
        assert stored.token_hash == hash_token(secret)
        assert all(secret not in str(value) for value in sa.inspect(stored).dict.values())
        principal = await AccountService(session=session).principal_for_api_token(secret)
        assert principal is not None
        assert principal.email == "manager@example.org"
        assert principal.event_ids == frozenset({launch.id})
    assert all(secret not in str(details) for _, _, details in await audit_actions(session_maker))

    bearer = {"Authorization": f"Bearer {secret}"}
    assert (
        await client.get(f"/api/manage/events/{launch.id}/registrations", headers=bearer)
    ).status_code == 200
    assert (
        await client.get(f"/api/manage/events/{webinar.id}/registrations", headers=bearer)
    ).status_code == 404
    assert (
        "Never"
        not in (await client.get("/manage/tokens")).text.split("CRM &lt;sync&gt;")[1].split("</tr>")[0]
    )

    response = await post_form(client, "/manage/tokens", f"/manage/tokens/{stored.id}/revoke")
    assert response.status_code in (302, 303)
    assert (
        await client.get(f"/api/manage/events/{launch.id}/registrations", headers=bearer)
    ).status_code == 401
    async with session_maker() as session:
        assert await AccountService(session=session).principal_for_api_token(secret) is None
    # Revoking again changes nothing; an unknown token is 404.
    assert (await post_form(client, "/manage/tokens", f"/manage/tokens/{stored.id}/revoke")).status_code in (
        302,
        303,
    )
    assert (await post_form(client, "/manage/tokens", f"/manage/tokens/{uuid7()}/revoke")).status_code == 404

    actions = [(action, actor, details) for action, actor, details in await audit_actions(session_maker)]
    token_actions = [
        (action, details) for action, actor, details in actions if action.startswith("api_token")
    ]
    assert token_actions == [
        ("api_token_created", {"name": "CRM <sync>", "owner": "manager@example.org"}),
        ("api_token_revoked", {"name": "CRM <sync>", "owner": "manager@example.org"}),
    ]
    assert all(actor == "admin@example.org" for action, actor, _ in actions if action.startswith("api_token"))


async def test_audit_viewer_filters_escapes_and_pages(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    launch, _ = await two_events(session_maker)
    await as_admin(client, session_maker)
    for index in range(3):
        fields = {
            "email": f"user{index}@example.org",
            "role": "focal_point",
            "countries": "CO",
            "password": PASSWORD,
        }
        await post_form(client, "/manage/users/new", "/manage/users/new", fields)
    async with session_maker() as session:
        for index in range(AUDIT_PAGE_SIZE + 5):
            session.add(
                AuditEntry(
                    id=uuid7(),
                    actor_label="robot_1%@example.org",
                    action="registration_exported",
                    object_type="event",
                    object_id=str(launch.id),
                    event_id=launch.id,
                    details={"format": "csv", "note": f"<script>alert({index})</script>"},
                )
            )
        await session.commit()

    page = (await client.get("/manage/audit")).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(" in page
    assert page.count("<tr>") == AUDIT_PAGE_SIZE + 1  # the header row and one page
    assert 'rel="next"' in page
    second = (await client.get("/manage/audit?page=2")).text
    assert 'rel="prev"' in second
    assert "user_created" in second  # the oldest entries come last

    created = (await client.get("/manage/audit?action=user_created")).text
    assert created.count("<tr>") == 1 + 3
    assert "registration_exported" in created  # in the filter's list of actions, not in the table
    assert "user2@example.org" in created.split("<tbody>")[1].split("</tbody>")[0].split("</tr>")[0]

    by_actor = (await client.get("/manage/audit?actor=ADMIN@example")).text
    assert by_actor.count("<tr>") == 1 + 3  # the three users the admin created
    # % and _ are searched for literally, not as wildcards.
    assert (await client.get("/manage/audit?actor=1%25@")).text.count("<tr>") == 1 + AUDIT_PAGE_SIZE
    assert "No audit entries match" in (await client.get("/manage/audit?actor=robot%25example")).text
    assert "No audit entries match" in (await client.get("/manage/audit?actor=robot_%25")).text

    for_event = (await client.get(f"/manage/audit?event={launch.id}&page=2")).text
    assert for_event.count("<tr>") == 1 + 5
    assert "Launch in Bogotá" in for_event
    assert (await client.get(f"/manage/audit?event={uuid7()}")).status_code == 404
    assert (await client.get("/manage/audit?event=nonsense")).status_code == 404
    for odd in (
        "page=abc",
        "page=-3",
        "page=99999999999",
        "actor=%00robot",
        "action=%00",
        "action=a&action=b",
    ):
        assert (await client.get(f"/manage/audit?{odd}")).status_code in (200, 400), odd
    assert "robot_1%@example.org" in (await client.get("/manage/audit?actor=%00robot")).text
