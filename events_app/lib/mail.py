"""Building MIME messages and handing them to an SMTP server or a local maildir."""

from __future__ import annotations

import asyncio
import itertools
import mailbox
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.charset import Charset
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import aiosmtplib

from events_app.settings import Settings, SmtpSecurity

SMTP_POLICY = policy.SMTP.clone(max_line_length=998)


class DeliveryError(Exception):
    """A message was not delivered; ``permanent`` says whether trying again can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Transport(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def send(self, message: EmailMessage) -> None: ...


@dataclass(slots=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class OutgoingMail:
    """Everything a message needs; :func:`build_message` turns it into MIME."""

    sender: Address
    recipient: Address
    reply_to: Address | None
    subject: str
    text: str
    html: str
    message_id: str
    language: str
    inline_images: dict[str, Attachment] = field(default_factory=dict)  # by Content-ID (without <>)
    calendar: bytes | None = None
    calendar_method: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


class _EncodedHeader(str):
    """A header whose text is written as RFC 2047 encoded words from end to end.

    The email package decodes whatever looks like an encoded word (``=?utf-8?q?x?=``) in a value it is
    given and writes ASCII text as it is, so a subject or a person's name typed with such text would
    reach the reader changed. Encoding the whole text keeps it literal. For an address header the text
    is the display name, followed by the address. Only used when the text holds ``=?``.
    """

    name: str
    addresses: tuple[Address, ...]

    def __new__(cls, name: str, text: str, address: Address | None = None) -> _EncodedHeader:
        header = super().__new__(cls, str(address) if address is not None else text)
        header.name = name
        header.addresses = (address,) if address is not None else ()
        return header

    def fold(self, *, policy: Policy) -> str:
        text = self.addresses[0].display_name if self.addresses else str(self)
        widths = itertools.chain([75 - len(self.name) - 2], itertools.repeat(75))
        lines = [str(line) for line in Charset("utf-8").header_encode_lines(text, widths)]
        if self.addresses:
            lines.append(f"<{self.addresses[0].addr_spec}>")
        return f"{self.name}: " + f"{policy.linesep} ".join(lines) + policy.linesep


def _unstructured(name: str, value: str) -> str:
    return _EncodedHeader(name, value) if "=?" in value else value


def _mailbox(name: str, address: Address) -> Address | str:
    return _EncodedHeader(name, address.display_name, address) if "=?" in address.display_name else address


def build_message(mail: OutgoingMail, sent_at_header: str | None = None) -> EmailMessage:
    """multipart/mixed[ alternative[ text, related[ html, images ], text/calendar ], attachments ]."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["Subject"] = _unstructured("Subject", mail.subject)
    message["From"] = _mailbox("From", mail.sender)
    message["To"] = _mailbox("To", mail.recipient)
    if mail.reply_to is not None:
        message["Reply-To"] = _mailbox("Reply-To", mail.reply_to)
    message["Message-ID"] = mail.message_id
    if sent_at_header:
        message["Date"] = sent_at_header
    message.set_content(mail.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(mail.html, subtype="html", charset="utf-8", cte="quoted-printable")
    if mail.inline_images:
        parts = message.get_payload()
        assert isinstance(parts, list)
        html_part = parts[-1]
        assert isinstance(html_part, EmailMessage)
        for content_id, image in mail.inline_images.items():
            html_part.add_related(
                image.content,
                maintype=image.maintype,
                subtype=image.subtype,
                cid=f"<{content_id}>",
                filename=image.filename,
                disposition="inline",
            )
    if mail.calendar is not None and mail.calendar_method:
        message.add_alternative(
            mail.calendar,
            maintype="text",
            subtype="calendar",
            params={"method": mail.calendar_method, "charset": "UTF-8"},
            cte="base64",
        )
    for attachment in mail.attachments:
        message.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
            params=attachment.params,
        )
    # Last: each multipart conversion above moves the Content-* headers into the first part.
    message["Content-Language"] = mail.language.replace("_", "-")
    return message


def serialise(message: EmailMessage) -> bytes:
    if message["Date"] is None:
        message["Date"] = format_datetime(datetime.now(UTC))
    return message.as_bytes(policy=SMTP_POLICY)


class SmtpTransport:
    """One SMTP connection reused for a batch; reconnects after a broken connection."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.effective_smtp_port,
            use_tls=settings.smtp_security is SmtpSecurity.TLS,
            start_tls=settings.smtp_security is SmtpSecurity.STARTTLS,
            timeout=settings.smtp_timeout_seconds,
            tls_context=ssl.create_default_context()
            if settings.smtp_security is not SmtpSecurity.NONE
            else None,
        )
        await client.connect()
        if settings.smtp_username:
            await client.login(settings.smtp_username, settings.smtp_password)
        self._client = client
        return client

    async def send(self, message: EmailMessage) -> None:
        data = serialise(message)
        sender = self._settings.mail_from
        recipients = [str(address.addr_spec) for address in message["To"].addresses]
        try:
            client = await self._connected()
            errors, _ = await client.sendmail(sender, recipients, data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            raise DeliveryError(_describe(exc), permanent=all(code >= 500 for code in codes)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:
                await self._close()
            raise DeliveryError(_describe(exc), permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._close()
            raise DeliveryError(_describe(exc), permanent=False) from exc
        if errors:
            raise DeliveryError(f"recipients refused: {errors}", permanent=True)


class MaildirTransport:
    """Delivers into a local maildir: the embedded default when no SMTP server is configured."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def send(self, message: EmailMessage) -> None:
        data = serialise(message)
        try:
            await asyncio.to_thread(self._add, data)
        except OSError as exc:
            raise DeliveryError(_describe(exc), permanent=False) from exc

    def _add(self, data: bytes) -> None:
        mailbox.Maildir(str(self._path), create=True).add(data)


def make_transport(settings: Settings) -> Transport:
    if settings.uses_smtp:
        return SmtpTransport(settings)
    assert settings.maildir is not None
    return MaildirTransport(settings.maildir)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
