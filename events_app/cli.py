"""``events-app``: serve, migrate, seed and run the outbox worker."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click
import sqlalchemy as sa
import uvicorn

from events_app.app import make_worker
from events_app.db import maintenance, migrate
from events_app.db.engine import make_sqlalchemy_config
from events_app.db.models import Event, Role
from events_app.domain.accounts.services import AccountError, AccountService
from events_app.domain.events.demo import seed_demo
from events_app.settings import get_settings


@click.group()
def main() -> None:
    """events_app: event and webinar registration."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Web processes (uvicorn workers).")
def run(host: str, port: int, workers: int) -> None:
    """Serve the web app (with an in-process outbox worker unless EVENTS_RUN_WORKER_IN_APP=false)."""
    uvicorn.run(
        "events_app.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        server_header=False,
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command()
def upgrade() -> None:
    """Apply all migrations."""
    migrate.upgrade(get_settings().database_url)
    click.echo("database is at the latest migration")


@db.command()
def compact() -> None:
    """SQLite: VACUUM the file and rebuild the attendee search index (never VACUUM it bare)."""
    if asyncio.run(maintenance.compact(get_settings().database_url)):
        click.echo("database compacted, search index rebuilt")
    else:
        click.echo("nothing to do: PostgreSQL's autovacuum keeps the database compact")


@main.command("seed-demo")
def seed_demo_command() -> None:
    """Create the three demo events (safe to run again)."""

    async def _seed() -> list[str]:
        config = make_sqlalchemy_config(get_settings())
        async with config.get_session() as session:
            created = await seed_demo(session)
        await config.get_engine().dispose()
        return created

    created = asyncio.run(_seed())
    click.echo(f"demo events created: {', '.join(created) if created else 'none (already there)'}")


@main.command("create-user")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([role.value for role in Role]))
@click.option("--name", default="", help="Full name.")
@click.option(
    "--event", "event_slugs", multiple=True, help="Slug of an event to assign (managers, check-in staff)."
)
@click.option("--country", "countries", multiple=True, help="ISO country code a focal point covers.")
def create_user(
    email: str, role: str, name: str, event_slugs: tuple[str, ...], countries: tuple[str, ...]
) -> None:
    """Create an organiser account; the password is asked for (or read from standard input)."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")

    async def _create() -> str:
        config = make_sqlalchemy_config(get_settings())
        try:
            async with config.get_session() as session:
                event_ids = list(
                    (await session.execute(sa.select(Event.id).where(Event.slug.in_(event_slugs)))).scalars()
                )
                if len(event_ids) != len(set(event_slugs)):
                    raise AccountError("unknown event slug among: " + ", ".join(event_slugs))
                user = await AccountService(session=session).create_user(
                    email, password, Role(role), name, event_ids, list(countries)
                )
                await session.commit()
                return user.email
        finally:
            await config.get_engine().dispose()

    try:
        created = asyncio.run(_create())
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {role} {created}")


@main.command()
@click.option("--once", is_flag=True, help="Deliver what is due, then exit.")
def worker(once: bool) -> None:
    """Run the outbox worker alone (for extra workers beside the web processes)."""

    async def _work() -> None:
        settings = get_settings()
        config = make_sqlalchemy_config(settings)
        outbox_worker = make_worker(settings, config.create_session_maker())
        if once:
            await outbox_worker.drain()
        else:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await outbox_worker.run_forever(stop)
        await config.get_engine().dispose()

    asyncio.run(_work())
