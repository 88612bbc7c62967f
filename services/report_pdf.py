"""A one-page PDF of one result, for a patient to take to a doctor: fpdf2, pure Python, no browser or service.

The content is worked out by managers.reports; this module only lays it out. The standard PDF fonts cover
Latin-1, so text is folded to it (typographic dashes and quotes to their plain forms) before it is drawn.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from fpdf import FPDF
from PIL import Image

PAGE_MARGIN_MM = 14
IMAGE_BOX_MM = (86, 56)  # each of the two images fits in this box, side by side
_FOLDS = str.maketrans({"\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def latin1(text: str) -> str:
    return text.translate(_FOLDS).replace("\u2026", "...").encode("latin-1", "replace").decode("latin-1")


@dataclass(frozen=True)
class ReportContent:
    """Everything the report says, as display text, in reading order."""

    title: str
    made_at: str  # when the image was classified, in the reader's zone, the zone named
    printed_at: str
    image: bytes
    heatmap: bytes | None
    finding: str
    finding_description: str
    prediction_set: str | None
    flag: str
    advice: str
    probabilities: list[tuple[str, str]]  # (class display name, percent)
    model: str
    held_out: str | None
    intended_use: str
    limitation: str | None
    review: str | None
    note: str | None
    disclaimer: str
    facts: list[tuple[str, str]] = field(default_factory=list)


def _picture(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


class _Report(FPDF):
    def heading(self, text: str) -> None:
        self.set_font("Helvetica", "B", 10)
        self.cell(0, 6, latin1(text), new_x="LMARGIN", new_y="NEXT")

    def paragraph(self, text: str, *, size: float = 9, style: str = "") -> None:
        self.set_font("Helvetica", style, size)
        self.multi_cell(0, 4.2, latin1(text), new_x="LMARGIN", new_y="NEXT")
        self.ln(1)


def _place_image(pdf: _Report, data: bytes, x: float, y: float, caption: str) -> float:
    picture = _picture(data)
    box_w, box_h = IMAGE_BOX_MM
    scale = min(box_w / picture.width, box_h / picture.height)
    width, height = picture.width * scale, picture.height * scale
    pdf.image(picture, x=x, y=y, w=width, h=height)
    pdf.set_xy(x, y + height + 1)
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(box_w, 4, latin1(caption))
    return height + 5


def render_report(content: ReportContent) -> bytes:
    """The report as PDF bytes: one A4 page."""
    pdf = _Report(format="A4")
    pdf.set_margins(PAGE_MARGIN_MM, PAGE_MARGIN_MM, PAGE_MARGIN_MM)
    pdf.set_auto_page_break(False)
    pdf.set_title(latin1(content.title))
    pdf.set_creator("MedSight")
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 8, latin1(content.title), new_x="LMARGIN", new_y="NEXT")
    pdf.paragraph(f"Image classified {content.made_at}. Report made {content.printed_at}.", size=8)

    top = pdf.get_y()
    used = _place_image(pdf, content.image, PAGE_MARGIN_MM, top, "The uploaded image")
    if content.heatmap is not None:
        used = max(used, _place_image(pdf, content.heatmap, PAGE_MARGIN_MM + 96, top, "Where the model looked"))
    pdf.set_xy(PAGE_MARGIN_MM, top + used + 2)

    pdf.heading(f"Finding: {content.finding}")
    pdf.paragraph(content.finding_description)
    if content.prediction_set:
        pdf.paragraph(content.prediction_set)
    pdf.paragraph(content.flag, style="B")
    pdf.paragraph(content.advice)

    pdf.heading("Every possibility")
    pdf.set_font("Helvetica", "", 9)
    for name, percent in content.probabilities:
        pdf.cell(120, 4.5, latin1(name))
        pdf.cell(0, 4.5, percent, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)

    pdf.heading("The model")
    pdf.paragraph(content.model)
    if content.held_out:
        pdf.paragraph(content.held_out)
    pdf.paragraph(f"Intended use: {content.intended_use}", size=8)
    if content.limitation:
        pdf.paragraph(f"Main limitation: {content.limitation}", size=8)

    if content.review:
        pdf.heading("Clinician's review")
        pdf.paragraph(content.review)
    if content.note:
        pdf.heading("Patient's note")
        pdf.paragraph(content.note)

    pdf.ln(1)
    pdf.paragraph(f"Not a diagnosis. {content.disclaimer}", size=9, style="B")
    return bytes(pdf.output())
