"""Render entities with displaCy to an HTML page that shows Arabic right to left.

    python examples/displacy_rtl.py OUT.html [--model MODEL_DIR]
"""
import argparse
from pathlib import Path

from spacy import displacy

import spacy_aner
from spacy_aner.pipeline.display import DISPLACY_OPTIONS

TEXTS = [
    "محمد يعيش في الرباط",
    "باريس هي عاصمة فرنسا",
    "أعلن اتحاد صناعة السيارات في ألمانيا أن شركات صناعة السيارات تواجه عاما صعبا",
]


def render(nlp, texts):
    docs = list(nlp.pipe(texts))
    # The Arabic Doc makes displaCy lay the text out right to left; the options give
    # ANERCorp's labels their colours and the right-to-left label template.
    return displacy.render(docs, style="ent", page=True, options=DISPLACY_OPTIONS)


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
