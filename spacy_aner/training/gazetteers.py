"""The built-in gazetteer: public Arabic name lists mapped to ANERCorp's labels.

``../shared/data/gazetteers/SOURCE.md`` describes the lists. The mapping follows ANERCorp's
conventions: nationality adjectives are not names (only the country a nationality belongs
to is kept, as LOC); a generic head such as مدينة or شركة stays outside the entity, so it is
cut from the front of a name; a parenthesised note ("ليمبورغ (بلجيكا)") is dropped. No list
is read from ANERCorp.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

from ..core.gazetteer import Gazetteer, read_name_list

#: The labels the built-in lists give (ANERCorp's MISC has no list).
LIST_LABELS = ("PERS", "LOC", "ORG")
#: Generic heads ANERCorp leaves outside the entity (cut from a name's front).
HEADS = {"LOC": ("مدينة", "ولاية", "مقاطعة", "محافظة", "إقليم", "منطقة"), "ORG": ("شركة", "وزارة", "صحيفة", "جريدة")}
LATIN = re.compile(r"[A-Za-z]")
NOTE = re.compile(r"\s*[(\[].*?[)\]]\s*")

Name = Tuple[str, str]


def clean_name(text: str, label: str) -> str:
    """A list entry as ANERCorp would mark it, or "" for one that is no Arabic name."""
    text = NOTE.sub(" ", text).strip()
    for head in HEADS.get(label, ()):
        if text.startswith(head + " "):
            text = text[len(head) + 1:].strip()
    if not text or LATIN.search(text) or not any("\u0600" <= ch <= "\u06ff" for ch in text):
        return ""
    return " ".join(text.split())


def nerar(folder: Path) -> Iterator[Name]:
    """NERAr's monolingual lists and the Arabic side of its bilingual ones (Buckwalter -> Arabic)."""
    from camel_tools.utils.charmap import CharMapper

    to_arabic = CharMapper.builtin_mapper("bw2ar")
    for label in LIST_LABELS:
        for name in (f"dico-mono-{label}.norm", f"dico-bi-ar-fr.{label}.norm"):
            with (folder / name).open(encoding="utf-8", errors="replace") as f:
                for line in f:
                    arabic = line.split("\t", 1)[0].strip().lstrip("\ufeff")
                    if arabic and not arabic.startswith("="):
                        yield to_arabic(arabic), label


def world_cities(folder: Path) -> Iterator[Name]:
    """Countries and cities, both LOC."""
    with (folder / "world-cities.csv").open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            yield row.get("CountryNameAr") or "", "LOC"
            yield row.get("CityNameAr") or "", "LOC"


def arwikicats(folder: Path) -> Iterator[Name]:
    """Wikipedia labels: cities, places and regions (LOC), people (PERS), clubs (ORG), and the
    country of each nationality (LOC; the adjectives themselves are O in ANERCorp)."""
    def values(name: str) -> List[str]:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
        out: List[str] = []
        for value in data.values():
            out.extend(value.values() if isinstance(value, dict) else [value])
        return [v for v in out if isinstance(v, str)]

    for name, label in (("cities_full.json", "LOC"), ("P17_2_final_ll.json", "LOC"), ("regions.json", "LOC"),
                        ("peoples.json", "PERS"), ("Clubs_key.json", "ORG")):
        yield from ((v, label) for v in values(name))
    nationalities = json.loads((folder / "nationalities_data.json").read_text(encoding="utf-8"))
    yield from ((v["ar"], "LOC") for v in nationalities.values() if isinstance(v, dict) and v.get("ar"))


def arabic_names(folder: Path) -> Iterator[Name]:
    """First, last and full names in Arabic script (PERS); the transliterated lists are skipped."""
    for path in sorted(folder.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            yield line, "PERS"


SOURCES: Dict[str, Callable[[Path], Iterator[Name]]] = {
    "NERAr": nerar, "world-cities": world_cities, "ArWikiCats": arwikicats, "arabic-names": arabic_names}


def build_gazetteer(shared: Path | None, lists: List[Path], labels=LIST_LABELS) -> Tuple[Gazetteer, Dict[str, int]]:
    """The built-in lists under ``shared`` (``../shared/data/gazetteers``) and the user's ``lists``
    (:func:`~spacy_aner.core.gazetteer.read_name_list`) as one gazetteer; with names kept per source."""
    gazetteer = Gazetteer(list(labels))
    kept: Dict[str, int] = {}
    sources = [(name, read(Path(shared) / name)) for name, read in SOURCES.items()] if shared else []
    sources += [(str(path), iter(read_name_list(path))) for path in lists]
    for source, names in sources:
        kept[source] = 0
        for text, label in names:
            text = clean_name(text, label) if shared and source in SOURCES else text
            if text and gazetteer.add(text, label):
                kept[source] += 1
    return gazetteer, kept
