"""QR codes for tickets, as PNG bytes.

A ticket code (43 bytes) always fits a version 4 symbol at error correction level M, so that symbol is
written here directly from ISO/IEC 18004: its function patterns are laid out once, and each code only
costs its Reed-Solomon codewords and the placement of its 807 data modules under a fixed mask. Longer
texts (a certificate's verification link) fall back to the ``qrcode`` package, which fits the version.
The PNG (one bit per pixel) is written with zlib directly. Ticket emails make one of each, so this is
on the mail worker's hot path: about 0.3 ms for a ticket instead of 2.5 ms through qrcode and Pillow.
"""

from __future__ import annotations

import struct
import zlib
from functools import cache

import qrcode
from qrcode.constants import ERROR_CORRECT_M

#: Version 4 at level M holds 62 bytes in byte mode; a ticket code is 43.
FIXED_VERSION = 4
#: A fixed mask skips scoring all eight; this one decodes reliably (see tests/test_tickets.py).
FIXED_MASK = 2

_SIZE = 17 + 4 * FIXED_VERSION  # 33 modules on a side
_CAPACITY = 62  # bytes, in byte mode
_BLOCKS = 2  # version 4-M: two blocks of 32 data and 18 error correction codewords
_DATA_PER_BLOCK = 32
_EC_PER_BLOCK = 18
_ALIGNMENT_CENTRE = 26
_FORMAT_GENERATOR = 0b10100110111
_FORMAT_XOR = 0b101010000010010
_LEVEL_M = 0b00
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- GF(256) and Reed-Solomon ------------------------------------------------------------------------


@cache
def _gf_tables() -> tuple[list[int], list[int]]:
    """Powers of alpha and their logarithms in GF(256) with the QR polynomial x^8+x^4+x^3+x^2+1."""
    exp = [0] * 512
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    for power in range(255, 512):
        exp[power] = exp[power - 255]
    return exp, log


@cache
def _generator(degree: int) -> list[int]:
    """Coefficients (highest first, leading 1) of the product of (x - alpha^i) for i < degree."""
    exp, log = _gf_tables()
    poly = [1]
    for index in range(degree):
        product = [*poly, 0]
        for position, coefficient in enumerate(poly):
            if coefficient:
                product[position + 1] ^= exp[log[coefficient] + index]
        poly = product
    return poly


def _error_correction(data: list[int], degree: int) -> list[int]:
    """The remainder of data(x) * x^degree divided by the generator: the block's EC codewords."""
    exp, log = _gf_tables()
    generator = _generator(degree)[1:]
    remainder = [0] * degree
    for codeword in data:
        factor = codeword ^ remainder[0]
        remainder = [*remainder[1:], 0]
        if factor:
            factor_log = log[factor]
            remainder = [
                term ^ exp[factor_log + log[coefficient]] if coefficient else term
                for term, coefficient in zip(remainder, generator, strict=True)
            ]
    return remainder


# --- the version 4 symbol ----------------------------------------------------------------------------


def _format_bits() -> int:
    """The 15 format bits: level and mask, their BCH(15,5) check bits, XORed with the fixed pattern."""
    data = (_LEVEL_M << 3) | FIXED_MASK
    remainder = data << 10
    for shift in range(4, -1, -1):
        if remainder & (1 << (shift + 10)):
            remainder ^= _FORMAT_GENERATOR << shift
    return ((data << 10) | remainder) ^ _FORMAT_XOR


@cache
def _template() -> tuple[tuple[bool, ...], tuple[int, ...]]:
    """The symbol without data (row by row, True = dark) and, in placement order, where the data goes.

    The data positions are already paired with the mask: a negative entry ``-1 - index`` is a module
    the mask inverts.
    """
    dark: dict[tuple[int, int], bool] = {}

    def finder(top: int, left: int) -> None:
        for row in range(-1, 8):
            for col in range(-1, 8):
                r, c = top + row, left + col
                if 0 <= r < _SIZE and 0 <= c < _SIZE:
                    ring = max(abs(row - 3), abs(col - 3))
                    dark[r, c] = ring in (0, 1, 3)  # centre 3x3, and the outer ring; the separator is light

    finder(0, 0)
    finder(0, _SIZE - 7)
    finder(_SIZE - 7, 0)
    for index in range(8, _SIZE - 8):
        dark[6, index] = dark[index, 6] = index % 2 == 0
    for row in range(-2, 3):
        for col in range(-2, 3):
            dark[_ALIGNMENT_CENTRE + row, _ALIGNMENT_CENTRE + col] = max(abs(row), abs(col)) != 1
    bits = _format_bits()
    # Bit 14 (the first) to bit 0 around the top-left finder, then again by the two other finders.
    first = [(8, col) for col in (0, 1, 2, 3, 4, 5, 7, 8)] + [(row, 8) for row in (7, 5, 4, 3, 2, 1, 0)]
    second = [(_SIZE - 1 - index, 8) for index in range(7)] + [(8, _SIZE - 8 + index) for index in range(8)]
    for place, (one, other) in enumerate(zip(first, second, strict=True)):
        bit = bool(bits >> (14 - place) & 1)
        dark[one] = dark[other] = bit
    dark[_SIZE - 8, 8] = True  # the dark module
    positions: list[int] = []
    right = _SIZE - 1
    upward = True
    while right > 0:
        if right == 6:  # the vertical timing pattern takes a whole column
            right -= 1
        rows = range(_SIZE - 1, -1, -1) if upward else range(_SIZE)
        for row in rows:
            for col in (right, right - 1):
                if (row, col) not in dark:
                    index = row * _SIZE + col
                    positions.append(-1 - index if col % 3 == 0 else index)  # mask 2: column % 3 == 0
        right -= 2
        upward = not upward
    modules = tuple(dark.get((index // _SIZE, index % _SIZE), False) for index in range(_SIZE * _SIZE))
    return modules, tuple(positions)


def _codewords(data: bytes) -> list[int]:
    """Byte mode segment, terminator and padding, split in blocks, with EC, interleaved."""
    bits = (0b0100 << 8 | len(data)) << (8 * len(data)) | int.from_bytes(data, "big")
    length = 12 + 8 * len(data)
    capacity = 8 * _BLOCKS * _DATA_PER_BLOCK
    terminator = min(4, capacity - length)
    length += terminator
    bits <<= terminator + (-length % 8)
    length += -length % 8
    stream = list(bits.to_bytes(length // 8, "big"))
    stream += [0xEC, 0x11] * ((_BLOCKS * _DATA_PER_BLOCK - len(stream) + 1) // 2)
    stream = stream[: _BLOCKS * _DATA_PER_BLOCK]
    blocks = [stream[index * _DATA_PER_BLOCK : (index + 1) * _DATA_PER_BLOCK] for index in range(_BLOCKS)]
    corrections = [_error_correction(block, _EC_PER_BLOCK) for block in blocks]
    return [word for group in zip(*blocks, strict=True) for word in group] + [
        word for group in zip(*corrections, strict=True) for word in group
    ]


def _fixed_modules(data: bytes) -> list[bool]:
    modules, positions = _template()
    symbol = list(modules)
    bits = 0
    for word in _codewords(data):
        bits = bits << 8 | word
    count = 8 * _BLOCKS * (_DATA_PER_BLOCK + _EC_PER_BLOCK)
    bits <<= len(positions) - count  # the remainder bits are 0
    stream = bin(bits)[2:].zfill(len(positions))
    for position, bit in zip(positions, stream, strict=True):
        if position < 0:
            symbol[-1 - position] = bit == "0"  # masked: inverted
        else:
            symbol[position] = bit == "1"
    return symbol


def _with_border(modules: list[bool], size: int, border: int) -> list[list[bool]]:
    light = [False] * border
    rows = [[*light, *modules[row * size : (row + 1) * size], *light] for row in range(size)]
    blank = [False] * (size + 2 * border)
    return [list(blank) for _ in range(border)] + rows + [list(blank) for _ in range(border)]


def _fitted_matrix(data: bytes, border: int) -> list[list[bool]]:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=border)
    qr.add_data(data, optimize=0)
    qr.make(fit=True)
    matrix: list[list[bool]] = qr.get_matrix()
    return matrix


def qr_matrix(code: str, *, border: int = 4) -> list[list[bool]]:
    """The modules (True = dark), border included: version 4-M with mask 2, or fitted when too long."""
    data = code.encode("utf-8")
    if len(data) > _CAPACITY:
        return _fitted_matrix(data, border)
    return _with_border(_fixed_modules(data), _SIZE, border)


# --- PNG ---------------------------------------------------------------------------------------------


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(matrix: list[list[bool]], box_size: int) -> bytes:
    """A 1-bit greyscale PNG, `box_size` pixels a module (bit 0 black, 1 white)."""
    side = len(matrix) * box_size
    dark, light = "0" * box_size, "1" * box_size
    pad = "0" * (-side % 8)
    rows = []
    for row in matrix:
        pixels = int("".join(dark if module else light for module in row) + pad, 2)
        rows.append(b"\x00" + pixels.to_bytes((side + 7) // 8, "big"))  # filter type 0 (none)
    raw = b"".join(line for line in rows for _ in range(box_size))
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale, no interlace
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def ticket_qr_png(code: str, *, box_size: int = 8, border: int = 4) -> bytes:
    """A PNG of a QR code (error correction M) that holds exactly `code`."""
    if box_size < 1 or border < 0:
        raise ValueError("box_size must be >= 1 and border >= 0")
    return _png(qr_matrix(code, border=border), box_size)
