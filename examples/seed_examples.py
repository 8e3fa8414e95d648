"""Tag the seed sentences and print each word with its BIO tag.

    python examples/seed_examples.py [--model MODEL_DIR]
"""
import argparse

import spacy_aner

SEEDS = ["محمد يعيش في الرباط", "الشركة تطور منتجات مبتكرة", "باريس هي عاصمة فرنسا"]


def tag(nlp, text):
    doc = nlp(text)
    return [(t.text, f"{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else "O") for t in doc if not t.is_space]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    args = parser.parse_args(argv)
    nlp = spacy_aner.load(args.model)
    for text in SEEDS:
        print(text)
        print("  " + "  ".join(f"{word}/{t}" for word, t in tag(nlp, text)))
        print("  entities:", [(e.text, e.label_) for e in nlp(text).ents])


if __name__ == "__main__":
    main()
