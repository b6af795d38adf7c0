"""SMS command keywords per language, the word lists the parser leans on, and word matching.

Every word is stored the way ``normalize_text`` leaves it: lowercase ASCII, accents stripped
(NJËG is "njeg"). A word belongs to exactly one command; the languages it is listed under
tell the router which language the sender probably reads. Typos are forgiven by edit
distance over short words, never into STOP.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

# Language-neutral words: used by everyone, so they say nothing about the sender.
ANY = "*"
LANGUAGES = ("en", "fr", "sw", "wo")

COMMANDS = (
    "help", "price", "std", "sub", "unsub", "stop", "start", "lang", "sold", "report",
    "open", "total", "close", "cancel", "join", "withdraw", "tell", "store",
    "delivered", "settle", "payref", "paid", "dispute",
    "offer", "unoffer", "confirm", "unknown", "empty",
)

COMMAND_WORDS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "help": {
        "en": ("help", "info", "menu"),
        "fr": ("aide", "info", "menu"),
        "sw": ("msaada", "saidia"),
        "wo": ("ndimbal",),
    },
    "price": {
        "en": ("price", "prices", "cost"),
        "fr": ("prix", "tarif"),
        "sw": ("bei",),
        "wo": ("njeg",),
    },
    "std": {
        "en": ("std", "grade", "grades", "standard", "standards", "quality"),
        "fr": ("norme", "normes", "qualite"),
        "sw": ("kiwango", "viwango", "daraja", "ubora"),
        "wo": ("xeet",),
    },
    "sub": {
        "en": ("sub", "subscribe"),
        "fr": ("abo", "abonner", "abonnement"),
        "sw": ("jiunge", "sajili"),
        "wo": ("bindu",),
    },
    "unsub": {
        "en": ("unsub",),
        "fr": ("desabo", "desabonner"),
        "sw": ("ondoa",),
        "wo": ("dindi",),
    },
    # Misspellings people really send are listed as words of their own; a first word one
    # typo away from a long stop word counts too (see stop_keyword). CANCEL and END are
    # not here: CANCEL is a leader's order command, END a USSD habit, neither an opt-out.
    "stop": {
        ANY: ("stop", "stopall"),
        "en": ("unsubscribe", "unsubcribe", "unsuscribe", "quit", "optout", "revoke"),
        "fr": ("arret", "arreter", "arrete", "stoppe", "stopper", "desinscrire",
               "desinscription"),
        "sw": ("simama", "acha", "basi", "sitisha", "komesha"),
        "wo": ("taxawal", "taxaw", "bayi", "bayyi", "noppi"),
    },
    "start": {
        "en": ("start", "yes", "unstop", "resume"),
        "fr": ("oui", "reprendre"),
        "sw": ("ndio", "ndiyo", "anza"),
        "wo": ("waaw",),
    },
    "lang": {
        ANY: ("lang",),
        "en": ("language",),
        "fr": ("langue",),
        "sw": ("lugha",),
        "wo": ("lakk",),
    },
    "sold": {
        "en": ("sold", "sale"),
        "fr": ("vendu", "vente"),
        "sw": ("nimeuza", "uza", "mauzo"),
        "wo": ("jaay",),
    },
    "report": {
        ANY: ("p", "pr"),
        "en": ("report",),
    },
    "open": {"en": ("open",), "fr": ("ouvrir",), "sw": ("fungua",), "wo": ("ubbi",)},
    "total": {"en": ("total",), "fr": ("total",), "sw": ("jumla",), "wo": ("mboolem",)},
    "close": {"en": ("close",), "fr": ("fermer",), "sw": ("funga",), "wo": ("tej",)},
    # A leader cancels an order ("CANCEL 9"): never an opt-out.
    "cancel": {"en": ("cancel",), "fr": ("annuler",), "sw": ("ghairi",), "wo": ("neenal", "folli")},
    "join": {
        "en": ("join",), "fr": ("rejoindre", "participer"), "sw": ("shiriki",), "wo": ("bokk",),
    },
    "withdraw": {
        "en": ("withdraw",), "fr": ("retirer", "retrait"), "sw": ("jitoa",), "wo": ("genn",),
    },
    # Store or sell: has storing the harvest paid in this market's past years?
    "store": {
        "en": ("store", "storage"),
        "fr": ("stock", "stockage", "garder"),
        "sw": ("hifadhi", "ghala"),
        "wo": ("denc", "dencal"),
    },
    # Buyers post offers and suppliers quotes (OFFER MAIZE G1 4400 500 BAG90 NAKURU 14);
    # without numbers (OFFERS, MYOFFERS, a bare OFA) it lists a buyer's own offers, or the
    # ones a leader's group may take.
    "offer": {
        "en": ("offer", "quote", "offers", "myoffers"), "fr": ("offre", "devis", "offres", "mesoffres"),
        "sw": ("ofa", "nukuu"), "wo": ("ofar",),
    },
    # WITHDRAW OFFER 12 (JITOA OFA 12) is read as this; WITHDRAW 12 stays a member's.
    "unoffer": {ANY: ("unoffer",)},
    # CONFIRM 12, or YES 12 / OUI 12 / NDIO 12 / WAAW 12 (a number after a START word):
    # a buyer's pending offer or a leader's draft order goes ahead.
    "confirm": {"en": ("confirm",), "fr": ("confirmer",), "sw": ("thibitisha",), "wo": ("deggal",)},
    # A leader's message to the group's members: the rest of the SMS is theirs, as typed.
    "tell": {
        ANY: ("msg", "message"), "fr": ("annonce",), "sw": ("ujumbe",), "wo": ("bataaxal",),
    },
    # After close: the leader records deliveries, settles (final price, date paid) and gives
    # each member's payment reference; members confirm or dispute (services.settlement).
    "delivered": {
        "en": ("delivered", "delivery", "deliver"), "fr": ("livre", "livraison", "livrer"),
        "sw": ("kabidhi", "imekabidhiwa"), "wo": ("jebbal",),
    },
    "settle": {"en": ("settle", "payout"), "fr": ("regler", "reglement"), "sw": ("malipo",), "wo": ("fey",)},
    "payref": {ANY: ("ref",), "en": ("reference",), "fr": ("reference",), "sw": ("risiti",)},
    "paid": {
        "en": ("paid", "received"), "fr": ("paye", "recu"), "sw": ("nimelipwa", "nimepokea"),
        "wo": ("jot", "jotnaa"),
    },
    "dispute": {
        "en": ("dispute", "complain"), "fr": ("litige", "contester", "reclamation"),
        "sw": ("lalamika", "malalamiko"), "wo": ("xuloo",),
    },
}

# Unmistakable opt-out words (used where a non-leader's MSG text is read as their own).
STRONG_STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "optout"})
# Everyday words that also mean "stop": "Basi asante" is "ok thanks", "acha nione" "let me
# see". They opt out only when they are the whole message.
WEAK_STOP_WORDS = frozenset({"basi", "acha", "bayi", "bayyi"})
# Stop words long enough for a typo of them to be read as them (SOTP, SIMAMMA, TAXAWL); a
# word one edit from STOP that is a real word of its own (SHOP, STEP) is left alone.
TYPO_STOP_WORDS = frozenset({
    "stop", "unsubscribe", "optout", "arret", "arreter", "desinscrire", "simama", "sitisha",
    "komesha", "taxawal", "noppi",
})
NOT_STOP_TYPOS = frozenset({"shop", "step", "stoep", "atop", "soap", "stock", "store", "story"})

# Names and codes a sender may give after LANG, in any of the four languages.
LANGUAGE_NAMES: Mapping[str, tuple[str, ...]] = {
    "en": ("en", "eng", "english", "anglais", "kiingereza", "kingereza", "angale"),
    "fr": ("fr", "fra", "french", "francais", "kifaransa", "faranse"),
    "sw": ("sw", "swa", "swahili", "kiswahili", "souahili"),
    "wo": ("wo", "wol", "wolof", "kiwolof", "olof", "ouolof"),
}

# Greetings and courtesy words skipped before the keyword ("Hello, PRICE MAIZE").
POLITE_WORDS = frozenset({
    "please", "pls", "plz", "pliz", "hi", "hello", "tafadhali", "jambo", "habari", "asante",
    "svp", "bonjour", "salut", "merci", "salaam", "salam", "jerejef",
})

# Small words people put between arguments ("price of maize in Nakuru", "prix du mil a Thies").
FILLER_WORDS = frozenset({
    "in", "at", "for", "of", "the", "a", "an", "to", "my", "i", "and", "market", "mkt", "x",
    "each",
    "au", "aux", "de", "du", "des", "la", "le", "les", "l", "d", "pour", "sur", "marche",
    "ya", "za", "wa", "kwa", "katika", "kwenye", "soko", "sokoni", "na",
    "ci", "ca", "bu", "gu", "ak", "marse",
    "today", "now", "leo", "sasa", "aujourd", "hui", "aujourdhui", "tey",
}) | POLITE_WORDS

# The offer words after WITHDRAW or OPEN ("WITHDRAW OFFER 12", "OPEN OFFER 12 120").
OFFER_WORDS = frozenset({"offer", "offre", "ofa", "ofar", "quote", "devis", "nukuu"})

# Words that may precede an order number ("CLOSE order 12", "TOTAL no 12").
ORDER_WORDS = frozenset({"order", "no", "nr", "num", "number", "commande", "cmd", "oda", "namba"})

# Words between a price and its unit ("4300 per bag", "4300 F le sac", "48 kwa kilo").
PER_WORDS = frozenset({"per", "each", "par", "pour", "le", "la", "kwa"})

# Currency marks around a price ("ksh 4300", "4300F", "4 300 FCFA"); they mark the price.
CURRENCY_WORDS = frozenset({
    "ksh", "kshs", "kes", "sh", "shs", "bob", "shilingi", "shillings",
    "f", "fr", "frs", "fcfa", "cfa", "xof", "franc", "francs",
})

# A bag without a size: read as the commodity's own bag unit when it has one.
GENERIC_BAG_WORDS = frozenset({
    "bag", "bags", "sac", "sacs", "saaku", "magunia", "gunias", "mfuko", "mifuko",
})


# ---------------------------------------------------------------- text and typos

# Letters NFKD leaves whole; Wolof's eng is written "ng" on phones without it.
_SPECIAL = str.maketrans({"ŋ": "ng", "œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l"})
_SLASH_SPACES = re.compile(r"\s*/\s*")
_LOOSE_SLASH = re.compile(r"(?<!\d)/|/(?![^\W_])")
_NOT_KEPT = re.compile(r"[^\w.,/]|_")
_LOOSE_POINT = re.compile(r"(?<!\d)[.,]|[.,](?!\d)")
_REPEATS = re.compile(r"(.)\1+")
NUMBER = re.compile(r"[0-9]+(?:[.,][0-9]+)*")  # ASCII: normalize_text maps other digits
_SEPARATOR = re.compile(r"[.,]")


def normalize_text(text: str) -> str:
    """Casefold, strip accents and control characters, and turn punctuation into spaces.

    ``.``, ``,`` and ``/`` survive inside numbers: "4,300", "4.5", "4300/bag".
    """
    kept: list[str] = []
    for ch in unicodedata.normalize("NFKD", text.casefold()):
        kind = unicodedata.category(ch)
        if kind == "Mn":
            continue
        if ch.isspace():
            kept.append(" ")
        elif kind == "Nd":
            kept.append(str(unicodedata.digit(ch)))  # Arabic-Indic and other digits count too
        elif kind[0] != "C":
            kept.append(ch)
    flat = "".join(kept).translate(_SPECIAL).casefold()
    # A slash survives only as "price/unit"; Kenyan "4300/=" and "a/b" lose it.
    flat = _LOOSE_SLASH.sub(" ", _SLASH_SPACES.sub("/", flat))
    flat = _LOOSE_POINT.sub(" ", _NOT_KEPT.sub(" ", flat))
    return " ".join(flat.split())


def parse_number(text: str) -> Decimal | None:
    """The value of "4300", "4,300", "4.300" or "4.5"; None when malformed.

    A dot or comma followed by exactly three digits and nothing else groups thousands
    (unless the number starts with "0": "0.500" is a half); any other is a decimal point.
    """
    if len(text) > 20 or not NUMBER.fullmatch(text):
        return None
    groups, marks = _SEPARATOR.split(text), _SEPARATOR.findall(text)
    if not marks:
        return Decimal(text)
    *head, last = groups
    if any(len(group) != 3 for group in head[1:]) or len(set(marks[:-1])) > 1:
        return None
    if len(last) == 3 and groups[0] != "0" and marks[-1] == marks[0]:
        return Decimal("".join(groups))
    if len(marks) == 1 or marks[-1] != marks[0]:
        return Decimal("".join(head) + "." + last)
    return None


def squeeze(word: str) -> str:
    """``word`` with runs of one letter cut to one ("stooop" -> "stop")."""
    return _REPEATS.sub(r"\1", word)


def reach(a: str, b: str) -> int:
    """How many edits a typo may make: none up to 3 letters, one up to 6, then two."""
    shortest = min(len(a), len(b))
    return 0 if shortest <= 3 else 1 if shortest <= 6 else 2


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein (adjacent swaps) distance, or ``limit + 1`` once it is exceeded."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            best = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, before[j - 2] + 1)
            row[j] = best
        if min(row) > limit:
            return limit + 1
        before, prev = prev, row
    return min(prev[-1], limit + 1)


def phrase_distance(typed: Sequence[str], known: Sequence[str]) -> int | None:
    """Summed word distances when every word is within its own reach, else None."""
    total = 0
    for word, other in zip(typed, known):
        if word == other:
            continue
        limit = reach(word, other) if word.isalpha() and other.isalpha() else 0
        step = edit_distance(word, other, limit) if limit else 1
        if step > limit:
            return None
        total += step
    return total


V = TypeVar("V")


@dataclass(frozen=True)
class Match(Generic[V]):
    """A phrase found in the message: its value, how many words it covered, how many edits."""

    value: V
    words: int
    distance: int


class PhraseTable(Generic[V]):
    """Phrases of one or more words mapped to values, found exactly or despite a small typo."""

    def __init__(self, entries: Iterable[tuple[str, V]]) -> None:
        named: dict[str, set[V]] = {}
        for phrase, value in entries:
            key = normalize_text(phrase)
            if key:
                named.setdefault(key, set()).add(value)
        glued: dict[str, set[V]] = {}  # "irishpotatoes" typed for "irish potatoes"
        for key, values in named.items():
            if " " in key and key.replace(" ", "") not in named:
                glued.setdefault(key.replace(" ", ""), set()).update(values)
        # A phrase naming two different things is ambiguous: no answer beats a wrong one.
        self.exact = {k: next(iter(v)) for k, v in (named | glued).items() if len(v) == 1}
        self.phrases: dict[int, list[tuple[tuple[str, ...], V]]] = {}
        for key, values in named.items():
            words = tuple(key.split())
            self.phrases.setdefault(len(words), []).extend((words, v) for v in values)
        self.longest = max(self.phrases, default=1)

    def exact_at(self, tokens: Sequence[str], start: int) -> Match[V] | None:
        """The longest phrase starting at ``start`` spelled exactly."""
        for n in range(min(self.longest, len(tokens) - start), 0, -1):
            value = self.exact.get(" ".join(tokens[start:start + n]))
            if value is not None:
                return Match(value, n, 0)
        return None

    def near_at(self, tokens: Sequence[str], start: int) -> Match[V] | None:
        """The longest phrase starting at ``start`` within typo reach of one value only."""
        for n in range(min(self.longest, len(tokens) - start), 0, -1):
            typed = tokens[start:start + n]
            best, found = n * 2 + 1, set[V]()
            for words, value in self.phrases.get(n, ()):
                total = phrase_distance(typed, words)
                if total is not None and total <= best:
                    found = {value} if total < best else found | {value}
                    best = total
            if len(found) == 1:
                return Match(next(iter(found)), n, best)
        return None

    def find(self, tokens: Sequence[str], start: int, near: bool) -> Match[V] | None:
        """``exact_at`` or, when ``near``, ``near_at``."""
        return self.near_at(tokens, start) if near else self.exact_at(tokens, start)


# --------------------------------------------------------------------- keywords

@dataclass(frozen=True)
class Keyword:
    """One command word and the languages it is used in."""

    word: str
    command: str
    langs: frozenset[str]

    @property
    def lang_hint(self) -> str | None:
        """The sender's probable language, when the word belongs to exactly one."""
        if len(self.langs) == 1 and ANY not in self.langs:
            return next(iter(self.langs))
        return None


def build_keyword_index(table: Mapping[str, Mapping[str, tuple[str, ...]]]) -> dict[str, Keyword]:
    """Every word of ``table`` mapped to its keyword; a word in two commands is an error."""
    commands: dict[str, str] = {}
    langs: dict[str, set[str]] = {}
    for command, by_lang in table.items():
        for lang, words in by_lang.items():
            for word in words:
                owner = commands.setdefault(word, command)
                if owner != command:
                    raise ValueError(f"keyword {word!r} belongs to both {owner!r} and {command!r}")
                langs.setdefault(word, set()).add(lang)
    return {word: Keyword(word, commands[word], frozenset(langs[word])) for word in commands}


KEYWORDS: Mapping[str, Keyword] = build_keyword_index(COMMAND_WORDS)
STOP_WORDS = frozenset(word for word, kw in KEYWORDS.items() if kw.command == "stop")
LANGUAGE_CODES: Mapping[str, str] = {
    name: code for code, names in LANGUAGE_NAMES.items() for name in names
}
# Typos are matched to commands, not words: "prics" is near PRICE and PRICES, both "price".
_OTHER_KEYWORDS: PhraseTable[str] = PhraseTable(
    (word, kw.command) for word, kw in KEYWORDS.items() if kw.command != "stop"
)
_STOPS: PhraseTable[str] = PhraseTable((word, "stop") for word in STOP_WORDS)
_SQUEEZED_STOPS = {squeeze(word): word for word in STOP_WORDS}
_TYPO_STOPS: PhraseTable[str] = PhraseTable((word, word) for word in TYPO_STOP_WORDS)
_LANGUAGES: PhraseTable[str] = PhraseTable(LANGUAGE_CODES.items())


def find_keyword(word: str, near: bool) -> Keyword | None:
    """The command keyword ``word`` spells; when ``near``, one it is a small typo of.

    Nothing is ever a typo of a stop word, and a word close to one (UNSUBSCRIB) is not
    read as any other command either: better a help reply than a wrong subscription.
    """
    if not near:
        return KEYWORDS.get(word)
    if _STOPS.near_at([word], 0) is not None:
        return None
    hit = _OTHER_KEYWORDS.near_at([word], 0)
    if hit is None:
        return None
    # the languages of the command's words closest to the typo, e.g. PRIXX -> PRIX -> fr
    closest = [
        kw for kw in KEYWORDS.values()
        if kw.command == hit.value and phrase_distance([word], [kw.word]) == hit.distance
    ]
    return Keyword(word, hit.value, frozenset().union(*(kw.langs for kw in closest)))


def _stop_word(word: str) -> str | None:
    return word if word in STOP_WORDS else _SQUEEZED_STOPS.get(squeeze(word))


def _stop_typo(word: str) -> str | None:
    """The long stop word ``word`` is one small typo of (SOTP, UNSUBSCRIB), if any."""
    if not word.isalpha() or word in NOT_STOP_TYPOS or word in KEYWORDS:
        return None
    hit = _TYPO_STOPS.near_at([squeeze(word)], 0) or _TYPO_STOPS.near_at([word], 0)
    return hit.value if hit is not None else None


def stop_keyword(tokens: Sequence[str]) -> tuple[Keyword, int] | None:
    """A stop word opening ``tokens``, however spelt, and how many tokens it took.

    "Stop!", "S T O P", "OPT OUT", "STOOOP" and "SOTP" all count. A weak stop word (BASI)
    counts only as the whole message; anywhere but first, no word opts out.
    """
    joined = ""
    for n, token in enumerate(tokens[:12], start=1):
        if not token.isalpha() or len(joined) + len(token) > 16:
            break
        joined += token
        word = _stop_word(joined) or (_stop_typo(joined) if n == 1 else None)
        if word is None:
            continue
        if word in WEAK_STOP_WORDS and len(tokens) > n:
            return None
        return KEYWORDS[word], n
    return None


def has_strong_stop(tokens: Sequence[str]) -> bool:
    """Whether any word is an unmistakable opt-out (STOP, UNSUBSCRIBE), wherever it stands."""
    return any(_stop_word(token) in STRONG_STOP_WORDS for token in tokens)


def find_language(words: Sequence[str], near: bool) -> str | None:
    """The language code the first of ``words`` names ("fr", "kiswahili", "wolof")."""
    hit = _LANGUAGES.find(words, 0, near) if words else None
    return hit.value if hit else None
