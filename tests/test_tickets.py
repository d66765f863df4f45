"""events_app.lib.tickets: the QR PNG is a valid image that a real decoder reads back exactly."""

from __future__ import annotations

import io
import secrets

import pytest
import zxingcpp
from PIL import Image, ImageFilter

from events_app.lib.tickets import FIXED_VERSION, qr_matrix, ticket_qr_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Modules on a side of a version-4 symbol.
VERSION_4_SIZE = 17 + 4 * FIXED_VERSION


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(PNG_SIGNATURE)
    Image.open(io.BytesIO(data)).verify()
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def decode_qr(image: Image.Image) -> str:
    barcodes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(barcodes) == 1
    [barcode] = barcodes
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    assert barcode.ec_level == "M"
    return barcode.text


def test_decoder_reads_the_code_exactly() -> None:
    for _ in range(40):
        code = secrets.token_urlsafe(32)
        assert len(code) == 43
        assert decode_qr(open_png(ticket_qr_png(code))) == code


def test_small_and_blurred_renders_still_decode() -> None:
    for _ in range(15):
        code = secrets.token_urlsafe(32)
        small = open_png(ticket_qr_png(code, box_size=2, border=2))
        assert decode_qr(small) == code
        blurred = open_png(ticket_qr_png(code, box_size=4)).convert("L").filter(ImageFilter.GaussianBlur(1.2))
        assert decode_qr(blurred) == code


def test_ticket_codes_use_the_fixed_version() -> None:
    matrix = qr_matrix(secrets.token_urlsafe(32), border=0)
    assert len(matrix) == VERSION_4_SIZE
    assert all(len(row) == VERSION_4_SIZE for row in matrix)


@pytest.mark.parametrize(("box_size", "border"), [(8, 4), (3, 0), (10, 2)])
def test_image_size_follows_box_size_and_border(box_size: int, border: int) -> None:
    image = open_png(ticket_qr_png(secrets.token_urlsafe(32), box_size=box_size, border=border))
    side = (VERSION_4_SIZE + 2 * border) * box_size
    assert image.size == (side, side)
    assert {color for _, color in image.convert("L").getcolors()} == {0, 255}


def test_quiet_zone_is_light() -> None:
    image = open_png(ticket_qr_png(secrets.token_urlsafe(32), box_size=5, border=4)).convert("L")
    margin = 4 * 5
    width = image.width
    for x in range(width):
        for y in (*range(margin), *range(width - margin, width)):
            assert image.getpixel((x, y)) == 255
            assert image.getpixel((y, x)) == 255


@pytest.mark.parametrize("length", [62, 63, 200])
def test_longer_codes_fit_or_fall_back(length: int) -> None:
    """62 bytes is all version 4-M holds; past that the version is chosen to fit."""
    code = (secrets.token_urlsafe(length) * 2)[:length]
    matrix = qr_matrix(code, border=0)
    if length <= 62:
        assert len(matrix) == VERSION_4_SIZE
    else:
        assert len(matrix) > VERSION_4_SIZE
    assert decode_qr(open_png(ticket_qr_png(code))) == code


@pytest.mark.parametrize(("box_size", "border"), [(0, 4), (8, -1)])
def test_bad_sizes_are_refused(box_size: int, border: int) -> None:
    with pytest.raises(ValueError, match="box_size"):
        ticket_qr_png("x", box_size=box_size, border=border)


def test_a_ticket_is_version_4_and_a_long_text_still_fits() -> None:
    """Ticket codes take the fixed version 4 symbol (33 modules); a text too long for it is fitted."""
    for code in [*(secrets.token_urlsafe(32) for _ in range(10)), "ñandú ✓ café", "x" * 62]:
        assert len(qr_matrix(code, border=0)) == 17 + 4 * FIXED_VERSION, code
    assert len(qr_matrix("x" * 200, border=0)) > 17 + 4 * FIXED_VERSION
