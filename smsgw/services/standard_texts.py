"""Buyer standards as farmers read them: one composition for the USSD screen, the SMS it
sends and the ``STD`` keyword, so a farmer never gets three different versions of a grade.

Limit values are shown exactly as stored (0.25 %, never rounded to 0.2), written the
locale's way; safety limits (aflatoxin, and any parameter listed as critical in
``content/standards.toml``) come first so that they are never the part left out.
"""

from __future__ import annotations

import decimal
import tomllib
from functools import cache

from smsgw import resources
from smsgw.config import ConfigError
from smsgw.i18n import N_, Text
from smsgw.models import Commodity, Grade, GradeLimit

LIMIT_NAMES = {
    "moisture": N_("moisture"),
    "foreign_matter": N_("foreign matter"),
    "inorganic_matter": N_("inorganic matter"),
    "broken": N_("broken"),
    "pest_damaged": N_("pest damage"),
    "rotten_diseased": N_("rotten"),
    "discoloured": N_("discoloured"),
    "aflatoxin": N_("aflatoxin"),
    "aflatoxin_b1": N_("aflatoxin B1"),
    "damaged": N_("damaged"),
    "filth": N_("filth"),
    "immature_shrivelled": N_("shrivelled"),
    "mouldy_rancid_decayed": N_("mouldy"),
    "other_varieties": N_("other varieties"),
    "out_of_class": N_("out of class"),
}
# Used only when content/standards.toml cannot be read: aflatoxin is the limit that
# decides whether maize and groundnuts may be eaten at all.
FALLBACK_CRITICAL = frozenset({"aflatoxin", "aflatoxin_b1"})


@cache
def critical_parameters() -> frozenset[str]:
    """Parameters never left out of a grade's text (``critical`` in content/standards.toml)."""
    try:
        path = resources.content_dir() / "standards.toml"
        data = tomllib.loads(path.read_text("utf-8"))
    except (ConfigError, OSError, tomllib.TOMLDecodeError):
        return FALLBACK_CRITICAL
    return frozenset(str(item) for item in data.get("critical", [])) or FALLBACK_CRITICAL


def limit_text(t: Text, limit: GradeLimit) -> str:
    """``moisture <=13.5%``, ``aflatoxin <=10 ppb``: the value exactly as stored."""
    name = t(LIMIT_NAMES.get(limit.parameter, limit.parameter.replace("_", " ")))
    unit = limit.unit if limit.unit == "%" else f" {limit.unit}"
    parts = []
    if limit.min_value is not None:
        parts.append(f">={t.decimal(limit.min_value)}{unit}")
    if limit.max_value is not None:
        parts.append(f"<={t.decimal(limit.max_value)}{unit}")
    return f"{name} {' '.join(parts)}"


def ordered_limits(grade: Grade) -> list[GradeLimit]:
    """The grade's limits, safety-critical ones first, the rest in their stored order."""
    critical = critical_parameters()
    return sorted(grade.limits, key=lambda limit: limit.parameter not in critical)


def price_terms(t: Text, grade: Grade, reference: Grade | None) -> str:
    """``pays 6% less than G1``; the reference grade itself is ``the reference price``."""
    diff = decimal.Decimal(grade.price_diff_pct or 0)
    if reference is None or grade.id == reference.id:
        return t("the reference price")
    values = {"pct": t.decimal(abs(diff)), "grade": reference.code}
    if diff < 0:
        return t("pays %(pct)s%% less than %(grade)s", **values)
    if diff > 0:
        return t("pays %(pct)s%% more than %(grade)s", **values)
    return t("pays the same as %(grade)s", grade=reference.code)


def reference_grade(grades: list[Grade]) -> Grade | None:
    """The grade prices are compared with: the one at 0 %, else the best ranked."""
    for grade in grades:
        if not grade.price_diff_pct:
            return grade
    return grades[0] if grades else None


def grade_parts(t: Text, commodity: Commodity, grade: Grade, reference: Grade | None) -> list[str]:
    """The head (crop, grade, standard, price terms) then one part per limit."""
    head = t(
        "%(crop)s %(grade)s (%(standard)s): %(terms)s.",
        crop=commodity.name(t.lang),
        grade=grade.code,
        standard=grade.standard,
        terms=price_terms(t, grade, reference),
    )
    return [head, *(limit_text(t, limit) for limit in ordered_limits(grade))]


def _join(parts: list[str]) -> str:
    """``head limit, limit.``; a continuation page has an empty head."""
    head, limits = parts[0], parts[1:]
    body = f"{', '.join(limits)}." if limits else ""
    return " ".join(piece for piece in (head, body) if piece)


def grade_text(t: Text, commodity: Commodity, grade: Grade, reference: Grade | None) -> str:
    """The whole grade in one text: what the SMS from USSD and the ``STD`` reply send.

    Longer than one segment only when the limits need it (it then goes as a
    concatenated SMS, never with a limit dropped).
    """
    return _join(grade_parts(t, commodity, grade, reference))


def grade_pages(
    t: Text, commodity: Commodity, grade: Grade, reference: Grade | None, budget: int
) -> list[str]:
    """``grade_text`` cut at limit boundaries into pages of at most ``budget`` characters.

    The first page holds the head and the safety limits (they come first); a second
    page exists only when the rest does not fit.
    """
    parts = grade_parts(t, commodity, grade, reference)
    critical = sum(limit.parameter in critical_parameters() for limit in grade.limits)
    pages: list[list[str]] = [[parts[0]]]
    for index, part in enumerate(parts[1:]):
        trial = [*pages[-1], part]
        # Safety limits stay on the first page whatever it costs; a continuation page
        # takes at least one limit; otherwise a limit goes where it fits.
        if len(_join(trial)) <= budget or index < critical or (len(pages) > 1 and len(pages[-1]) == 1):
            pages[-1] = trial
        else:
            pages.append([""])
            pages[-1].append(part)
    texts = [_join(page) for page in pages]
    # A page that continues ends with a comma: the pages read in a row are the SMS text.
    return [text[:-1] + "," if index < len(texts) - 1 else text for index, text in enumerate(texts)]
