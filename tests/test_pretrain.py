"""Language-model pretraining of the tagger's lower layers (`spacy-aner pretrain`, `train --init-from`)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from spacy_aner.cli import app
from spacy_aner.model import ModelConfig, Tagger, Vocabulary, build_network
from spacy_aner.pretrain import (
    LM_META,
    LM_WEIGHTS,
    NO_TARGET,
    OTHER_WORD,
    initialise_from_lm,
    neighbour_targets,
    output_classes,
    pretrain,
)

from conftest import TINY_SENTENCES  # tests/ is on sys.path under pytest

SMALL = dict(lstm_units=8, lstm_layers=2, char_filters=8, char_dim=8, window=32, context=4)
NEWS = [text.split() for text, _ in TINY_SENTENCES] * 3


def test_output_classes_rank_words_by_frequency():
    ids = [np.array([2, 3, 3, 1, 0]), np.array([3, 4, 2])]
    classes = output_classes(ids, n_words=6, n_out=2)
    assert classes[0] == NO_TARGET and classes[1] == OTHER_WORD  # padding; <unk> is never its own class
    assert classes[3] == 2 and classes[2] == 3  # 3 is the most frequent, then 2
    assert classes[4] == classes[5] == OTHER_WORD  # beyond n_out, and never seen


def test_neighbour_targets_stop_at_sentence_edges_and_padding():
    classes = np.array([0, 1, 2, 3, 4], dtype="int32")
    words = np.array([[2, 3, 4, 0], [4, 2, 0, 0]], dtype="int32")
    nxt, prev = neighbour_targets(words, classes)
    assert nxt.tolist() == [[3, 4, 0, 0], [2, 0, 0, 0]]
    assert prev.tolist() == [[0, 2, 3, 0], [0, 4, 0, 0]]


@pytest.fixture(scope="module")
def lm_dir(tiny_conll_file, tiny_vectors_kv, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm")
    pretrain(tiny_conll_file, NEWS, out, vectors=tiny_vectors_kv, config=ModelConfig(**SMALL), n_out=5,
             epochs=2, batch_size=4, verbose=0, command="test")
    return out


def test_pretrain_writes_weights_and_a_record(lm_dir, tiny_vectors_kv):
    meta = json.loads((lm_dir / LM_META).read_text(encoding="utf-8"))
    assert (lm_dir / LM_WEIGHTS).is_file()
    assert meta["sentences"] == len(NEWS) and meta["words"] == sum(map(len, NEWS))
    assert meta["sizes"]["lstm_units"] == 8 and meta["sizes"]["word_dim"] == 8 and meta["output_classes"] == 7
    assert len(meta["loss"]) == 2 and all(np.isfinite(meta["loss"]))
    assert meta["vectors"]["file"] == str(tiny_vectors_kv) and len(meta["vectors"]["sha256"]) == 64


def test_initialise_copies_lower_layers_and_maps_chars_by_character(lm_dir, tiny_vectors_kv):
    from spacy_aner.corpus import sha256_file
    from spacy_aner.pretrain import build_lm_network

    meta = json.loads((lm_dir / LM_META).read_text(encoding="utf-8"))
    config = ModelConfig(**SMALL, word_dim=8)
    lm = build_lm_network(config, meta["n_words"], len(meta["chars"]), meta["output_classes"])
    lm.load_weights(lm_dir / LM_WEIGHTS)
    # A tagger vocabulary whose characters come in another order, one of them unknown to the LM.
    chars = ["<pad>", "<unk>", "ß"] + list(reversed(meta["chars"][2:]))
    vocab = Vocabulary(["<pad>", "<unk>", "محمد"], chars, config.max_word_chars, clitic_backoff=True)
    network = build_network(config, len(vocab.words), len(vocab.chars))
    before = network.get_layer("char_embedding").get_weights()[0].copy()
    record = initialise_from_lm(network, vocab, config, lm_dir, sha256_file(tiny_vectors_kv))
    after = network.get_layer("char_embedding").get_weights()[0]
    lm_chars = lm.get_layer("char_embedding").get_weights()[0]
    for i, c in enumerate(chars):
        if c in meta["chars"]:
            np.testing.assert_array_equal(after[i], lm_chars[meta["chars"].index(c)])
    np.testing.assert_array_equal(after[2], before[2])  # "ß": not in the LM, keeps its initialisation
    assert record["chars_matched"] == len(chars) - 1 and record["chars"] == len(chars)
    for name in ("char_cnn", "bilstm"):
        for got, want in zip(network.get_layer(name).get_weights(), lm.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)


def test_initialise_refuses_other_sizes_or_vectors(lm_dir, tiny_vectors_kv):
    from spacy_aner.corpus import sha256_file

    vocab = Vocabulary(["<pad>", "<unk>"], ["<pad>", "<unk>"], 20)
    other = ModelConfig(**{**SMALL, "lstm_units": 16}, word_dim=8)
    with pytest.raises(ValueError, match="other sizes"):
        initialise_from_lm(build_network(other, 2, 2), vocab, other, lm_dir, sha256_file(tiny_vectors_kv))
    same = ModelConfig(**SMALL, word_dim=8)
    with pytest.raises(ValueError, match="other word vectors"):
        initialise_from_lm(build_network(same, 2, 2), vocab, same, lm_dir, "0" * 64)
    with pytest.raises(ValueError, match="not a pretrained language model"):
        initialise_from_lm(build_network(same, 2, 2), vocab, same, lm_dir.parent, None)


def test_cli_pretrain_then_train_init_from(tiny_conll_file, tiny_vectors_kv, tmp_path):
    news = tmp_path / "news.txt"
    news.write_text("\n".join(text + " ." for text, _ in TINY_SENTENCES) + "\n", encoding="utf-8")
    runner = CliRunner()
    lm = tmp_path / "lm"
    result = runner.invoke(app, ["pretrain", str(tiny_conll_file), "--vectors", str(tiny_vectors_kv), "--text", str(news),
                                 "--rate", "1", "-n", "100", "--output-words", "6", "--batch-size", "4", "-o", str(lm)])
    # the CLI uses the default sizes; the tagger below must use them too
    assert result.exit_code == 0, result.output
    assert "language model on 7 sentences (45 words)" in result.output  # the 4-word sentence is under min_words
    model = tmp_path / "model"
    result = runner.invoke(app, ["train", str(tiny_conll_file), "--vectors", str(tiny_vectors_kv), "--init-from", str(lm),
                                 "--epochs", "1", "--dev-fraction", "0.25", "-o", str(model)])
    assert result.exit_code == 0, result.output
    meta = json.loads((model / "meta.json").read_text(encoding="utf-8"))
    assert meta["init_from"]["dir"] == str(lm) and meta["init_from"]["chars_matched"] > 0
    assert f"init_from={lm}" in meta["command"]  # in-process: the parameters, not argv
    assert Tagger.load(model).predict([["محمد", "في", "باريس"]])[0]  # a working tagger


def test_cli_pretrain_and_init_from_errors(tiny_conll_file, tiny_vectors_kv, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["pretrain", str(tiny_conll_file), "--vectors", str(tiny_vectors_kv), "-o", str(tmp_path / "lm")])
    assert result.exit_code != 0 and "--saudinewsnet" in result.output
    result = runner.invoke(app, ["train", str(tiny_conll_file), "--init-from", str(tmp_path / "missing"), "-o", str(tmp_path / "m")])
    assert result.exit_code != 0 and "language model directory not found" in result.output


def test_init_from_refuses_several_char_cnns(lm_dir, tiny_conll_file, tiny_vectors_kv, tmp_path):
    from spacy_aner.model import ModelConfig
    from spacy_aner.training import train

    with pytest.raises(ValueError, match="--char-kernels"):
        train(tiny_conll_file, tmp_path / "m", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1, verbose=0,
              init_from=lm_dir, config=ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4,
                                                   char_kernels=[2, 3]))
