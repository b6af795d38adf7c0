"""First screens: language choice, resuming a dropped session, the main menu, registration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smsgw.config import LANGUAGES
from smsgw.conversations.ussd.engine import Ctx, Frame, Go, Move, Restore, Retry, Screen, screen
from smsgw.conversations.ussd.layout import nav
from smsgw.conversations.ussd.widgets import ListScreen, invalid
from smsgw.i18n import N_
from smsgw.services import catalog, contacts

# Each language names itself, so a caller who reads none of the others finds theirs.
LANGUAGE_NAMES = {"en": "English", "fr": "Francais", "sw": "Kiswahili", "wo": "Wolof"}


@dataclass(frozen=True)
class MenuItem:
    """A main-menu entry: its label, first screen, and who may use it."""

    label: str
    screen: str
    registered_only: bool = False
    leader_only: bool = False


# The farmer's menu in the order DESIGN.md gives; leaders see their tools last.
MAIN_MENU = [
    MenuItem(N_("Prices"), "prices"),
    MenuItem(N_("Buyer standards"), "standards"),
    MenuItem(N_("Group orders"), "orders", registered_only=True),
    MenuItem(N_("Report a sale"), "sale", registered_only=True),
    MenuItem(N_("My SMS alerts"), "alerts"),
    MenuItem(N_("Language"), "lang"),
    MenuItem(N_("Leader: my group orders"), "leader", leader_only=True),
]


def root_frame(ctx: Ctx) -> Frame:
    """Where a session starts: language for first-time callers, else the main menu."""
    if ctx.contact is None or not ctx.contact.language_chosen:
        return Frame("lang", {"first": True})
    return Frame("main")


@screen("lang")
class LanguageScreen(Screen):
    """Choose a language; remembered on the contact."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        lines = [ctx.t("Choose language:")]
        lines += [f"{i} {LANGUAGE_NAMES[code]}" for i, code in enumerate(LANGUAGES, start=1)]
        if not params.get("first"):
            lines += nav(ctx)
        return "\n".join(lines)

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if not (value.isdigit() and 1 <= int(value) <= len(LANGUAGES)):
            return invalid(ctx)
        lang = LANGUAGES[int(value) - 1]

        def apply() -> str:
            contact = contacts.get_or_create_contact(ctx.db, ctx.phone, lang)
            contacts.set_language(ctx.db, contact, lang)
            ctx.contact = contact
            return lang

        ctx.set_language(ctx.effect("language", apply))
        return Restore([Frame("main")])


@screen("resume")
class ResumeScreen(Screen):
    """Offer to continue a flow a dropped session left half done."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return "\n".join(
            [
                ctx.t("Welcome back."),
                "1 " + ctx.t("Continue where you stopped"),
                "2 " + ctx.t("Start again"),
            ]
        )

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value == "1":
            return Restore([Frame.from_json(frame) for frame in params["frames"]])
        if value == "2":
            return Restore([Frame("main")])
        return invalid(ctx)


def visible_items(ctx: Ctx) -> list[MenuItem]:
    """The main-menu entries this caller may use."""
    is_leader = bool(ctx.contact and ctx.reads.is_leader(ctx.contact.id))
    return [item for item in MAIN_MENU if is_leader or not item.leader_only]


@screen("main")
class MainMenu(Screen):
    """The main menu."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        items = visible_items(ctx)
        lines = [f"{i} {ctx.t(item.label)}" for i, item in enumerate(items, start=1)]
        return "\n".join(lines)

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        items = visible_items(ctx)
        if not (value.isdigit() and 1 <= int(value) <= len(items)):
            return invalid(ctx)
        item = items[int(value) - 1]
        # Remembered per input position: the next hops replay this path after the caller
        # has registered, and must still take the registration screens, or every later
        # input would land on the wrong screen (a name typed as a crop choice).
        if item.registered_only and ctx.effect(
            f"unregistered:{item.screen}", lambda: not contacts.is_registered(ctx.contact)
        ):
            return Go("register_name", {"then": item.screen})
        return Go(item.screen)


@screen("register_name")
class RegisterName(Screen):
    """Registration, step 1: the caller's name."""

    resumable = True

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("To continue, please register.\nEnter your name:")

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        name = " ".join(value.split())
        if len(name) < 2 or len(name) > 40 or not any(c.isalpha() for c in name):
            return Retry(ctx.t("Please enter your name (2 to 40 letters)."))
        return Go("register_market", {**params, "name": name, "page": 0})


@screen("register_market")
class RegisterMarket(ListScreen):
    """Registration, step 2: the caller's home market."""

    name = "register_market"
    resumable = True

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Your home market:")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list:
        return ctx.reads.markets_for_country(catalog.country_for_phone(ctx.phone))

    def label(self, ctx: Ctx, item) -> str:
        return item.name

    def chosen(self, ctx: Ctx, params: dict[str, Any], item) -> Move:
        def apply() -> int:
            contact = contacts.get_or_create_contact(ctx.db, ctx.phone, ctx.lang)
            contacts.register(ctx.db, contact, params["name"], item.id)
            ctx.contact = contact
            return contact.id

        ctx.effect("register", apply)
        return Restore([Frame("main"), Frame(params["then"])])
