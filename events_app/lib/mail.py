"""Building MIME messages and handing them to an SMTP server or a local maildir.

Messages are written straight to bytes (:func:`render_message`) rather than through the standard
library's ``EmailMessage``: the structure is always the same few parts, and the email package's
content manager and header registry cost more than everything else in a confirmation put together.
The output is plain RFC 5322 / MIME (RFC 2045-2047, 2231): ASCII headers, with RFC 2047 encoded words
for any text that is not, quoted-printable bodies and base64 attachments, CRLF line ends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import mailbox
import re
import secrets
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.charset import Charset
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import quote

import aiosmtplib

from events_app.settings import Settings, SmtpSecurity

SMTP_POLICY = policy.SMTP.clone(max_line_length=998)

#: RFC 5322's limit for a line, CRLF excluded, and the length it recommends folding at.
_MAX_LINE = 998
_FOLD_AT = 78
#: The longest encoded word written (see :func:`_header`), short enough for any line to stay legal.
_LONGEST_WORD = 900
#: Header text written as it is: printable ASCII that does not look like the start of an encoded word.
_PLAIN_TEXT = re.compile(r"[\x20-\x7e]*")
#: A word of a display name written as it is (RFC 5322 atext), and such a name.
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_PLAIN_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
#: A word of unstructured text (a subject) written as it is.
_VISIBLE = re.compile(r"[\x21-\x7e]+")
#: A local part written as it is (dot-atom).
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
#: A parameter value that can go in a quoted string: printable ASCII without quote or backslash.
_PLAIN_PARAM = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*")
_UTF8 = Charset("utf-8")
_QP_ENCODING = "Content-Transfer-Encoding: quoted-printable\r\n\r\n"


class DeliveryError(Exception):
    """A message was not delivered; ``permanent`` says whether trying again can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class RenderedMail:
    """A message ready for the wire: its Message-ID, the envelope's recipients and its bytes."""

    message_id: str
    recipients: tuple[str, ...]
    data: bytes

    def parsed(self) -> EmailMessage:
        """The message read back by the email package (for callers that want its headers or parts)."""
        message = message_from_bytes(self.data, policy=SMTP_POLICY)
        assert isinstance(message, EmailMessage)
        return message


class Transport(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def send(self, message: RenderedMail) -> None: ...


@dataclass(slots=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class OutgoingMail:
    """Everything a message needs; :func:`render_message` turns it into MIME."""

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


# --- headers -----------------------------------------------------------------------------------------


def _encoded_run(text: str, width: int) -> list[str]:
    """`text` as RFC 2047 encoded words of at most `width` characters each (Q or B, the shorter)."""
    return [str(line) for line in _UTF8.header_encode_lines(text, itertools.repeat(width))]


def _header(name: str, text: str, plain_word: re.Pattern[str], tail: str = "") -> str:
    """A header line: the words of `text` that can stay as they are, encoded words for runs of the others.

    Runs of words are encoded together, spaces included, as one encoded word, even past RFC 2047's 75
    characters (as the email package writes them): Python's address parser, unlike RFC 2047, keeps the
    space between two encoded words of a name. Text holding something that looks like an encoded word
    (``=?utf-8?q?x?=``) is encoded whole, in encoded words of 75 characters, since a reader would decode
    it otherwise. The line is folded at spaces before 78 characters; `tail` (an address in angle
    brackets) goes last, as it is.
    """
    words = text.split(" ")
    tokens: list[str] = []
    if "=?" in text:
        tokens = _encoded_run(text, 75)
    elif "" in words:  # spaces at either end or several in a row: kept only inside an encoded word
        tokens = _encoded_run(text, _LONGEST_WORD)
    else:
        run: list[str] = []
        for word in words:
            if len(word) <= _FOLD_AT and plain_word.fullmatch(word):
                if run:
                    tokens += _encoded_run(" ".join(run), _LONGEST_WORD)
                    run = []
                tokens.append(word)
            else:
                run.append(word)
        if run:
            tokens += _encoded_run(" ".join(run), _LONGEST_WORD)
    if tail:
        tokens.append(tail)
    lines: list[str] = []
    line = f"{name}:"
    for index, token in enumerate(tokens):
        if index and len(line) + 1 + len(token) > _FOLD_AT:
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _unstructured(name: str, text: str) -> str:
    if _PLAIN_TEXT.fullmatch(text) and "=?" not in text and len(name) + 2 + len(text) <= _MAX_LINE:
        return f"{name}: {text}\r\n"
    return _header(name, text, _VISIBLE)


def _addr_spec(address: Address) -> str:
    """The address for headers and the SMTP envelope (an internationalised domain in its ASCII form)."""
    local, domain = address.username, address.domain
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    if not _DOT_ATOM.fullmatch(local):
        if not (local.isascii() and _PLAIN_TEXT.fullmatch(local)):
            raise ValueError(f"cannot write the non-ASCII address {address.addr_spec!r} without SMTPUTF8")
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{local}@{domain}"


def _mailbox(name: str, address: Address) -> str:
    addr_spec = _addr_spec(address)
    display = address.display_name
    if not display:
        return f"{name}: {addr_spec}\r\n"
    if "=?" not in display and len(name) + len(display) + len(addr_spec) + 7 <= _MAX_LINE:
        if _PLAIN_PHRASE.fullmatch(display):
            return f"{name}: {display} <{addr_spec}>\r\n"
        if _PLAIN_TEXT.fullmatch(display):
            quoted = display.replace("\\", "\\\\").replace('"', '\\"')
            return f'{name}: "{quoted}" <{addr_spec}>\r\n'
    return _header(name, display, _ATOM, f"<{addr_spec}>")


def _param(key: str, value: str) -> str:
    """``; key="value"``, or RFC 2231's ``key*=utf-8''...`` for text that cannot be quoted as it is."""
    if _PLAIN_PARAM.fullmatch(value):
        return f'; {key}="{value}"'
    return f"; {key}*=utf-8''{quote(value, safe='')}"


def _header_line(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"a line break in the {name} header")
    return f"{name}: {value}\r\n"


# --- bodies ------------------------------------------------------------------------------------------


def _quoted_printable(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _text_part(subtype: str, text: str) -> bytes:
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\n{_QP_ENCODING}'
    return head.encode("ascii") + _quoted_printable(text)


def _binary_part(content_type: str, data: bytes, extra_headers: str = "") -> bytes:
    head = f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n{extra_headers}\r\n"
    return head.encode("ascii") + _base64(data)


def _content_type(attachment: Attachment) -> str:
    params = "".join(_param(key, value) for key, value in attachment.params.items())
    return f"{attachment.maintype}/{attachment.subtype}{params}"


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    # "=_" cannot occur in quoted-printable or base64 text, so the boundary never collides with a part.
    boundary = f"=_{secrets.token_hex(12)}"
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode("ascii")
    return b"".join([head, delimiter[2:], delimiter.join(parts), f"\r\n--{boundary}--\r\n".encode("ascii")])


def render_message(mail: OutgoingMail, date: datetime | None = None) -> RenderedMail:
    """mixed[ alternative[ text, related[ html, images ], text/calendar ], attachments ], as bytes.

    Parts that are absent are left out (no related without images, no mixed without attachments).
    """
    html = _text_part("html", mail.html)
    if mail.inline_images:
        images = [
            _binary_part(
                f"{image.maintype}/{image.subtype}",
                image.content,
                f"Content-Disposition: inline{_param('filename', image.filename)}\r\n"
                + _header_line("Content-ID", f"<{content_id}>"),
            )
            for content_id, image in mail.inline_images.items()
        ]
        html = _multipart("related", [html, *images])
    alternatives = [_text_part("plain", mail.text), html]
    if mail.calendar is not None and mail.calendar_method:
        content_type = f'text/calendar; charset="UTF-8"{_param("method", mail.calendar_method)}'
        alternatives.append(_binary_part(content_type, mail.calendar))
    body = _multipart("alternative", alternatives)
    if mail.attachments:
        files = [
            _binary_part(
                _content_type(attachment),
                attachment.content,
                f"Content-Disposition: attachment{_param('filename', attachment.filename)}\r\n",
            )
            for attachment in mail.attachments
        ]
        body = _multipart("mixed", [body, *files])
    headers = [
        _unstructured("Subject", mail.subject),
        _mailbox("From", mail.sender),
        _mailbox("To", mail.recipient),
        _mailbox("Reply-To", mail.reply_to) if mail.reply_to is not None else "",
        _header_line("Message-ID", mail.message_id),
        _header_line("Date", format_datetime(date or datetime.now(UTC))),
        "MIME-Version: 1.0\r\n",
        _header_line("Content-Language", mail.language.replace("_", "-")),
    ]
    data = "".join(headers).encode("ascii") + body
    return RenderedMail(mail.message_id, (_addr_spec(mail.recipient),), data)


# --- transports --------------------------------------------------------------------------------------


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

    async def send(self, message: RenderedMail) -> None:
        try:
            client = await self._connected()
            errors, _ = await client.sendmail(
                self._settings.mail_from, list(message.recipients), message.data
            )
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

    async def send(self, message: RenderedMail) -> None:
        try:
            await asyncio.to_thread(self._add, message.data)
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
