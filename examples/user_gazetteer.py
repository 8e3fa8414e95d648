"""Names of your own, with no retraining: a client list the network reads as evidence.

The model reads name lists (gazetteers) beside the words. A user's list, given as the
component's ``gazetteers`` option, is added to the lists it shipped with; the network still
decides in context, so a listed name in a sentence where it is no name stays untagged.
The list is saved with the pipeline.

    python examples/user_gazetteer.py [--model MODEL_DIR] [--names FILE]
"""
import argparse
import tempfile
from pathlib import Path

import spacy_aner

#: A client list: name<TAB>LABEL per line (JSONL with "text" and "label" works too).
CLIENTS = "مؤسسة الغد المشرق\tORG\nالقمة الزرقاء\tORG\nأمل الشمري\tPERS\n"
TEXTS = ["تعاقدت الهيئة مع مؤسسة الغد المشرق",
         "وأعلنت القمة الزرقاء عن خطة جديدة",
         "قال أمل الشمري إن النتائج جيدة",
         "سماء المدينة زرقاء والقمة بيضاء"]


def entities(nlp, text):
    return [(e.text, e.label_) for e in nlp(text).ents]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument("--names", help="a name list (default: a small client list written here)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        names = args.names
        if names is None:
            names = Path(tmp) / "clients.tsv"
            names.write_text(CLIENTS, encoding="utf-8")
        plain = spacy_aner.load(args.model)
        listed = spacy_aner.load(args.model, gazetteers=[str(names)])
        for text in TEXTS:
            print(text)
            print("  without the list:", entities(plain, text))
            print("  with the list:   ", entities(listed, text))
        listed.to_disk(Path(tmp) / "pipeline")  # the names travel with the pipeline
        print("saved pipeline:", sorted(p.name for p in (Path(tmp) / "pipeline" / "aner_lstm").iterdir()))


if __name__ == "__main__":
    main()
