"""displaCy for ANERCorp's labels, right to left: from Docs or from entity records."""
from __future__ import annotations

from typing import Any, Dict, Iterable

from spacy import displacy
from spacy.displacy.templates import TPL_ENT_RTL

#: displaCy colours spaCy's own labels (PERSON, GPE...); ANERCorp's need their own.
ENTITY_COLORS = {"PERS": "#aa9cfc", "LOC": "#feca74", "ORG": "#7aecec", "MISC": "#e4e7d2"}
#: displaCy takes the direction from the Doc's language (Arabic: rtl) but picks its label
#: template before it knows it, so the right-to-left template is named here.
DISPLACY_OPTIONS = {"colors": ENTITY_COLORS, "template": TPL_ENT_RTL}
#: What a Doc of ``spacy.blank("ar")`` gives displaCy; records carry no language of their own.
ARABIC_SETTINGS = {"lang": "ar", "direction": "rtl"}


def render_records(text: str, entities: Iterable[Dict[str, Any]]) -> str:
    """displaCy's entity HTML (a fragment) for ``text`` and its ``{"start", "end", "label"}`` records.

    displaCy escapes the text, so markup in the input is shown, never run.
    """
    ents = [{"start": e["start"], "end": e["end"], "label": e["label"]} for e in entities]
    doc = {"text": text, "ents": ents, "title": None, "settings": ARABIC_SETTINGS}
    return displacy.render(doc, style="ent", manual=True, page=False, options=DISPLACY_OPTIONS)
