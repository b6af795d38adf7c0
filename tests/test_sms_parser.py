"""The SMS keyword parser: realistic messages in en, fr, sw and wo, typos, numbers, STOP."""
from __future__ import annotations

import tomllib
from decimal import Decimal
from itertools import combinations
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgw.config import PROJECT_ROOT
from smsgw.conversations.sms.keywords import (
    ANY,
    COMMAND_WORDS,
    COMMANDS,
    KEYWORDS,
    LANGUAGES,
    STOP_WORDS,
    build_keyword_index,
    edit_distance,
    reach,
    squeeze,
)
from smsgw.conversations.sms.parser import (
    Parsed,
    Vocabulary,
    load_vocabulary,
    normalize_text,
    parse,
    parse_number,
)
from smsgw.models import Commodity, Market, Unit

CONTENT = PROJECT_ROOT / "content"
SHORTCODES = ("SMSGW", "SOKO")


def _toml_catalog() -> tuple[Vocabulary, dict[str, int], dict[str, int], dict[str, int]]:
    """A vocabulary straight from the content files, with ids by code for the tables below."""
    units = tomllib.loads((CONTENT / "units.toml").read_text("utf-8"))["unit"]
    u = {unit["code"]: n for n, unit in enumerate(units, start=1)}
    unit_words = {w.lower(): u[unit["code"]] for unit in units for w in [unit["code"], *unit["aliases"]]}
    c: dict[str, int] = {}
    m: dict[str, int] = {}
    commodity_words: dict[str, int] = {}
    market_words: dict[str, int] = {}
    bags: dict[int, int] = {}
    for country in ("kenya", "senegal"):
        data = tomllib.loads((CONTENT / f"{country}.toml").read_text("utf-8"))
        for market in data["market"]:
            mid = m.setdefault(market["code"], len(m) + 1)
            for word in [market["code"], market["name"], market["short"], *market["aliases"]]:
                market_words[word.lower()] = mid
        for item in data["commodity"]:
            cid = c.setdefault(item["code"], len(c) + 1)
            words = [item["code"], *item["names"].values(), *item["short"].values()]
            words += [w for aliases in item["aliases"].values() for w in aliases]
            commodity_words.update({w.lower(): cid for w in words})
            if item["default_unit"].startswith("bag"):
                bags[cid] = u[item["default_unit"]]
    return Vocabulary(commodity_words, market_words, unit_words, bags), c, m, u


VOCAB, C, M, U = _toml_catalog()


def _expect(command: str, lang: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"command": command, "lang_hint": lang, **fields}


def _check(parsed: Parsed, expected: dict[str, Any]) -> None:
    got = {name: getattr(parsed, name) for name in expected}
    assert got == expected, parsed


MESSAGES = [
    # ------------------------------------------------------------------ English
    ("PRICE MAIZE NAKURU", _expect("price", "en", commodity_id=C["maize"], market_id=M["nakuru"], error=None)),
    ("price maiz nakru", _expect("price", "en", commodity_id=C["maize"], market_id=M["nakuru"])),
    ("Price  of maize in Nakuru!!", _expect("price", "en", commodity_id=C["maize"], market_id=M["nakuru"])),
    ("prics maize", _expect("price", "en", commodity_id=C["maize"], market_id=None)),
    ("PRICE NAKURU MAIZE", _expect("price", "en", commodity_id=C["maize"], market_id=M["nakuru"])),
    ("PRICE irish potatoes", _expect("price", "en", commodity_id=C["potatoes"])),
    ("price irish-potatos eldoret", _expect("price", "en", commodity_id=C["potatoes"], market_id=M["eldoret"])),
    ("PRICE irishpotatoes", _expect("price", "en", commodity_id=C["potatoes"])),
    ("price beans eldoret main market", _expect("price", "en", commodity_id=C["beans"], market_id=M["eldoret"])),
    ("PRICE MAIZE nakuru town", _expect("price", "en", commodity_id=C["maize"], market_id=M["nakuru"])),
    ("PRICE MAIZE ELDORTE", _expect("price", "en", commodity_id=C["maize"], market_id=M["eldoret"])),
    ("MAIZE", _expect("price", None, commodity_id=C["maize"], market_id=None)),
    ("Maize Nakuru", _expect("price", None, commodity_id=C["maize"], market_id=M["nakuru"])),
    ("STD maize", _expect("std", "en", commodity_id=C["maize"], error=None)),
    ("GRADE beanz", _expect("std", "en", commodity_id=C["beans"])),
    ("SUB maize nakuru", _expect("sub", "en", commodity_id=C["maize"], market_id=M["nakuru"])),
    ("subscribe tomato kisumu", _expect("sub", "en", commodity_id=C["tomatoes"], market_id=M["kisumu"])),
    ("UNSUB beans", _expect("unsub", "en", commodity_id=C["beans"], error=None)),
    ("HELP", _expect("help", "en", args=())),
    ("help price", _expect("help", "en", args=("price",))),
    ("helpp", _expect("help", "en")),
    ("INFO", _expect("help", None)),
    ("START", _expect("start", "en")),
    ("yes", _expect("start", "en")),
    ("LANG en", _expect("lang", None, lang_code="en", error=None)),
    ("language kiswahili", _expect("lang", "en", lang_code="sw")),
    ("LANG englsh", _expect("lang", None, lang_code="en")),
    (
        "SOLD 10bags maize 4300",
        _expect(
            "sold",
            "en",
            commodity_id=C["maize"],
            quantity=Decimal(10),
            unit_id=U["bag90"],
            price=Decimal(4300),
            price_unit_id=None,
            error=None,
        ),
    ),
    (
        "sold 500kg mahindi 48/kg",
        _expect(
            "sold",
            "en",
            commodity_id=C["maize"],
            quantity=Decimal(500),
            unit_id=U["kg"],
            price=Decimal(48),
            price_unit_id=U["kg"],
            error=None,
        ),
    ),
    (
        "SOLD maize 10 bags 4,300",
        _expect("sold", "en", commodity_id=C["maize"], quantity=Decimal(10), unit_id=U["bag90"], price=Decimal(4300)),
    ),
    ("SOLD 10 bags maize 4 300", _expect("sold", "en", quantity=Decimal(10), price=Decimal(4300), error=None)),
    (
        "SOLD 1 500kg maize 48/kg",
        _expect("sold", "en", quantity=Decimal(1500), unit_id=U["kg"], price=Decimal(48), price_unit_id=U["kg"]),
    ),
    ("SOLD 5 100kg maize 4300", _expect("sold", "en", quantity=Decimal(5), unit_id=U["bag100"], price=Decimal(4300))),
    (
        "sold 10 bags of maize at 4300 each",
        _expect("sold", "en", quantity=Decimal(10), unit_id=U["bag90"], price=Decimal(4300), args=(), error=None),
    ),
    ("SOLD 3x90kg maize 4300", _expect("sold", "en", quantity=Decimal(3), unit_id=U["bag90"], price=Decimal(4300))),
    (
        "SOLD 2.5 tonnes maize 43000/t",
        _expect(
            "sold", "en", quantity=Decimal("2.5"), unit_id=U["tonne"], price=Decimal(43000), price_unit_id=U["tonne"]
        ),
    ),
    (
        "sold 10 crates tomatoes ksh 4000 per crate",
        _expect(
            "sold",
            "en",
            commodity_id=C["tomatoes"],
            quantity=Decimal(10),
            unit_id=U["crate"],
            price=Decimal(4000),
            price_unit_id=U["crate"],
        ),
    ),
    (
        "sale 20 bags beans @ 7,500",
        _expect("sold", "en", commodity_id=C["beans"], quantity=Decimal(20), unit_id=U["bag90"], price=Decimal(7500)),
    ),
    (
        "SOLD 10 bags potatoes nakuru 2700/bag",
        _expect("sold", "en", unit_id=U["bag50"], market_id=M["nakuru"], price=Decimal(2700), price_unit_id=U["bag50"]),
    ),
    (
        "sold maize 4300/bag 10 bags",
        _expect("sold", "en", quantity=Decimal(10), unit_id=U["bag90"], price=Decimal(4300), price_unit_id=U["bag90"]),
    ),
    ("SOLD 10 bags maize 4300/=", _expect("sold", "en", price=Decimal(4300), price_unit_id=None, error=None)),
    (
        "P maize nakuru 4300/bag90",
        _expect(
            "report",
            None,
            commodity_id=C["maize"],
            market_id=M["nakuru"],
            price=Decimal(4300),
            price_unit_id=U["bag90"],
            error=None,
        ),
    ),
    (
        "PR beans eldoret 7 500/90kg",
        _expect(
            "report",
            None,
            commodity_id=C["beans"],
            market_id=M["eldoret"],
            price=Decimal(7500),
            price_unit_id=U["bag90"],
        ),
    ),
    (
        "REPORT onion thies 22500/bag50",
        _expect(
            "report",
            "en",
            commodity_id=C["onion"],
            market_id=M["thies"],
            price=Decimal(22500),
            price_unit_id=U["bag50"],
        ),
    ),
    ("OPEN sell maize 100 bags", _expect("open", "en", args=("sell", "maize", "100", "bags"), error=None)),
    ("TOTAL 12", _expect("total", None, order_ref=12, error=None)),
    ("close order #12", _expect("close", "en", order_ref=12, error=None)),
    ("JOIN 12 50", _expect("join", "en", order_ref=12, quantity=Decimal(50), unit_id=None, error=None)),
    ("JOIN 12 5 gunia", _expect("join", "en", order_ref=12, quantity=Decimal(5), unit_id=U["bag90"])),
    (
        "join 12 5 bags",
        _expect("join", "en", order_ref=12, quantity=Decimal(5), unit_id=None, args=("bags",), error=None),
    ),
    ("WITHDRAW 12", _expect("withdraw", "en", order_ref=12)),
    # ------------------------------------------------------------------ French
    ("PRIX MIL KAOLACK", _expect("price", "fr", commodity_id=C["millet"], market_id=M["kaolack"])),
    ("prix du mil à Thiès", _expect("price", "fr", commodity_id=C["millet"], market_id=M["thies"])),
    ("Prix arachide Touba", _expect("price", "fr", commodity_id=C["groundnut"], market_id=M["touba"])),
    ("prix pommes de terre thies", _expect("price", "fr", commodity_id=C["potatoes"], market_id=M["thies"])),
    ("PRIX oignons Dakar Thiaroye", _expect("price", "fr", commodity_id=C["onion"], market_id=M["dakar-thiaroye"])),
    ("prix arachide kaolack central", _expect("price", "fr", commodity_id=C["groundnut"], market_id=M["kaolack"])),
    ("prix arachde kaolac", _expect("price", "fr", commodity_id=C["groundnut"], market_id=M["kaolack"])),
    ("PRIXX riz", _expect("price", "fr", commodity_id=C["rice"])),
    ("NORME arachide", _expect("std", "fr", commodity_id=C["groundnut"])),
    ("QUALITÉ mil", _expect("std", "fr", commodity_id=C["millet"])),
    ("ABONNER oignon thies", _expect("sub", "fr", commodity_id=C["onion"], market_id=M["thies"])),
    ("abo riz local", _expect("sub", "fr", commodity_id=C["rice"])),
    ("DESABO mil", _expect("unsub", "fr", commodity_id=C["millet"])),
    ("AIDE", _expect("help", "fr")),
    ("OUI", _expect("start", "fr")),
    ("Reprendre", _expect("start", "fr")),
    ("LANGUE français", _expect("lang", "fr", lang_code="fr")),
    (
        "VENDU 2 sac100 mil 28000",
        _expect(
            "sold",
            "fr",
            commodity_id=C["millet"],
            quantity=Decimal(2),
            unit_id=U["bag100"],
            price=Decimal(28000),
            error=None,
        ),
    ),
    (
        "VENDU 2 sacs mil 28 000 F le sac",
        _expect(
            "sold", "fr", quantity=Decimal(2), unit_id=U["bag100"], price=Decimal(28000), price_unit_id=U["bag100"]
        ),
    ),
    (
        "vente 5 sacs arachide 22.500",
        _expect(
            "sold", "fr", commodity_id=C["groundnut"], quantity=Decimal(5), unit_id=U["bag100"], price=Decimal(22500)
        ),
    ),
    (
        "vendu 1,5 tonne oignon 250/kg",
        _expect("sold", "fr", quantity=Decimal("1.5"), unit_id=U["tonne"], price=Decimal(250), price_unit_id=U["kg"]),
    ),
    ("OUVRIR vente arachide", _expect("open", "fr", args=("vente", "arachide"))),
    ("FERMER 7", _expect("close", "fr", order_ref=7)),
    ("REJOINDRE 7 10 sacs", _expect("join", "fr", order_ref=7, quantity=Decimal(10), args=("sacs",))),
    ("RETIRER 7", _expect("withdraw", "fr", order_ref=7)),
    # ------------------------------------------------------------------ Swahili
    ("BEI MAHINDI", _expect("price", "sw", commodity_id=C["maize"], market_id=None)),
    ("bei ya mahindi nakuru", _expect("price", "sw", commodity_id=C["maize"], market_id=M["nakuru"])),
    ("bei ya mahindi leo", _expect("price", "sw", commodity_id=C["maize"], error=None)),
    ("BEI MAHINDII NAIROBI", _expect("price", "sw", commodity_id=C["maize"], market_id=M["nairobi-wakulima"])),
    ("bei viazi marikiti", _expect("price", "sw", commodity_id=C["potatoes"], market_id=M["nairobi-wakulima"])),
    ("Bei nyanyaa kisumuu", _expect("price", "sw", commodity_id=C["tomatoes"], market_id=M["kisumu"])),
    ("mahindi", _expect("price", None, commodity_id=C["maize"])),
    ("KIWANGO mahindi", _expect("std", "sw", commodity_id=C["maize"])),
    ("DARAJA maharagwe", _expect("std", "sw", commodity_id=C["beans"])),
    ("JIUNGE mahindi nakuru", _expect("sub", "sw", commodity_id=C["maize"], market_id=M["nakuru"])),
    ("ONDOA maharage", _expect("unsub", "sw", commodity_id=C["beans"])),
    ("MSAADA", _expect("help", "sw")),
    ("saidia", _expect("help", "sw")),
    ("NDIO", _expect("start", "sw")),
    ("LUGHA kiswahili", _expect("lang", "sw", lang_code="sw")),
    ("lugha kiingereza", _expect("lang", "sw", lang_code="en")),
    (
        "NIMEUZA 10 gunia mahindi 4200",
        _expect("sold", "sw", commodity_id=C["maize"], quantity=Decimal(10), unit_id=U["bag90"], price=Decimal(4200)),
    ),
    (
        "uza 5 kreti nyanya 3500",
        _expect("sold", "sw", commodity_id=C["tomatoes"], quantity=Decimal(5), unit_id=U["crate"], price=Decimal(3500)),
    ),
    ("FUNGUA mahindi 100", _expect("open", "sw", args=("mahindi", "100"))),
    ("JUMLA 3", _expect("total", "sw", order_ref=3)),
    ("FUNGA 3", _expect("close", "sw", order_ref=3)),
    ("SHIRIKI 3 20", _expect("join", "sw", order_ref=3, quantity=Decimal(20))),
    ("JITOA 3", _expect("withdraw", "sw", order_ref=3)),
    # ------------------------------------------------------------------ Wolof
    ("NJËG DUGUB", _expect("price", "wo", commodity_id=C["millet"])),
    ("NJEG DUGUB", _expect("price", "wo", commodity_id=C["millet"])),
    ("njeg gerte kawlax", _expect("price", "wo", commodity_id=C["groundnut"], market_id=M["kaolack"])),
    ("Njeg soble tiaroye", _expect("price", "wo", commodity_id=C["onion"], market_id=M["dakar-thiaroye"])),
    ("njeg ceeb cees", _expect("price", "wo", commodity_id=C["rice"], market_id=M["thies"])),
    ("XEET gerte", _expect("std", "wo", commodity_id=C["groundnut"])),
    ("BINDU dugub kaolack", _expect("sub", "wo", commodity_id=C["millet"], market_id=M["kaolack"])),
    ("DINDI soble", _expect("unsub", "wo", commodity_id=C["onion"])),
    ("NDIMBAL", _expect("help", "wo")),
    ("WAAW", _expect("start", "wo")),
    ("LAKK wolof", _expect("lang", "wo", lang_code="wo")),
    ("lakk faranse", _expect("lang", "wo", lang_code="fr")),
    (
        "JAAY 3 saaku100 gerte 45000",
        _expect(
            "sold", "wo", commodity_id=C["groundnut"], quantity=Decimal(3), unit_id=U["bag100"], price=Decimal(45000)
        ),
    ),
    ("UBBI jaay gerte", _expect("open", "wo", args=("jaay", "gerte"))),
    ("MBOOLEM 4", _expect("total", "wo", order_ref=4)),
    ("TEJ 4", _expect("close", "wo", order_ref=4)),
    ("BOKK 4 10", _expect("join", "wo", order_ref=4, quantity=Decimal(10))),
    ("GENN 4", _expect("withdraw", "wo", order_ref=4)),
    # --------------------------------------------------- shortcodes, greetings, languages
    ("SOKO BEI MAHINDI", _expect("price", "sw", commodity_id=C["maize"])),
    ("smsgw: price maize", _expect("price", "en", commodity_id=C["maize"])),
    ("SOKO", _expect("help", None)),
    ("Hello, PRICE MAIZE please", _expect("price", "en", commodity_id=C["maize"], args=())),
    ("kiswahili", _expect("lang", None, lang_code="sw")),
    ("Wolof", _expect("lang", None, lang_code="wo")),
]


@pytest.mark.parametrize(("text", "expected"), MESSAGES, ids=[text for text, _ in MESSAGES])
def test_realistic_messages(text: str, expected: dict[str, Any]) -> None:
    _check(parse(text, VOCAB, SHORTCODES), expected)


ERRORS = [
    ("PRICE", "price", "missing_commodity"),
    ("BEI", "price", "missing_commodity"),
    ("PRICE xyzzy", "price", "unknown_commodity"),
    ("PRICE maize xyzzy", "price", "unknown_market"),
    ("STD", "std", "missing_commodity"),
    ("SUB qwerty", "sub", "unknown_commodity"),
    ("SOLD", "sold", "missing_commodity"),
    ("SOLD maize", "sold", "bad_quantity"),
    ("SOLD 0 bags maize 4300", "sold", "bad_quantity"),
    ("SOLD 99999999 kg maize 40", "sold", "bad_quantity"),
    ("SOLD 10bags maize", "sold", "missing_price"),
    ("SOLD 10 bags maize abc", "sold", "bad_price"),
    ("SOLD 10 bags maize 0", "sold", "bad_price"),
    ("SOLD 10 bags maize 4.30.5", "sold", "bad_price"),
    ("SOLD 10bugz maize 4300", "sold", "unknown_unit"),
    ("SOLD 10 zzz maize 4300", "sold", "unknown_unit"),
    ("SOLD 10 bags maize 4300/bugz", "sold", "unknown_unit"),
    ("SOLD 10 bags tomatoes 4000", "sold", "unknown_unit"),  # tomatoes come in crates
    ("P", "report", "missing_commodity"),
    ("P maize 4300", "report", "unknown_market"),
    ("P maize nakuru", "report", "missing_price"),
    ("P maize nakuru abc", "report", "bad_price"),
    ("TOTAL", "total", "missing_order"),
    ("CLOSE abc", "close", "missing_order"),
    ("WITHDRAW 0", "withdraw", "missing_order"),
    ("JOIN", "join", "missing_order"),
    ("JOIN 12", "join", "bad_quantity"),
    ("JOIN 12 5 bugz", "join", "unknown_unit"),
    ("LANG", "lang", "bad_lang"),
    ("LANG klingon", "lang", "bad_lang"),
    ("LANGUE 7", "lang", "bad_lang"),
    ("JIUNGA 12 50", "join", None),  # JIUNGE <order> <qty> joins the order (issue 18), never a SUB
    ("TOTAL ፩", "total", "missing_order"),  # Ethiopic one: a digit to str.isdigit, not to int()
    ("SOLD 10 bags maize ፩፪፫", "sold", "bad_price"),
]


@pytest.mark.parametrize(("text", "command", "error"), ERRORS, ids=[t for t, _, _ in ERRORS])
def test_bad_arguments_name_the_problem(text: str, command: str, error: str) -> None:
    parsed = parse(text, VOCAB, SHORTCODES)
    assert (parsed.command, parsed.error) == (command, error), parsed


STOPS = [
    ("STOP", None), ("stop", None), ("Stop.", None), ("  STOP  ", None), ("S T O P", None),
    ("S.T.O.P", None), ("STOP!!!", None), ("STOOOP", None), ("stopp", None), ("StopAll", None),
    ("STOP ALL", None), ("ＳＴＯＰ", None), ("ST\u200bOP", None), ("STOP\x00", None),
    ("unsubscribe", "en"), ("UN SUBSCRIBE", "en"), ("SOTP", None), ("unsubscrib", "en"),
    ("quit", "en"), ("opt out", "en"), ("OPT-OUT", "en"), ("UNSUB", "en"),
    ("ARRÊT", "fr"), ("arrêter", "fr"), ("Stoppe", "fr"), ("DESABO", "fr"),
    ("SIMAMA", "sw"), ("acha", "sw"), ("BASI", "sw"), ("ONDOA", "sw"),
    ("TAXAWAL", "wo"), ("bayi", "wo"), ("DINDI", "wo"),
    ("please stop", None), ("SOKO STOP", None), ("stop maize", None),
    ("simma", "sw"), ("taxawl", "wo"), ("stip", None),
]


@pytest.mark.parametrize(("text", "lang"), STOPS, ids=[t for t, _ in STOPS])
def test_stop_is_always_honoured(text: str, lang: str | None) -> None:
    parsed = parse(text, VOCAB, SHORTCODES)
    assert (parsed.command, parsed.lang_hint, parsed.error) == ("stop", lang, None), parsed


def test_stop_keeps_what_followed_it() -> None:
    assert parse("STOP maize", VOCAB).args == ("maize",)
    assert parse("S T O P", VOCAB).args == ()


@pytest.mark.parametrize("text", ["unsubscrib", "UNSUBSCRBE", "simma", "taxawl", "stip", "SOTP"])
def test_a_first_word_one_typo_from_a_stop_word_opts_out(text: str) -> None:
    assert parse(text, VOCAB).command == "stop"


# Issue 17: only a first word (or the whole message) opts out; CANCEL is a leader's order
# command and END a USSD habit; "Basi asante" is "ok thanks".
@pytest.mark.parametrize(
    ("text", "command"),
    [("PRICE MAIZE STOP", "price"), ("maize stop", "unknown"), ("I want to stop", "unknown"),
     ("END", "unknown"), ("Basi asante", "unknown"), ("CANCEL 9", "cancel"), ("cancl 9", "cancel")],
)
def test_stop_words_elsewhere_do_not_opt_out(text: str, command: str) -> None:
    assert parse(text, VOCAB).command == command


@pytest.mark.parametrize("text", ["STD maize", "SUB maize", "START", "SUBSCRIBE maize", "SALE"])
def test_words_near_stop_are_not_stop(text: str) -> None:
    assert parse(text, VOCAB).command != "stop"


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "!!!", "\x00\x01", "...", "🙂🙂"])
def test_blank_messages_are_empty(text: str) -> None:
    assert parse(text, VOCAB) == Parsed("empty", None)


@pytest.mark.parametrize("text", ["hello there", "asdf", "12 50", "FUNGAA 12", "maize 4300", "asante"])
def test_unrecognised_messages_are_unknown(text: str) -> None:
    parsed = parse(text, VOCAB)
    assert (parsed.command, parsed.error) == ("unknown", None)
    assert parsed.args


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4300", "4300"), ("4,300", "4300"), ("4.300", "4300"), ("4.5", "4.5"), ("4,5", "4.5"),
        ("4.30", "4.30"), ("1,234,567", "1234567"), ("1.234.567", "1234567"),
        ("1.234,5", "1234.5"), ("1,234.5", "1234.5"), ("0.500", "0.5"), ("12345,678", "12345678"),
        ("4.30.5", None), ("1,23,456", None), ("1.234,567.8", None), ("abc", None), ("", None),
        ("9" * 30, None),
    ],
)
def test_numbers_follow_the_thousands_rule(text: str, value: str | None) -> None:
    assert parse_number(text) == (None if value is None else Decimal(value))


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  NJËG,  Dugub!! ", "njeg dugub"),
        ("PRIX: 4,300 / sac", "prix 4,300/sac"),
        ("4300/=", "4300"),
        ("4.5kg. Fin.", "4.5kg fin"),
        ("maize/beans", "maize beans"),
        ("QUALITÉ\tMAÏS\r\n", "qualite mais"),
        ("ＳＴＯＰ\u200b", "stop"),
        ("٤٣٠٠", "4300"),
        ("irish-potatoes", "irish potatoes"),
    ],
)
def test_normalize_text(raw: str, normal: str) -> None:
    assert normalize_text(raw) == normal


def test_only_the_first_segment_and_words_matter() -> None:
    assert parse("PRICE MAIZE " + "x" * 10_000, VOCAB).commodity_id == C["maize"]
    assert parse("PRICE " + "la " * 30 + "maize", VOCAB).error == "missing_commodity"
    assert parse("\x00" * 10_000, VOCAB).command == "empty"


def test_an_ambiguous_alias_matches_nothing() -> None:
    vocab = Vocabulary({"mais": 1, "maïs": 2, "mahindi": 1}, {}, {})
    assert parse("PRICE mais", vocab).error == "unknown_commodity"
    assert parse("PRICE mahindi", vocab).commodity_id == 1


# ------------------------------------------------------------------ the keyword table

def test_every_keyword_alone_means_its_command() -> None:
    for word, kw in KEYWORDS.items():
        expected = "stop" if kw.command == "unsub" else kw.command  # a bare UNSUB is honoured as STOP
        assert parse(word.upper(), VOCAB).command == expected, word


def test_keywords_are_stored_normalised_and_commands_are_known() -> None:
    for word in KEYWORDS:
        assert normalize_text(word) == word and word.isascii() and word.isalnum(), word
    assert set(COMMAND_WORDS) <= set(COMMANDS)
    for command, by_lang in COMMAND_WORDS.items():
        assert set(by_lang) <= {ANY, *LANGUAGES}, command
        if command != "report":  # P/PR are for trained reporters, not a language
            assert set(LANGUAGES) <= set(by_lang) | ({*LANGUAGES} if ANY in by_lang else set()), command


def test_a_word_in_two_commands_is_refused() -> None:
    with pytest.raises(ValueError, match="belongs to both"):
        build_keyword_index({"sub": {"en": ("join",)}, "join": {"en": ("join",)}})


def test_a_word_listed_in_two_languages_gives_no_hint() -> None:
    assert KEYWORDS["info"].lang_hint is None
    assert KEYWORDS["total"].lang_hint is None
    assert KEYWORDS["prix"].lang_hint == "fr"


def test_keywords_within_typo_reach_of_another_command_are_known() -> None:
    close = set()
    for a, b in combinations(KEYWORDS.values(), 2):
        limit = reach(a.word, b.word)
        if a.command != b.command and limit and edit_distance(a.word, b.word, limit) <= limit:
            close.add(frozenset((a.word, b.word)))
    # FUNGA/FUNGUA: a typo between them ties and matches neither (both are the real Swahili
    # words). SUBSCRIBE/UNSUBSCRIBE: a word near UNSUBSCRIBE is never read as SUBSCRIBE.
    assert close == {frozenset(("funga", "fungua")), frozenset(("subscribe", "unsubscribe"))}


def test_keywords_and_catalog_words_never_collide_or_squeeze_into_stop() -> None:
    catalog = {normalize_text(w) for table in (VOCAB.commodities, VOCAB.markets, VOCAB.units) for w in table}
    assert not catalog & set(KEYWORDS)
    squeezed_stops = {squeeze(w) for w in STOP_WORDS}
    others = catalog | {w for w, kw in KEYWORDS.items() if kw.command != "stop"}
    assert not {squeeze(w.replace(" ", "")) for w in others} & squeezed_stops


# ------------------------------------------------------------------ the database vocabulary

def test_load_vocabulary_reads_the_seeded_catalog(session) -> None:
    vocab = load_vocabulary(session)
    ids = {code: i for i, code in session.execute(sa.select(Commodity.id, Commodity.code))}
    markets = {code: i for i, code in session.execute(sa.select(Market.id, Market.code))}
    units = {code: i for i, code in session.execute(sa.select(Unit.id, Unit.code))}
    _check(
        parse("PRIX MIL KAOLACK", vocab),
        _expect("price", "fr", commodity_id=ids["millet"], market_id=markets["kaolack"]),
    )
    _check(
        parse("price irish potatoes nakuru wakulima", vocab),
        _expect("price", "en", commodity_id=ids["potatoes"], market_id=markets["nakuru"]),
    )
    _check(
        parse("SOLD 10bags maize 4300/bag", vocab),
        _expect("sold", "en", unit_id=units["bag90"], price_unit_id=units["bag90"], error=None),
    )
    _check(
        parse("P soble dakar thiaroye 22500/50kg", vocab),
        _expect(
            "report", None, commodity_id=ids["onion"], market_id=markets["dakar-thiaroye"], price_unit_id=units["bag50"]
        ),
    )
    for alias in ("mahindi", "pomme-de-terre", "gerte", "local rice"):
        assert alias in vocab.commodities
    assert vocab.default_bags[ids["maize"]] == units["bag90"]
    assert ids["tomatoes"] not in vocab.default_bags


# ------------------------------------------------------------------ properties

_PIECES = sorted(KEYWORDS) + sorted(VOCAB.commodities)[:40] + sorted(VOCAB.markets)[:20] + [
    "4300", "4,300", "4.5", "4 300", "10bags", "3x90kg", "/", "/bag90", "per", "ksh", "x", "0",
    "12", "F", "le", "sac", "STOP", "ë", "!", "\x00", "\u200b", "🙂", "-", ".", ",", " ", "\n",
]


@settings(max_examples=400, deadline=None, database=None)
@given(st.text(max_size=400))
def test_parse_never_raises_on_any_text(text: str) -> None:
    parsed = parse(text, VOCAB, SHORTCODES)
    assert parsed.command in COMMANDS
    assert parsed.lang_hint in (None, *LANGUAGES)


_ODD_PIECES = st.text(st.characters(categories=("Nd", "No", "Nl", "Pd", "Po", "Mn", "Cf")), max_size=4)


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(st.one_of(st.sampled_from(_PIECES), _ODD_PIECES), max_size=25).map(" ".join))
def test_parse_never_raises_on_plausible_messages(text: str) -> None:
    parsed = parse(text, VOCAB, SHORTCODES)
    assert parsed.command in COMMANDS
    assert parsed.error is None or parsed.command not in ("unknown", "empty", "stop", "help")
    assert parsed.quantity is None or parsed.quantity > 0
    assert parsed.price is None or parsed.price > 0
