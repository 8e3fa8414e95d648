"""Add aner_lstm to a pipeline that already has other components.

A sentencizer splits the text, an entity_ruler marks a known organisation first, and
aner_lstm (overwrite_ents=False) adds its entities around the ruler's.

    python examples/existing_pipeline.py [--model MODEL_DIR]
"""
import argparse

import spacy

TEXT = "أعلنت منظمة الصحة العالمية اليوم. وقال محمد إن الوضع في القاهرة مستقر."


def build(model=None):
    nlp = spacy.blank("ar")  # spaCy's own Arabic tokenizer: aner_lstm works with any tokenizer
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "ORG", "pattern": "منظمة الصحة العالمية"}])
    config = {"overwrite_ents": False}
    if model:
        config["model"] = model
    nlp.add_pipe("aner_lstm", config=config)
    return nlp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    args = parser.parse_args(argv)
    nlp = build(args.model)
    print("pipeline:", nlp.pipe_names)
    doc = nlp(TEXT)
    print("sentences:", len(list(doc.sents)))
    for ent in doc.ents:
        print(f"{ent.text}\t{ent.label_}\t{ent.start_char}-{ent.end_char}")


if __name__ == "__main__":
    main()
