"""Admin forms (Flask-WTF): every form that changes something carries a CSRF token.

Filter forms are read with GET and change nothing, so they carry no token.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from smsgw.config import LANGUAGES
from smsgw.services.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH
from smsgw.services.passwords import MIN_LENGTH as MIN_PASSWORD_LENGTH
from smsgw.services.passwords import password_problem
from smsgw.web.admin.auth import ROLES
from smsgw.web.admin.i18n import ADMIN_LANGUAGES, tr, tr_l

LANGUAGE_NAMES = [("en", "English"), ("fr", "Français"), ("sw", "Kiswahili"), ("wo", "Wolof")]


def options(pairs: Iterable[tuple[str, object]]) -> list[SelectChoice]:
    """Select-box options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


LANGUAGE_CHOICES = options(LANGUAGE_NAMES)
ADMIN_LANGUAGE_CHOICES = options(pair for pair in LANGUAGE_NAMES if pair[0] in ADMIN_LANGUAGES)
ROLE_CHOICES = options((role, role) for role in ROLES)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class FilterForm(FlaskForm):
    """A GET form of filters: no CSRF token, nothing is changed."""

    class Meta:
        csrf = False


class ActionForm(FlaskForm):
    """A form with only its CSRF token: a button that does one thing."""


class StrongPassword:
    """The password policy (``services.passwords``) as a form validator.

    ``email_field`` names the form's email field; without it the form's ``account_email``
    attribute (set by the view) is the account's email.
    """

    def __init__(self, email_field: str | None = None) -> None:
        self.email_field = email_field

    def __call__(self, form: FlaskForm, field: PasswordField) -> None:
        """Raise ValidationError with the translated reason when the password is refused."""
        if not field.data:
            return
        email = getattr(form, self.email_field).data if self.email_field else getattr(form, "account_email", "")
        problem = password_problem(field.data, email or "")
        if problem == "short":
            raise ValidationError(tr("At least %(count)d characters.", count=MIN_PASSWORD_LENGTH))
        if problem == "long":
            raise ValidationError(tr("At most %(count)d characters.", count=MAX_PASSWORD_LENGTH))
        if problem == "guessable":
            raise ValidationError(
                tr("Too easy to guess (a common password, a pattern or a name). Use three or four unrelated words.")
            )


class SignInForm(FlaskForm):
    """Email and password."""

    email = EmailField(tr_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(tr_l("Password"), validators=[DataRequired(), Length(max=512)])
    submit = SubmitField(tr_l("Sign in"))


class LanguageForm(FlaskForm):
    """The operator's language for the admin."""

    language = SelectField(tr_l("Language"), choices=ADMIN_LANGUAGE_CHOICES)
    submit = SubmitField(tr_l("Change"))


class MarketForm(FlaskForm):
    """A market's names, zone, currency and bulletin hour."""

    name = StringField(tr_l("Name"), validators=[DataRequired(), Length(max=80)])
    short_name = StringField(tr_l("Short name (bulletins)"), validators=[DataRequired(), Length(max=20)])
    timezone = StringField(tr_l("Time zone"), validators=[DataRequired(), Length(max=64)])
    currency = StringField(
        tr_l("Currency"),
        validators=[DataRequired(), Regexp(r"^[A-Z]{3}$", message=tr_l("Three capital letters, e.g. KES."))],
    )
    bulletin_hour = IntegerField(tr_l("Bulletin hour (local)"), validators=[InputRequired(), NumberRange(0, 23)])
    submit = SubmitField(tr_l("Save"))

    def validate_timezone(self, field: StringField) -> None:
        """Only zones the tz database knows (Africa/Nairobi, Africa/Dakar)."""
        try:
            ZoneInfo(field.data)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(tr_l("Unknown time zone.")) from None


class CommodityForm(FlaskForm):
    """A commodity's names, short names and aliases in each language (fields added below)."""

    submit = SubmitField(tr_l("Save"))

    def names(self, prefix: str) -> dict[str, str]:
        """The non-empty ``prefix_<lang>`` fields as {lang: text}."""
        values = {lang: (getattr(self, f"{prefix}_{lang}").data or "").strip() for lang in LANGUAGES}
        return {lang: text for lang, text in values.items() if text}

    def aliases(self) -> dict[str, set[str]]:
        """Aliases per language: comma-separated, lower-cased, blanks dropped."""
        found = {}
        for lang in LANGUAGES:
            raw = getattr(self, f"aliases_{lang}").data or ""
            found[lang] = {word.strip().lower() for word in raw.split(",") if word.strip()}
        return found


for _lang in LANGUAGES:
    _first = [DataRequired()] if _lang == "en" else [Optional()]
    setattr(CommodityForm, f"name_{_lang}", StringField(_lang, validators=[*_first, Length(max=80)]))
    setattr(CommodityForm, f"short_{_lang}", StringField(_lang, validators=[Optional(), Length(max=20)]))
    setattr(CommodityForm, f"aliases_{_lang}", StringField(_lang, validators=[Optional(), Length(max=400)]))


class PriceFilterForm(FilterForm):
    """Filters of the price table."""

    commodity = SelectField(tr_l("Commodity"), choices=[], validators=[Optional()])
    market = SelectField(tr_l("Market"), choices=[], validators=[Optional()])
    status = SelectField(tr_l("Status"), choices=[], validators=[Optional()])
    kind = SelectField(tr_l("Kind"), choices=[], validators=[Optional()])
    since = DateField(tr_l("From"), validators=[Optional()])
    until = DateField(tr_l("To"), validators=[Optional()])
    submit = SubmitField(tr_l("Filter"))


class ReviewForm(FlaskForm):
    """Approve, reject, or correct and approve one held price."""

    amount = DecimalField(tr_l("Corrected price"), places=2, validators=[Optional(), NumberRange(min=0.01)])
    note = StringField(tr_l("Note"), validators=[Optional(), Length(max=200)])
    approve = SubmitField(tr_l("Approve"))
    reject = SubmitField(tr_l("Reject"))
    correct = SubmitField(tr_l("Correct and approve"))

    def validate_amount(self, field: DecimalField) -> None:
        """A correction needs the new price."""
        if self.correct.data and field.data is None:
            raise ValidationError(tr_l("Enter the corrected price."))

    def validate_note(self, field: StringField) -> None:
        """A rejection says why: the reporter is told their price was not published."""
        if self.reject.data and not (field.data or "").strip():
            raise ValidationError(tr_l("Say why the price is rejected."))


class UploadForm(FlaskForm):
    """A CSV file of prices for the importer."""

    file = FileField(
        tr_l("CSV file"), validators=[FileRequired(), FileAllowed(["csv", "txt"], tr_l("A .csv file, please."))]
    )
    submit = SubmitField(tr_l("Import"))


class SearchForm(FilterForm):
    """Search by phone or name."""

    q = StringField(tr_l("Phone or name"), validators=[Optional(), Length(max=80)])
    submit = SubmitField(tr_l("Search"))


class ContactForm(FlaskForm):
    """What an operator may correct on a contact (never their consent: only they give it)."""

    name = StringField(tr_l("Name"), validators=[Optional(), Length(max=80)])
    language = SelectField(tr_l("Language"), choices=LANGUAGE_CHOICES)
    village = StringField(tr_l("Village"), validators=[Optional(), Length(max=80)])
    submit = SubmitField(tr_l("Save"))


class ReporterForm(FlaskForm):
    """A reporter's trust (prices published without review) and whether they may report."""

    trusted = BooleanField(tr_l("Trusted"))
    active = BooleanField(tr_l("Active"))
    submit = SubmitField(tr_l("Save"))


class MessageFilterForm(FilterForm):
    """Filters of the message monitor."""

    direction = SelectField(tr_l("Direction"), choices=[], validators=[Optional()])
    status = SelectField(tr_l("Status"), choices=[], validators=[Optional()])
    purpose = SelectField(tr_l("Purpose"), choices=[], validators=[Optional()])
    phone = StringField(tr_l("Phone"), validators=[Optional(), Length(max=20)])
    reason = StringField(tr_l("Reason contains"), validators=[Optional(), Length(max=80)])
    submit = SubmitField(tr_l("Filter"))


class PreviewForm(FilterForm):
    """Whose bulletin to preview, for which day."""

    phone = StringField(tr_l("Contact phone"), validators=[DataRequired(), Length(max=20)])
    day = DateField(tr_l("Day"), validators=[Optional()])
    submit = SubmitField(tr_l("Preview"))


class SendBulletinForm(FlaskForm):
    """Send one market's bulletin now."""

    market = SelectField(tr_l("Market"), choices=[], validators=[DataRequired()])
    kind = SelectField(
        tr_l("Bulletin"), choices=options([("daily", tr_l("Daily prices")), ("weekly", tr_l("Weekly buyers"))])
    )
    submit = SubmitField(tr_l("Send now"))


class UssdForm(FlaskForm):
    """One USSD hop in the simulator: the session and path so far travel in hidden fields."""

    phone = StringField(tr_l("Phone"), validators=[DataRequired(), Length(max=20)])
    lang = SelectField(
        tr_l("Language"), choices=options([("", tr_l("The contact's")), *LANGUAGE_NAMES]), validators=[Optional()]
    )
    session_id = HiddenField()
    path = HiddenField()
    reply = StringField(tr_l("Answer"), validators=[Optional(), Length(max=40)])
    send = SubmitField(tr_l("Send"))
    dial = SubmitField(tr_l("Dial *384#"))
    hangup = SubmitField(tr_l("Hang up"))
    as_real = BooleanField(tr_l("Play as this real contact"))
    confirm_real = BooleanField(tr_l("I understand: their records change and real SMS go to them"))


class SmsForm(FlaskForm):
    """One SMS from the simulated phone."""

    phone = StringField(tr_l("Phone"), validators=[DataRequired(), Length(max=20)])
    text = StringField(tr_l("Message"), validators=[DataRequired(), Length(max=480)])
    send_sms = SubmitField(tr_l("Send SMS"))
    as_real = BooleanField(tr_l("Play as this real contact"))
    confirm_real = BooleanField(tr_l("I understand: their records change and real SMS go to them"))


class UserForm(FlaskForm):
    """A new operator account."""

    email = EmailField(
        tr_l("Email"),
        validators=[DataRequired(), Length(max=254), Regexp(EMAIL, message=tr_l("Not an email address."))],
    )
    role = SelectField(tr_l("Role"), choices=ROLE_CHOICES, default="viewer")
    language = SelectField(tr_l("Language"), choices=ADMIN_LANGUAGE_CHOICES)
    password = PasswordField(tr_l("Password"), validators=[DataRequired(), StrongPassword("email")])
    submit = SubmitField(tr_l("Create"))


class UserEditForm(FlaskForm):
    """An operator account's role and whether it may sign in."""

    role = SelectField(tr_l("Role"), choices=ROLE_CHOICES)
    active = BooleanField(tr_l("Active"))
    password = PasswordField(tr_l("New password (optional)"), validators=[Optional(), StrongPassword()])
    remove_two_factor = BooleanField(tr_l("Remove the second factor (lost phone)"))
    sign_out_everywhere = BooleanField(tr_l("Sign out everywhere"))
    submit = SubmitField(tr_l("Save"))


class AuditFilterForm(FilterForm):
    """Filters of the audit log."""

    entity = StringField(tr_l("Entity"), validators=[Optional(), Length(max=40)])
    action = StringField(tr_l("Action"), validators=[Optional(), Length(max=40)])
    submit = SubmitField(tr_l("Filter"))


class CodeForm(FlaskForm):
    """The 6-digit code of the authenticator app (second step of sign-in, or turning it on/off)."""

    code = StringField(tr_l("Code from your authenticator app"), validators=[DataRequired(), Length(max=12)])
    submit = SubmitField(tr_l("Continue"))


class OwnPasswordForm(FlaskForm):
    """An operator's new password, with the current one."""

    current = PasswordField(tr_l("Current password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    password = PasswordField(tr_l("New password"), validators=[DataRequired(), StrongPassword()])
    submit = SubmitField(tr_l("Change password"))


class ConfirmForm(FlaskForm):
    """A button that only needs the CSRF token (sign out elsewhere, clear a throttle)."""

    submit = SubmitField(tr_l("Confirm"))
