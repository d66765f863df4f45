"""The certificate of attendance as a PDF (fpdf2), with a QR code of its verification link.

Every text arrives already translated (see ``services.certificate_texts``); this module only lays it
out. Names and titles may use any script Latin America and Europe write in, so the font is DejaVu Sans
(Debian's ``fonts-dejavu-core``), embedded as a subset; a missing font fails loudly, never silently
with a core font that would drop the accents.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from events_app.lib.tickets import ticket_qr_png

if TYPE_CHECKING:
    from fpdf import FPDF

# fpdf2 (with fontTools and Pillow) is imported by the functions that draw: about 17 MB a web process
# would otherwise hold from its start for a page few requests ask for.

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_REGULAR = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"
FONT_FAMILY = "DejaVuSans"
#: A4 landscape, in millimetres.
PAGE_WIDTH = 297.0
MARGIN = 20.0
QR_SIZE = 32.0


class CertificateFontMissing(RuntimeError):
    """The TTF font the certificates need is not installed (``apt-get install fonts-dejavu-core``)."""


@dataclass(frozen=True, slots=True)
class CertificateTexts:
    """What one certificate says, in the registrant's language."""

    language: str
    programme: str
    heading: str
    intro: str
    name: str
    attended: str
    title: str
    date_line: str
    duration_line: str
    basis_line: str
    verify_line: str
    verify_url: str


def check_fonts() -> None:
    missing = [str(path) for path in (FONT_REGULAR, FONT_BOLD) if not path.is_file()]
    if missing:
        raise CertificateFontMissing(
            "certificate font not found: " + ", ".join(missing) + " (install Debian's fonts-dejavu-core)"
        )


def _document(texts: CertificateTexts) -> FPDF:
    from fpdf import FPDF

    check_fonts()
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.add_font(FONT_FAMILY, "", FONT_REGULAR)
    pdf.add_font(FONT_FAMILY, "B", FONT_BOLD)
    pdf.set_title(f"{texts.heading}: {texts.name}")
    pdf.set_author(texts.programme)
    pdf.set_lang(texts.language.replace("_", "-"))
    pdf.add_page()
    return pdf


def _line(pdf: FPDF, text: str, size: float, *, bold: bool = False, gap: float = 4.0) -> None:
    from fpdf.enums import Align, XPos, YPos

    pdf.set_font(FONT_FAMILY, "B" if bold else "", size)
    pdf.multi_cell(0, size * 0.5, text=text, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(gap)


def _frame(pdf: FPDF) -> None:
    pdf.set_draw_color(40, 70, 120)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, PAGE_WIDTH - 20, 210 - 20)


def _verification(pdf: FPDF, texts: CertificateTexts) -> None:
    from fpdf.enums import Align, XPos, YPos

    top = 210 - MARGIN - QR_SIZE - 4
    png = ticket_qr_png(texts.verify_url, box_size=4, border=2)
    pdf.image(io.BytesIO(png), x=MARGIN + 4, y=top, w=QR_SIZE, h=QR_SIZE, alt_text=texts.verify_line)
    pdf.set_xy(MARGIN + QR_SIZE + 10, top + 8)
    pdf.set_font(FONT_FAMILY, "", 9)
    width = PAGE_WIDTH - 2 * MARGIN - QR_SIZE - 14
    pdf.multi_cell(width, 5, text=texts.verify_line, align=Align.L, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.multi_cell(width, 5, text=texts.verify_url, align=Align.L, link=texts.verify_url)


def render_certificate(texts: CertificateTexts) -> bytes:
    """The certificate as PDF bytes (CPU work: call it in a thread from async code)."""
    pdf = _document(texts)
    _frame(pdf)
    pdf.set_y(24)
    _line(pdf, texts.programme, 12, gap=8)
    _line(pdf, texts.heading, 28, bold=True, gap=8)
    _line(pdf, texts.intro, 13)
    _line(pdf, texts.name, 24, bold=True, gap=6)
    _line(pdf, texts.attended, 13)
    _line(pdf, texts.title, 18, bold=True, gap=6)
    for detail in (texts.date_line, texts.duration_line, texts.basis_line):
        _line(pdf, detail, 12, gap=1)
    _verification(pdf, texts)
    return bytes(pdf.output())
