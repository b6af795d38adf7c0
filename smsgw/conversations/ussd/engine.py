"""The USSD state machine: walk AT's ``text`` path with a stack of screens.

AT sends every input of the session so far (``1*2*450``). Each hop replays that path
from the first screen: a screen is a pure function of (path, stored state, data), and
anything with an effect runs through ``Ctx.effect``, which records its result under
the input's position so a repeated request never applies it twice. Where an input led
to another screen, the session remembers that move too, so the replay does not ask
each earlier screen again (a list screen would read its list to map "2" to an item):
the caller goes where the screen they saw took them, even if its data changed since.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy.orm as so

from smsgw.i18n import Text
from smsgw.models import Contact, UssdSession
from smsgw.services.read_cache import Reads

MAX_SCREEN = 160
BACK, HOME = "0", "00"


@dataclass
class Frame:
    """One screen on the stack with the answers it carries."""

    screen: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> list[Any]:
        """A JSON-able form, stored on the session for resuming."""
        return [self.screen, self.params]

    @classmethod
    def from_json(cls, data: list[Any]) -> Frame:
        """The frame stored by ``to_json``."""
        return cls(screen=data[0], params=dict(data[1]))


@dataclass
class Go:
    """Push a new screen."""

    screen: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Retry:
    """Stay on this screen and show a one-line hint above it."""

    hint: str


@dataclass
class End:
    """Close the session with this text."""

    text: str


@dataclass
class Restore:
    """Replace the stack with frames saved from a dropped session."""

    frames: list[Frame]


@dataclass
class HomeMove:
    """Go back to the first screen (used by flows that finish with a menu)."""


Move = Go | Retry | End | Restore | HomeMove


@dataclass
class Ctx:
    """What a screen may use: the database, the caller, their language, settings."""

    db: so.Session
    ussd: UssdSession
    # The session's state being built by this hop (saved by the caller).
    state: dict[str, Any]
    phone: str
    contact: Contact | None
    settings: Mapping[str, Any]
    today: dt.date
    # Catalog and price answers from the per-process cache (services.read_cache).
    reads: Reads
    step: int = 0
    t: Text = field(init=False)

    def __post_init__(self) -> None:
        self.set_language(
            self.contact.language if self.contact else self.settings["SMSGW_DEFAULT_LANG"]
        )

    def set_language(self, lang: str) -> None:
        """Switch the language of the screens that follow."""
        self.t = Text(lang)

    @property
    def lang(self) -> str:
        """The caller's language code."""
        return self.t.lang

    @property
    def member(self) -> Contact:
        """The registered caller, for the screens that only a registered caller reaches."""
        if self.contact is None:
            raise LookupError(f"USSD screen needs a registered caller ({self.phone})")
        return self.contact

    def effect(self, name: str, apply: Callable[[], Any]) -> Any:
        """Run ``apply`` once per session and input position; repeats get the first result."""
        effects = self.state.setdefault("effects", {})
        key = f"{self.step}:{name}"
        if key not in effects:
            effects[key] = apply()
        return effects[key]


class Screen:
    """A USSD screen: shows a prompt and handles one input."""

    # A screen that asks for a number takes 0 and 00 as values, not back and home.
    numeric = False
    # A flow's half-entered answers on this screen are worth offering to resume.
    resumable = False

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str | End:
        """The prompt (without ``CON ``), or End to close at once."""
        raise NotImplementedError

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        """What the input ``value`` does."""
        raise NotImplementedError


SCREENS: dict[str, Screen] = {}


def screen(name: str) -> Callable[[type[Screen]], type[Screen]]:
    """Register a Screen class under ``name``."""

    def register(cls: type[Screen]) -> type[Screen]:
        SCREENS[name] = cls()
        return cls

    return register


def check_links(links: Iterable[tuple[str, str]]) -> None:
    """Raise ``LookupError`` naming every (from screen, to screen) whose target is not registered.

    Screens name each other by strings; this turns a typo into an import error instead of
    a caller's dead end.
    """
    broken = sorted({f"{source} -> {target!r}" for source, target in links if target not in SCREENS})
    if broken:
        raise LookupError(f"USSD screens link to unknown screens: {', '.join(broken)}")


def split_path(text: str) -> list[str]:
    """AT's ``text`` as a list of inputs (empty first hop: no inputs)."""
    text = (text or "").strip()
    return [part.strip() for part in text.split("*")] if text else []


# Session state key: input position -> [the screen it was typed on, the input, where it went].
MOVES = "moves"


def walk(ctx: Ctx, root: Frame, inputs: list[str]) -> tuple[list[Frame], str | None, End | None]:
    """Replay ``inputs`` from ``root``; return the stack, a hint for the top, or an End."""
    stack = [root]
    hint: str | None = None
    moves = ctx.state.setdefault(MOVES, {})
    for index, value in enumerate(inputs):
        ctx.step = index
        top = stack[-1]
        current = SCREENS[top.screen]
        hint = None
        if not current.numeric and value == HOME:
            del stack[1:]
            continue
        if not current.numeric and value == BACK and len(stack) > 1:
            stack.pop()
            continue
        # Only a move made from this very screen with this very input is reused; anything
        # else (an effect's End, a hint, a changed stack) is worked out again.
        here = top.to_json()
        known = moves.get(str(index))
        if known and known[0] == here and known[1] == value:
            stack.append(Frame.from_json(known[2]))
            continue
        move = current.handle(ctx, top.params, value)
        if isinstance(move, Go):
            moves[str(index)] = [here, value, [move.screen, move.params]]
            stack.append(Frame(move.screen, move.params))
        elif isinstance(move, Retry):
            hint = move.hint
        elif isinstance(move, Restore):
            stack = [root, *move.frames]
        elif isinstance(move, HomeMove):
            del stack[1:]
        else:
            return stack, None, move
    return stack, hint, None


def render_top(ctx: Ctx, stack: list[Frame], hint: str | None) -> str:
    """The response body for the screen on top of the stack."""
    top = stack[-1]
    shown = SCREENS[top.screen].render(ctx, top.params)
    if isinstance(shown, End):
        return "END " + shown.text
    # The hint is a courtesy: when it would push the screen past the limit, drop it.
    if hint and len(hint) + 1 + len(shown) <= MAX_SCREEN:
        shown = f"{hint}\n{shown}"
    return "CON " + shown
