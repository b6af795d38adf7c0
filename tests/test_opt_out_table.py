"""Opt-out precision: real-looking messages per language, each labelled opt-out or not.

Each message goes through POST /at/sms from a number of its own (AT's field names), so
the real parser and router decide; the contact's consent afterwards is the verdict.
STOP or a local stop word opts out when it is the whole message or its first word
(typos forgiven); anywhere else, or as an everyday word ("Basi asante"), it does not.
"""
from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from smsgw.models import Contact, GroupOrder

OUT, STAY = True, False

EN = [
    ("STOP", OUT), ("stop", OUT), ("Stop.", OUT), ("STOP!!!", OUT), ("STOPP", OUT),
    ("SOTP", OUT), ("stpo", OUT), ("S T O P", OUT), ("Stop please", OUT), ("Please stop", OUT),
    ("stop sending me sms", OUT), ("STOP ALL", OUT), ("UNSUBSCRIBE", OUT), ("unsubscrib", OUT),
    ("opt out", OUT), ("QUIT", OUT), ("UNSUB", OUT), ("Hello STOP", OUT), ("SOKO STOP", OUT),
    ("STOOOOP", OUT),
    ("END", STAY), ("end", STAY), ("CANCEL", STAY), ("cancel 9", STAY), ("PRICE MAIZE STOP", STAY),
    ("Price of maize at the bus stop market", STAY), ("I will not stop farming", STAY),
    ("The rain does not stop", STAY), ("SHOP", STAY), ("step 2 done", STAY), ("HELP", STAY),
    ("PRICE MAIZE", STAY), ("thanks", STAY), ("ok", STAY), ("SUB BEANS", STAY), ("UNSUB MAIZE", STAY),
]
FR = [
    ("ARRET", OUT), ("arrêt", OUT), ("Arrêter", OUT), ("ARRETE", OUT), ("arrete svp", OUT),
    ("Stoppe", OUT), ("stopper les sms", OUT), ("DESINSCRIRE", OUT), ("désinscription", OUT),
    ("Bonjour STOP", OUT), ("STOP merci", OUT), ("arrter", OUT), ("DESABO", OUT),
    ("desinscrir", OUT), ("Svp arrêt", OUT),
    ("Merci beaucoup", STAY), ("PRIX MIL THIES", STAY), ("prix arachide arrêt de bus", STAY),
    ("Je ne veux pas arrêter", STAY), ("ANNULER 9", STAY), ("annuler", STAY), ("FIN", STAY),
    ("Bonjour", STAY), ("AIDE", STAY), ("ok merci", STAY), ("LANGUE FR", STAY),
    ("vendu 2 sac mil 28000", STAY), ("le camion ne va pas s arreter", STAY),
    ("ABO MIL", STAY), ("DESABO MIL", STAY), ("quel prix aujourd hui", STAY),
]
SW = [
    ("SIMAMA", OUT), ("simama", OUT), ("Simama tafadhali", OUT), ("SIMAMMA", OUT),
    ("acha", OUT), ("ACHA", OUT), ("Basi", OUT), ("SITISHA", OUT), ("sitisha ujumbe", OUT),
    ("KOMESHA", OUT), ("komesa", OUT), ("ONDOA", OUT), ("Tafadhali STOP", OUT),
    ("stop ujumbe", OUT), ("Simma", OUT),
    ("Basi asante", STAY), ("basi sawa", STAY), ("Acha nione bei ya mahindi", STAY),
    ("asante sana", STAY), ("BEI MAHINDI", STAY), ("bei ya maharagwe nakuru", STAY),
    ("MSAADA", STAY), ("LUGHA SW", STAY), ("sawa", STAY), ("ndio", STAY),
    ("mvua haisimami", STAY), ("GHAIRI 9", STAY), ("JIUNGE MAHINDI", STAY), ("ONDOA MAHINDI", STAY),
    ("nimeuza gunia 10 mahindi 4300", STAY), ("habari", STAY),
]
WO = [
    ("TAXAWAL", OUT), ("taxawal", OUT), ("Taxaw", OUT), ("taxawl", OUT), ("TAXAWALL", OUT),
    ("bayi", OUT), ("BAYYI", OUT), ("NOPPI", OUT), ("noppi sms yi", OUT), ("DINDI", OUT),
    ("Salaam STOP", OUT), ("stop jerejef", OUT), ("taxawal sms yi", OUT), ("NOPI", OUT),
    ("Taxawal bu baax", OUT),
    ("jerejef", STAY), ("Jerejef bu baax", STAY), ("NJEG DUGUB THIES", STAY), ("njeg gerte", STAY),
    ("bayi ma xool njeg bi", STAY), ("waaw", STAY), ("NDIMBAL", STAY), ("LAKK WO", STAY),
    ("FOLLI 9", STAY), ("mangi fi rekk", STAY), ("nanga def", STAY), ("BINDU DUGUB", STAY),
    ("DINDI DUGUB", STAY), ("jaay 2 saaku dugub 28000", STAY), ("Salaam aleekum", STAY),
    ("ba beneen yoon", STAY),
]
TABLES = {"en": EN, "fr": FR, "sw": SW, "wo": WO}
CASES = [(lang, text, out) for lang, table in TABLES.items() for text, out in table]
_numbers = itertools.count(1)


def test_every_language_has_at_least_30_labelled_messages() -> None:
    for lang, table in TABLES.items():
        assert len(table) >= 30, lang
        assert sum(out for _, out in table) >= 10 and sum(not out for _, out in table) >= 10, lang


def _sms(client, phone: str, text: str) -> None:
    response = client.post(
        "/at/sms",
        data={"from": phone, "to": "22384", "text": text, "id": f"optout-{next(_numbers)}",
              "date": "2026-12-04 10:15:02", "linkId": "", "networkCode": "63902"},
    )
    assert response.status_code == 200


def _opted_out(session, phone: str) -> bool:
    contact = session.scalar(sa.select(Contact).where(Contact.phone == phone))
    return bool(contact is not None and contact.opted_out)


@pytest.mark.parametrize(("lang", "text", "out"), CASES, ids=[f"{lang}:{text}" for lang, text, _ in CASES])
def test_message_opts_out_exactly_when_labelled(client, session, lang: str, text: str, out: bool) -> None:
    # Senegalese numbers for French and Wolof, Kenyan for English and Swahili.
    prefix = "+22177" if lang in ("fr", "wo") else "+2547"
    phone = (
        f"{prefix}{next(_numbers) + 4_000_000:07d}"
        if prefix == "+22177"
        else f"{prefix}{next(_numbers) + 20_000_000:08d}"
    )
    _sms(client, phone, text)
    session.expire_all()
    assert _opted_out(session, phone) is out


def test_a_leaders_cancel_cancels_the_order_and_never_opts_out(client, session) -> None:
    leader = "+254700000001"
    order = session.scalar(
        sa.select(GroupOrder).where(GroupOrder.status == "open").order_by(GroupOrder.id).limit(1)
    )
    _sms(client, leader, f"CANCEL {order.id if order else 9}")
    session.expire_all()
    assert not _opted_out(session, leader)
