"""QR codes for tickets, as PNG bytes.

A ticket code (43 bytes) always fits a version 4 symbol at error correction level M, so the ``qrcode``
package is told that version and one mask instead of trying every version and scoring all eight masks;
longer texts (a certificate's verification link) let it fit the version and choose the mask. The PNG
(one bit per pixel) is written with zlib directly rather than through Pillow. Ticket emails make one of
each, so this is on the mail worker's hot path.
"""

from __future__ import annotations

import struct
import zlib

#: Version 4 at level M holds 62 bytes in byte mode; a ticket code is 43.
FIXED_VERSION = 4
#: A fixed mask skips scoring all eight; this one decodes reliably (see tests/test_tickets.py).
FIXED_MASK = 2
_CAPACITY = 62  # bytes, in byte mode
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def qr_matrix(code: str, *, border: int = 4) -> list[list[bool]]:
    """The modules (True = dark), border included: version 4-M with mask 2, or fitted when too long."""
    # Imported here: qrcode brings Pillow, ~4 MB a web process would hold from its start for the few
    # requests (and the mail worker) that draw a code.
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M
    from qrcode.util import MODE_8BIT_BYTE, QRData

    data = code.encode("utf-8")
    if len(data) > _CAPACITY:
        qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=border)
        qr.add_data(data, optimize=0)
        qr.make(fit=True)
    else:
        qr = qrcode.QRCode(
            version=FIXED_VERSION, error_correction=ERROR_CORRECT_M, border=border, mask_pattern=FIXED_MASK
        )
        qr.add_data(QRData(data, mode=MODE_8BIT_BYTE))
        qr.make(fit=False)
    matrix: list[list[bool]] = qr.get_matrix()
    return matrix


# --- PNG ---------------------------------------------------------------------------------------------


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(matrix: list[list[bool]], box_size: int) -> bytes:
    """A 1-bit greyscale PNG, `box_size` pixels a module (bit 0 black, 1 white)."""
    side = len(matrix) * box_size
    rows = []
    if box_size % 8 == 0:  # whole bytes a module (the tickets' 8): no bit packing
        dark, light = b"\x00" * (box_size // 8), b"\xff" * (box_size // 8)
        for row in matrix:
            rows.append(b"\x00" + b"".join([dark if module else light for module in row]))
    else:
        dark_bits, light_bits = "0" * box_size, "1" * box_size
        pad = "0" * (-side % 8)
        for row in matrix:
            pixels = int("".join(dark_bits if module else light_bits for module in row) + pad, 2)
            rows.append(b"\x00" + pixels.to_bytes((side + 7) // 8, "big"))  # filter type 0 (none)
    raw = b"".join(line for line in rows for _ in range(box_size))
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale, no interlace
    # zlib level 4: on these runs of identical rows it compresses as well as 6 (within a few bytes of
    # ~360), in half the time; levels 1-3 give files almost twice as large.
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 4))
        + _chunk(b"IEND", b"")
    )


def ticket_qr_png(code: str, *, box_size: int = 8, border: int = 4) -> bytes:
    """A PNG of a QR code (error correction M) that holds exactly `code`."""
    if box_size < 1 or border < 0:
        raise ValueError("box_size must be >= 1 and border >= 0")
    return _png(qr_matrix(code, border=border), box_size)
