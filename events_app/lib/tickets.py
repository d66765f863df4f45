"""QR codes for tickets, as PNG bytes."""

from __future__ import annotations

import io

import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M
from qrcode.exceptions import DataOverflowError

#: Version 4 at level M holds 62 bytes in byte mode; a ticket code is 43.
FIXED_VERSION = 4
#: A fixed mask skips qrcode's scoring of all eight; this one decodes reliably (see tests/test_tickets.py).
FIXED_MASK = 2

_DARK = 0
_LIGHT = 255


def _fixed_matrix(data: bytes, border: int) -> list[list[bool]]:
    qr = qrcode.QRCode(
        version=FIXED_VERSION, error_correction=ERROR_CORRECT_M, border=border, mask_pattern=FIXED_MASK
    )
    qr.add_data(data, optimize=0)
    qr.make(fit=False)
    matrix: list[list[bool]] = qr.get_matrix()
    return matrix


def _fitted_matrix(data: bytes, border: int) -> list[list[bool]]:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=border)
    qr.add_data(data, optimize=0)
    qr.make(fit=True)
    matrix: list[list[bool]] = qr.get_matrix()
    return matrix


def qr_matrix(code: str, *, border: int = 4) -> list[list[bool]]:
    """The modules (True = dark), border included: fixed version and mask, or fitted when too long."""
    data = code.encode("utf-8")
    try:
        return _fixed_matrix(data, border)
    except DataOverflowError:
        return _fitted_matrix(data, border)


def _render(matrix: list[list[bool]], box_size: int) -> Image.Image:
    """One pixel per module, then scaled up: much faster than drawing each module as a rectangle."""
    width = len(matrix)
    pixels = bytes(_DARK if dark else _LIGHT for row in matrix for dark in row)
    small = Image.frombytes("L", (width, width), pixels)
    size = width * box_size
    return small.resize((size, size), Image.Resampling.NEAREST).convert("1", dither=Image.Dither.NONE)


def ticket_qr_png(code: str, *, box_size: int = 8, border: int = 4) -> bytes:
    """A PNG of a QR code (error correction M) that holds exactly `code`."""
    if box_size < 1 or border < 0:
        raise ValueError("box_size must be >= 1 and border >= 0")
    buffer = io.BytesIO()
    _render(qr_matrix(code, border=border), box_size).save(buffer, format="PNG")
    return buffer.getvalue()
