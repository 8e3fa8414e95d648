"""spacy_aner.core.storage: model directories on disk, their checks, and the word-vector table."""
from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from aner_support import edit_json, random_words, read_json

from spacy_aner.core.config import (
    CONFIG_FILE,
    FORMAT_VERSION,
    GRAPH_FILE,
    META_FILE,
    VECTOR_SCALE_FILE,
    VECTORS_FILE,
    VOCAB_FILE,
    ModelConfig,
    ModelLoadError,
)
from spacy_aner.core.graph import read_weights
from spacy_aner.core.normalize import NORMALIZATION_VERSION
from spacy_aner.core.storage import first_members_meta, keep_first_members_log
from spacy_aner.core.tagger import Tagger
from spacy_aner.core.tags import TAGS
from spacy_aner.training.export import save_model


def stored_dtypes(model_dir: Path) -> set:
    """NumPy dtypes of the graph's stored weights (``LAYER/INDEX`` initializers)."""
    import onnx
    from onnx import helper

    graph = onnx.load(str(model_dir / GRAPH_FILE)).graph
    return {np.dtype(helper.tensor_dtype_to_np_dtype(i.data_type)) for i in graph.initializer
            if i.name.rpartition("/")[2].isdigit()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        assert len(a[name]) == len(b[name])
        for x, y in zip(a[name], b[name]):
            np.testing.assert_array_equal(x, y)


def test_model_dir_holds_plain_files(tiny_model_dir):
    import onnx

    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {CONFIG_FILE, VOCAB_FILE, GRAPH_FILE, VECTORS_FILE, META_FILE, "training.json"} <= names
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".npz", ".keras", ".joblib", ".h5"))]
    for p in tiny_model_dir.iterdir():
        assert not p.read_bytes()[:8].startswith(b"\x80"), f"{p.name} looks like a pickle"
        if p.suffix == ".json":
            read_json(p)
    onnx.checker.check_model(onnx.load(str(tiny_model_dir / GRAPH_FILE)))
    assert (tiny_model_dir / VECTORS_FILE).read_bytes()[:6] == b"\x93NUMPY"
    table = np.load(tiny_model_dir / VECTORS_FILE, allow_pickle=False)  # a plain array, nothing pickled
    assert table.dtype == np.float16
    config = read_json(tiny_model_dir / CONFIG_FILE)
    assert config["format_version"] == FORMAT_VERSION and config["normalization_version"] == NORMALIZATION_VERSION
    assert config["tags"] == list(TAGS) and config["char_kernels"] == [2, 3]
    vocab = read_json(tiny_model_dir / VOCAB_FILE)
    words = vocab["words"].split("\n")  # one string, a word per line: no object per word at load
    assert words[:2] == ["<pad>", "<unk>"] and "محمد" in words and words[-1] == ""
    assert words[2:-1] == sorted(words[2:-1])  # sorted, so a word is found by binary search
    assert table.shape == (len(words) - 1, config["word_dim"])
    # The graph stores the trained layers (the word table is the .npy file), nothing else.
    assert set(read_weights(tiny_model_dir)) == {"char_embedding", "char_cnn_2", "char_cnn_3", "bilstm", "scores",
                                                 "tag_scores"}


def test_save_load_round_trip(scrambled_tagger, scrambled_model_dir, tmp_path):
    scrambled_tagger.write(tmp_path / "copy")
    loaded = Tagger.load(tmp_path / "copy")
    assert loaded.config == scrambled_tagger.config and loaded.meta == scrambled_tagger.meta
    assert loaded.vocab.words == scrambled_tagger.vocab.words and loaded.vocab.chars == scrambled_tagger.vocab.chars
    assert loaded.scorer.graph == scrambled_tagger.scorer.graph
    assert_same_weights(read_weights(tmp_path / "copy"), read_weights(scrambled_model_dir))
    np.testing.assert_array_equal(loaded.vectors.table, scrambled_tagger.vectors.table)
    rng = random.Random(6)
    seqs = [random_words(rng, n) for n in (1, 4, 31, 32, 33, 100, 700)]
    assert loaded.predict(seqs) == scrambled_tagger.predict(seqs)
    assert {p.name for p in (tmp_path / "copy").iterdir()} == {CONFIG_FILE, VOCAB_FILE, GRAPH_FILE, VECTORS_FILE,
                                                                META_FILE}


def test_a_loaded_model_is_written_from_memory(scrambled_model_dir, model_copy, tmp_path):
    """The graph is kept in memory: a model whose files are gone can still be written (and predicts)."""
    import shutil

    model = model_copy(scrambled_model_dir)
    tagger = Tagger.load(model)
    seqs = [random_words(random.Random(2), 20)]
    before = tagger.predict(seqs)
    table = np.array(tagger.vectors.table)
    (model / GRAPH_FILE).unlink()
    tagger.write(tmp_path / "again")
    again = Tagger.load(tmp_path / "again")
    np.testing.assert_array_equal(again.vectors.table, table)
    assert again.predict(seqs) == before == tagger.predict(seqs)
    shutil.rmtree(model)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _replace_with_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


CORRUPTIONS = {
    "missing_config": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).unlink()),
    "config_not_json": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).write_text("{not json", encoding="utf-8")),
    "config_not_utf8": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).write_bytes(b"\xff\xfe\x00{")),
    "config_a_list": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).write_text("[1, 2]")),
    "format_version_1": (CONFIG_FILE, lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(format_version=1))),
    "format_version_999": (CONFIG_FILE, lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(format_version=999))),
    "normalization_version": (CONFIG_FILE, lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(normalization_version=NORMALIZATION_VERSION + 1))),
    "config_unknown_key": (CONFIG_FILE, lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(colour="red"))),
    "config_removed_output_field": (CONFIG_FILE, lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(output="crf"))),
    # The graph's tag scores have nine tags.
    "config_fewer_tags": ((GRAPH_FILE, CONFIG_FILE), lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(tags=["O", "B-PERS"]))),
    "missing_vocab": (VOCAB_FILE, lambda d: (d / VOCAB_FILE).unlink()),
    "vocab_without_words": (VOCAB_FILE, lambda d: edit_json(d / VOCAB_FILE, lambda v: v.pop("words"))),
    "vocab_not_json": (VOCAB_FILE, lambda d: (d / VOCAB_FILE).write_text("", encoding="utf-8")),
    "vocab_max_word_chars": (VOCAB_FILE, lambda d: edit_json(d / VOCAB_FILE, lambda v: v.update(max_word_chars=7))),
    "vocab_max_word_chars_not_int": (VOCAB_FILE, lambda d: edit_json(
        d / VOCAB_FILE, lambda v: v.update(max_word_chars="many"))),
    "meta_not_json": (META_FILE, lambda d: (d / META_FILE).write_text("{", encoding="utf-8")),
    **{f"{kind}_{name.split('.')[0]}": (name, (lambda f, n: lambda d: f(d / n))(corrupt, name))
       for name in (GRAPH_FILE, VECTORS_FILE) for kind, corrupt in {
           "missing": lambda p: p.unlink(),
           "truncated": lambda p: _truncate(p),
           "random_bytes": lambda p: p.write_bytes(np.random.default_rng(0).bytes(p.stat().st_size)),
           "empty": lambda p: p.write_bytes(b""),
           "a_directory": lambda p: _replace_with_directory(p)}.items()},
    "vectors_float32": (VECTORS_FILE, lambda d: np.save(d / VECTORS_FILE, np.load(d / VECTORS_FILE).astype("float32"))),
    "vectors_pickled_objects": (VECTORS_FILE, lambda d: np.save(d / VECTORS_FILE, np.array([{"a": 1}], dtype=object),
                                                                allow_pickle=True)),
    # The stored arrays no longer fit the vocabulary or the configuration.
    "vocab_extra_words": ((VECTORS_FILE, VOCAB_FILE), lambda d: edit_json(
        d / VOCAB_FILE, lambda v: v.update(words=v["words"] + "".join(f"word{i}\n" for i in range(7))))),
    "vocab_extra_chars": ((GRAPH_FILE, VOCAB_FILE), lambda d: edit_json(
        d / VOCAB_FILE, lambda v: v["chars"].extend(["X", "Y"]))),
    "word_dim_changed": ((VECTORS_FILE, CONFIG_FILE), lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(word_dim=50))),
    "max_word_chars_changed": ((GRAPH_FILE, CONFIG_FILE), lambda d: [edit_json(
        d / name, lambda c: c.update(max_word_chars=7)) for name in (CONFIG_FILE, VOCAB_FILE)]),
    "lstm_units_changed": ((GRAPH_FILE, CONFIG_FILE), lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(lstm_units=c["lstm_units"] + 8))),
    "char_kernels_changed": ((GRAPH_FILE, CONFIG_FILE), lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(char_kernels=[2, 4]))),
    "char_filters_changed": ((GRAPH_FILE, CONFIG_FILE), lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(char_filters=c["char_filters"] + 1))),
    "lstm_layers_changed": ((GRAPH_FILE, CONFIG_FILE), lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(lstm_layers=2))),
    "members_changed": ((GRAPH_FILE, CONFIG_FILE), lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(members=2))),
    "word_vector_bits_changed": (VECTORS_FILE, lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(word_vector_bits=8, trainable_embeddings=False))),
    # JSON that Python's parser gives up on with other errors than JSONDecodeError.
    **{f"{name.split('.')[0]}_nested_too_deeply": (name, (lambda n: lambda d: (d / n).write_text(
        "[" * 100_000 + "]" * 100_000))(name)) for name in (CONFIG_FILE, VOCAB_FILE, META_FILE)},
    "config_huge_integer": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).write_text(
        (d / CONFIG_FILE).read_text().replace('"word_dim": ', '"word_dim": ' + "9" * 5000 + ", \"x\": "))),
    "meta_not_an_object": (META_FILE, lambda d: (d / META_FILE).write_text("[1, 2]")),
    "vocab_chars_numbers": (VOCAB_FILE, lambda d: edit_json(
        d / VOCAB_FILE, lambda v: v.update(chars=list(range(len(v["chars"])))))),
    "vocab_chars_repeated": (VOCAB_FILE, lambda d: edit_json(
        d / VOCAB_FILE, lambda v: v["chars"].__setitem__(3, v["chars"][2]))),
    "vocab_chars_two_letters": (VOCAB_FILE, lambda d: edit_json(
        d / VOCAB_FILE, lambda v: v["chars"].__setitem__(3, "ab"))),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_model_dir_raises_model_load_error_naming_the_file(case, tiny_model_dir, model_copy):
    names, corrupt = CORRUPTIONS[case]
    names = (names,) if isinstance(names, str) else names
    model = model_copy(tiny_model_dir)
    corrupt(model)
    with pytest.raises(ModelLoadError) as info:
        Tagger.load(model)
    message = str(info.value)
    assert any(name in message for name in names), message
    assert str(model) in message, message


def test_a_graph_of_another_model_is_refused(tiny_model_dir, vector_model_dir, model_copy):
    """Each file is valid on its own; together they are not one model (ONNX Runtime alone would
    only fail on the first call)."""
    model = model_copy(tiny_model_dir)
    (model / GRAPH_FILE).write_bytes((vector_model_dir / GRAPH_FILE).read_bytes())
    with pytest.raises(ModelLoadError, match=rf"{model / GRAPH_FILE}: .*{CONFIG_FILE}"):
        Tagger.load(model)


def test_missing_model_dir(tmp_path):
    for path in (tmp_path / "nothing", str(tmp_path / "nothing")):
        with pytest.raises(ModelLoadError, match="model directory not found: .*nothing"):
            Tagger.load(path)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ModelLoadError, match="a_file"):
        Tagger.load(tmp_path / "a_file")


@pytest.mark.parametrize("key, value", [("lstm_units", 0), ("dropout", 2.0), ("word_dim", "abc"), ("char_kernel", 3),
                                        ("lstm_layers", "two"), ("tags", []), ("window", 4), ("char_kernels", [3, 3]),
                                        ("word_vector_bits", 4)])
def test_invalid_hyperparameter_in_config_names_config_json(key, value, tiny_model_dir, model_copy):
    model = model_copy(tiny_model_dir)
    edit_json(model / CONFIG_FILE, lambda c: c.update({key: value}))
    with pytest.raises(ModelLoadError, match=rf"{model / CONFIG_FILE}"):
        Tagger.load(model)


def test_a_model_without_meta_loads_with_empty_meta(tiny_model_dir, model_copy):
    model = model_copy(tiny_model_dir)
    (model / META_FILE).unlink()
    assert Tagger.load(model).meta == {}


# --------------------------------------------------------------------------- the word-vector table


def test_frozen_word_vectors_are_stored_in_half_precision(vector_model_dir, tmp_path):
    tagger = Tagger.load(vector_model_dir)
    assert not tagger.config.trainable_embeddings and tagger.config.word_vector_bits == 16
    table = tagger.vectors.table
    assert isinstance(table, np.memmap) and table.dtype == np.float16 and tagger.vectors.scale is None
    assert table.shape == (len(tagger.vocab.words), tagger.config.word_dim) == (len(tagger.vocab.words), 8)
    assert not (vector_model_dir / VECTOR_SCALE_FILE).exists()
    assert stored_dtypes(vector_model_dir) == {np.dtype(np.float16)}  # the graph's weights too
    rows = tagger.vectors.rows(np.array([0, 2, 3]))
    assert rows.dtype == np.float32 and not rows[0].any()  # the padding row
    np.testing.assert_array_equal(rows[1:], table[[2, 3]].astype(np.float32))
    # Saving the loaded model again is lossless, and its scores survive the round trip.
    seqs = [random_words(random.Random(3), 9)]
    before = tagger.unary_scores(seqs, 16)
    tagger.write(tmp_path / "again")
    again = Tagger.load(tmp_path / "again")
    np.testing.assert_array_equal(again.vectors.table, table)
    assert_same_weights(read_weights(tmp_path / "again"), read_weights(vector_model_dir))
    np.testing.assert_allclose(again.unary_scores(seqs, 16), before, rtol=1e-5, atol=1e-5)


def test_learnt_word_vectors_are_stored_in_half_precision_too(tiny_model_dir):
    tagger = Tagger.load(tiny_model_dir)
    assert tagger.config.trainable_embeddings and tagger.config.word_vector_bits == 16
    assert tagger.vectors.table.dtype == np.float16 and tagger.vectors.scale is None
    assert stored_dtypes(tiny_model_dir) == {np.dtype(np.float16)}


@pytest.fixture(scope="module")
def eight_bit_model(vector_model_dir, tmp_path_factory):
    """The vector model saved with an 8-bit word table (no training: the same weights)."""
    tagger = Tagger.load(vector_model_dir)
    config = ModelConfig(**{**asdict(tagger.config), "word_vector_bits": 8})
    out = tmp_path_factory.mktemp("eight_bit") / "model"
    table = tagger.vectors.as_float32()
    save_model(out, config, tagger.vocab, read_weights(vector_model_dir), table, tagger.meta)
    return out


def test_word_vectors_in_8_bits_round_trip(vector_model_dir, eight_bit_model, tmp_path):
    half, quarter = Tagger.load(vector_model_dir), Tagger.load(eight_bit_model)
    assert read_json(eight_bit_model / CONFIG_FILE)["word_vector_bits"] == 8 and quarter.config.word_vector_bits == 8
    assert quarter.vectors.table.dtype == np.int8 and quarter.vectors.table.shape == half.vectors.table.shape
    scale = np.load(eight_bit_model / VECTOR_SCALE_FILE, allow_pickle=False)
    assert scale.shape == (len(quarter.vocab.words),) and scale.dtype == np.float32
    assert_same_weights(read_weights(eight_bit_model), read_weights(vector_model_dir))  # only the table differs
    # Within half a step of each row's scale of the 16-bit table; not the same numbers.
    everything = np.arange(len(half.vocab.words))
    a, b = half.vectors.rows(everything), quarter.vectors.rows(everything)
    step = np.abs(a).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(a - b) <= step * 0.5 + 1e-3) and not np.array_equal(a, b)
    # Saving again keeps the same integers and scales.
    quarter.write(tmp_path / "again")
    again = Tagger.load(tmp_path / "again")
    np.testing.assert_array_equal(again.vectors.table, quarter.vectors.table)
    np.testing.assert_array_equal(again.vectors.scale, quarter.vectors.scale)
    np.testing.assert_array_equal(again.vectors.rows(everything), b)
    seqs = [random_words(random.Random(5), 11)]
    assert len(quarter.predict(seqs)[0]) == 11
    # Written as 16 bits again, the scale file goes.
    Tagger(half.config, half.vocab, half.scorer, half.vectors, half.meta).write(tmp_path / "again")
    assert not (tmp_path / "again" / VECTOR_SCALE_FILE).exists()
    assert Tagger.load(tmp_path / "again").vectors.scale is None


def test_8_bit_vectors_without_their_scales_are_refused(eight_bit_model, model_copy):
    model = model_copy(eight_bit_model)
    (model / VECTOR_SCALE_FILE).unlink()
    with pytest.raises(ModelLoadError, match=f"missing model file: {model / VECTOR_SCALE_FILE}"):
        Tagger.load(model)


def test_8_bit_vectors_with_too_few_scales_are_refused(eight_bit_model, model_copy):
    model = model_copy(eight_bit_model)
    np.save(model / VECTOR_SCALE_FILE, np.load(model / VECTOR_SCALE_FILE)[:-1])
    with pytest.raises(ModelLoadError, match=f"{model / VECTOR_SCALE_FILE}: float32 scales of shape"):
        Tagger.load(model)
    (model / VECTOR_SCALE_FILE).write_bytes(b"")
    with pytest.raises(ModelLoadError, match=f"{model / VECTOR_SCALE_FILE}"):
        Tagger.load(model)


@pytest.mark.parametrize("dtype", ["U1", "complex64", "int8", "M8[s]"])
def test_8_bit_vectors_with_scales_that_are_not_floats_are_refused(eight_bit_model, model_copy, dtype):
    model = model_copy(eight_bit_model)
    np.save(model / VECTOR_SCALE_FILE, np.load(model / VECTOR_SCALE_FILE).astype(dtype))
    with pytest.raises(ModelLoadError, match=f"{model / VECTOR_SCALE_FILE}: .*expected floats"):
        Tagger.load(model)


def test_meta_is_written_as_utf8_json(tiny_model_dir, tmp_path):
    tagger = Tagger.load(tiny_model_dir)
    tagger.meta = {"name": "aner_lstm", "note": "محمد"}
    tagger.write(tmp_path / "m")
    assert Tagger.load(tmp_path / "m").meta == {"name": "aner_lstm", "note": "محمد"}
    assert json.loads((tmp_path / "m" / META_FILE).read_text(encoding="utf-8"))["note"] == "محمد"
    assert "محمد" in (tmp_path / "m" / META_FILE).read_text(encoding="utf-8")  # not \u-escaped


def test_the_record_of_an_ensembles_first_members(tmp_path):
    meta = {"name": "aner_lstm", "members": [{"seed": 13}, {"seed": 14}, {"seed": 15}], "test_scores": {"t": 74.0},
            "dev_scores": {"d": 80.0}}
    two = first_members_meta(meta, 2, 3)
    assert two == {"name": "aner_lstm", "members": [{"seed": 13}, {"seed": 14}],
                   "ensemble": {"members": 3, "dev_scores": {"d": 80.0}, "test_scores": {"t": 74.0}}}
    assert first_members_meta(two, 1, 2) == {**two, "members": [{"seed": 13}]}  # the original ensemble's record stays
    assert first_members_meta({"name": "x"}, 2, 3) == {
        "name": "x", "ensemble": {"members": 3, "dev_scores": None, "test_scores": None}}
    keep_first_members_log(tmp_path, 1)  # no log: nothing to cut, nothing written
    assert not (tmp_path / "training.json").exists()
    (tmp_path / "training.json").write_text(json.dumps({"members": [[{"epoch": 1}], [{"epoch": 2}]]}), encoding="utf-8")
    keep_first_members_log(tmp_path, 1)
    assert read_json(tmp_path / "training.json") == {"members": [[{"epoch": 1}]]}
    (tmp_path / "training.json").write_text(json.dumps({"epochs": [{"epoch": 1}]}), encoding="utf-8")
    keep_first_members_log(tmp_path, 1)  # a single model's log is left as it is
    assert read_json(tmp_path / "training.json") == {"epochs": [{"epoch": 1}]}
