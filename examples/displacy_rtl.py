"""Render entities with displaCy to an HTML page that shows Arabic right to left.

    python examples/displacy_rtl.py OUT.html [--model MODEL_DIR]
"""
import argparse
from pathlib import Path

from spacy import displacy

import spacy_aner

TEXTS = [
    "محمد يعيش في الرباط",
    "باريس هي عاصمة فرنسا",
    "أعلن اتحاد صناعة السيارات في ألمانيا أن شركات صناعة السيارات تواجه عاما صعبا",
]


# displaCy colours spaCy's own labels (PERSON, GPE...); ANERCorp's need their own.
COLORS = {"PERS": "#aa9cfc", "LOC": "#feca74", "ORG": "#7aecec", "MISC": "#e4e7d2"}


def render(nlp, texts):
    docs = list(nlp.pipe(texts))
    # direction=rtl lays the text out right to left; page=True wraps it in a full HTML page.
    options = {"direction": "rtl", "colors": COLORS}
    return displacy.render(docs, style="ent", page=True, options=options)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    args = parser.parse_args(argv)
    html = render(spacy_aner.load(args.model), TEXTS)
    # displaCy's page template is LTR: declare the language and direction on the page too.
    html = html.replace("<html", '<html dir="rtl"', 1)
    args.output.write_text(html, encoding="utf-8")
    print(f"wrote {args.output} ({len(html):,} characters)")


if __name__ == "__main__":
    main()
