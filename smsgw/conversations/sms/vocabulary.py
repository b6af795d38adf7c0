"""The catalog's words as the SMS parser reads them: commodities, markets and units."""
from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.conversations.sms.keywords import GENERIC_BAG_WORDS, PhraseTable, normalize_text
from smsgw.models import Commodity, CommodityAlias, Market, MarketAlias, Unit, UnitAlias

BAG = -1  # stands for a bag without a size ("bags", "sac") until the commodity is known


@dataclass(frozen=True)
class Vocabulary:
    """Catalog words the parser resolves: lowercase alias or name -> id."""

    commodities: Mapping[str, int]
    markets: Mapping[str, int]
    units: Mapping[str, int]
    # Commodity id -> its own bag unit, so "10 bags maize" means 90 kg bags.
    default_bags: Mapping[int, int] = field(default_factory=dict)
    # Phrase tables of commodities, markets and units (with the generic bag words).
    tables: tuple[PhraseTable[int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        known = {normalize_text(word) for word in self.units}
        bags = [(word, BAG) for word in GENERIC_BAG_WORDS if word not in known]
        tables = (
            PhraseTable(self.commodities.items()),
            PhraseTable(self.markets.items()),
            PhraseTable([*self.units.items(), *bags]),
        )
        object.__setattr__(self, "tables", tables)


def load_vocabulary(session: so.Session) -> Vocabulary:
    """Every alias and name of the catalog's commodities, markets and units (read only)."""
    def pairs(*columns: Any) -> list[tuple[str, int]]:
        return [(word, key) for word, key in session.execute(sa.select(*columns))]

    commodities = pairs(CommodityAlias.alias, CommodityAlias.commodity_id)
    bags: dict[int, int] = {}
    rows = session.execute(
        sa.select(Commodity.id, Commodity.code, Commodity.names, Commodity.short_names,
                  Unit.id, Unit.code)
        .join(Unit, Unit.id == Commodity.default_unit_id)
    )
    for cid, code, names, shorts, unit_id, unit_code in rows:
        words = [code, *(names or {}).values(), *(shorts or {}).values()]
        commodities += [(word, cid) for word in words if isinstance(word, str)]
        if unit_code.startswith("bag"):  # bag units are coded bag50, bag90, bag100
            bags[cid] = unit_id
    markets = pairs(MarketAlias.alias, MarketAlias.market_id)
    for name_column in (Market.code, Market.name, Market.short_name):
        markets += pairs(name_column, Market.id)
    units = pairs(UnitAlias.alias, UnitAlias.unit_id) + pairs(Unit.code, Unit.id)
    return _vocabulary(
        *(tuple(sorted(found.items())) for found in (_unique(commodities), _unique(markets), _unique(units), bags))
    )


@functools.lru_cache(maxsize=8)
def _vocabulary(commodities: tuple, markets: tuple, units: tuple, bags: tuple) -> Vocabulary:
    """The Vocabulary of exactly these words, its phrase tables built once per set of words.

    The catalog is still read for every message, so an operator's edit counts at once;
    only the costly tables (a few ms per SMS) are kept while the words stay the same.
    """
    return Vocabulary(dict(commodities), dict(markets), dict(units), dict(bags))


def _unique(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Lowercased words naming exactly one id; a word shared by two ids is left out."""
    ids: dict[str, set[int]] = {}
    for word, value in pairs:
        ids.setdefault(word.lower(), set()).add(value)
    return {word: next(iter(values)) for word, values in ids.items() if len(values) == 1}
