"""User gazetteers at inference: the tiny model that reads name lists, through the component,
spacy.load, the annotate command and model files."""
import json
import shutil

import numpy as np
import pytest
import spacy
from typer.testing import CliRunner

import spacy_aner
from spacy_aner.annotate import load_pipeline
from spacy_aner.cli import app
from spacy_aner.core.config import GAZETTEER_FILE, ModelLoadError
from spacy_aner.core.gazetteer import USER_NAMES_FILE, GazetteerError
from spacy_aner.core.tagger import Tagger

SENTENCE = "زار سعيد الزهراني مدينة تبوك"
WORDS = SENTENCE.split()


def ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


@pytest.fixture
def clients(tmp_path):
    path = tmp_path / "clients.tsv"
    path.write_text("سعيد الزهراني\tPERS\nتبوك\tLOC\n", encoding="utf-8")
    return path


def test_the_model_records_and_reads_its_lists(gazetteer_model_dir):
    tagger = Tagger.load(gazetteer_model_dir)
    assert tagger.config.gazetteer_labels == ["PERS", "LOC", "ORG"]
    assert tagger.gazetteer.matches("قال حسني مبارك في دمشق".split()) == [(1, 3, "PERS"), (4, 5, "LOC")]
    assert json.loads((gazetteer_model_dir / "meta.json").read_text())["gazetteer"]["names"]["LOC"] == 3


def test_the_graph_gives_the_keras_network_s_scores(gazetteer_model_dir):
    from spacy_aner.training.export import keras_network
    from spacy_aner.training.network import KerasScorer

    graph = Tagger.load(gazetteer_model_dir)
    keras = Tagger(graph.config, graph.vocab, KerasScorer(keras_network(gazetteer_model_dir)), graph.vectors,
                   gazetteer=graph.gazetteer)
    seqs = ["قال حسني مبارك في دمشق".split(), ["الرباط"], WORDS]
    np.testing.assert_allclose(graph.unary_scores(seqs, 8), keras.unary_scores(seqs, 8), rtol=1e-4, atol=1e-4)


def test_user_names_reach_the_network(gazetteer_model_dir, clients):
    plain = spacy_aner.load(gazetteer_model_dir).get_pipe("aner_lstm").tagger
    with_names = spacy_aner.load(gazetteer_model_dir, gazetteers=[str(clients)]).get_pipe("aner_lstm").tagger
    assert plain.gazetteer.matches(WORDS) == []
    assert with_names.gazetteer.matches(WORDS) == [(1, 3, "PERS"), (4, 5, "LOC")]
    feeds = with_names.feeds(*with_names.rows([WORDS]), 8, with_names.name_features([WORDS]))
    assert feeds["gazetteer"][0, :5, :4].tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0],
                                                      [0, 0, 1, 0]]
    assert not np.allclose(plain.unary_scores([WORDS], 8), with_names.unary_scores([WORDS], 8))
    other = ["قال", "حسني", "مبارك"]  # no user name in it: the same scores
    np.testing.assert_array_equal(plain.unary_scores([other], 8), with_names.unary_scores([other], 8))


def test_user_names_are_saved_with_the_pipeline(gazetteer_model_dir, clients, tmp_path):
    nlp = spacy_aner.load(gazetteer_model_dir, gazetteers=[str(clients)])
    before = [(e.text, e.label_) for e in nlp(SENTENCE).ents], nlp(SENTENCE).spans["aner_lstm"].attrs["scores"]
    nlp.to_disk(tmp_path / "saved")
    assert (tmp_path / "saved" / "aner_lstm" / USER_NAMES_FILE).is_file()
    clients.unlink()  # the saved pipeline no longer needs the list
    again = spacy.load(tmp_path / "saved")
    doc = again(SENTENCE)
    assert ([(e.text, e.label_) for e in doc.ents], doc.spans["aner_lstm"].attrs["scores"]) == before
    assert again.get_pipe("aner_lstm").tagger.gazetteer.matches(WORDS) == [(1, 3, "PERS"), (4, 5, "LOC")]
    copy = spacy_aner.load(gazetteer_model_dir, gazetteers=[str(clients)])  # the same option, the file gone
    copy.get_pipe("aner_lstm").from_bytes(again.get_pipe("aner_lstm").to_bytes())
    assert copy.get_pipe("aner_lstm").tagger.gazetteer.matches(WORDS) == [(1, 3, "PERS"), (4, 5, "LOC")]
    bare = spacy_aner.load(gazetteer_model_dir)  # configured without lists: its config decides
    bare.get_pipe("aner_lstm").from_bytes(again.get_pipe("aner_lstm").to_bytes())
    assert bare.get_pipe("aner_lstm").tagger.gazetteer.matches(WORDS) == []


def test_bad_user_lists_fail_clearly(gazetteer_model_dir, tiny_model_dir, clients, tmp_path):
    with pytest.raises(GazetteerError, match="this model reads no gazetteer"):
        spacy_aner.load(tiny_model_dir, gazetteers=[str(clients)])("نص")
    with pytest.raises(GazetteerError, match="name list not found"):
        spacy_aner.load(gazetteer_model_dir, gazetteers=[str(tmp_path / "gone.tsv")])("نص")
    bad = tmp_path / "bad.tsv"
    bad.write_text("سعيد\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match="bad.tsv:1"):
        spacy_aner.load(gazetteer_model_dir, gazetteers=[str(bad)])("نص")
    with pytest.raises(GazetteerError, match="bad.tsv:1"):  # never saved without the list's names
        spacy_aner.load(gazetteer_model_dir, gazetteers=[str(bad)]).to_disk(tmp_path / "not_saved")
    with pytest.raises(GazetteerError, match="one path"):
        load_pipeline(gazetteer_model_dir, gazetteers=str(clients))
    misc = tmp_path / "misc.tsv"
    misc.write_text("العربية\tMISC\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match="MISC"):
        spacy_aner.load(gazetteer_model_dir, gazetteers=[str(misc)])("نص")


def test_a_saved_pipeline_reads_no_list_file_again(gazetteer_model_dir, clients, tmp_path):
    nlp = spacy_aner.load(gazetteer_model_dir, gazetteers=[str(clients)])
    nlp.to_disk(tmp_path / "saved")
    clients.write_text("تبوك\tLOC\n", encoding="utf-8")  # a name deleted from the list after saving
    again = spacy.load(tmp_path / "saved")
    assert again.get_pipe("aner_lstm").tagger.gazetteer.matches(WORDS) == [(1, 3, "PERS"), (4, 5, "LOC")]
    again.to_disk(tmp_path / "twice")
    names = (tmp_path / "twice" / "aner_lstm" / USER_NAMES_FILE).read_text(encoding="utf-8").splitlines()
    assert len(names) == 2  # saved again: the same names, once each
    clients.write_bytes(b"\xff\xfe")  # a list no longer readable where the pipeline loads
    assert ents(spacy.load(tmp_path / "twice")(SENTENCE)) == ents(again(SENTENCE))


def test_a_gazetteers_override_at_load_replaces_the_saved_names(gazetteer_model_dir, clients, tmp_path):
    """``spacy.load(path, config=...)`` naming other lists than those saved uses them (and says so in
    ``nlp.config``); naming none drops the saved names; the pipeline saved again agrees with its config."""
    spacy_aner.load(gazetteer_model_dir, gazetteers=[str(clients)]).to_disk(tmp_path / "saved")
    other = tmp_path / "other.tsv"
    other.write_text("تبوك\tLOC\n", encoding="utf-8")

    def with_lists(lists):
        return spacy.load(tmp_path / "saved", config={"components": {"aner_lstm": {"gazetteers": lists}}})

    nlp = with_lists([str(other)])
    assert nlp.get_pipe("aner_lstm").tagger.gazetteer.matches(WORDS) == [(4, 5, "LOC")]
    assert nlp.config["components"]["aner_lstm"]["gazetteers"] == [str(other)]
    none = with_lists([])
    assert none.get_pipe("aner_lstm").tagger.gazetteer.matches(WORDS) == []
    none.to_disk(tmp_path / "none")
    assert not (tmp_path / "none" / "aner_lstm" / USER_NAMES_FILE).exists()
    assert spacy.load(tmp_path / "none").get_pipe("aner_lstm").tagger.gazetteer.matches(WORDS) == []
    with pytest.raises(GazetteerError, match="name list not found"):
        with_lists([str(tmp_path / "gone.tsv")])("نص")
    clients.unlink()  # the same lists as saved: the saved names, the file not needed
    assert with_lists([str(clients)]).get_pipe("aner_lstm").tagger.gazetteer.matches(WORDS) == [(1, 3, "PERS"),
                                                                                              (4, 5, "LOC")]


def test_a_model_copy_without_its_gazetteer_is_not_saved_as_complete(gazetteer_model_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(gazetteer_model_dir, copy)
    nlp = spacy_aner.load(copy)
    nlp(SENTENCE)
    (copy / GAZETTEER_FILE).unlink()  # the source loses a file after loading: written from memory
    nlp.to_disk(tmp_path / "saved")
    assert ents(spacy.load(tmp_path / "saved")(SENTENCE)) == ents(nlp(SENTENCE))


def test_a_model_written_from_memory_keeps_user_names_apart(gazetteer_model_dir, clients, tmp_path):
    tagger = spacy_aner.load(gazetteer_model_dir, gazetteers=[str(clients)]).get_pipe("aner_lstm").tagger
    tagger.write(tmp_path / "model")
    assert Tagger.load(tmp_path / "model").gazetteer.matches(WORDS) == []


def test_a_broken_or_missing_gazetteer_file_names_it(gazetteer_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(gazetteer_model_dir, broken)
    (broken / GAZETTEER_FILE).write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(ModelLoadError, match=GAZETTEER_FILE.replace(".", r"\.")):
        Tagger.load(broken)
    (broken / GAZETTEER_FILE).unlink()
    with pytest.raises(ModelLoadError, match="missing model file: .*" + GAZETTEER_FILE.replace(".", r"\.")):
        Tagger.load(broken)


def test_annotate_with_a_gazetteer(gazetteer_model_dir, tiny_model_dir, clients, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text(SENTENCE + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["annotate", str(docs), "-o", str(out), "--model", str(gazetteer_model_dir),
                                      "--gazetteer", str(clients), "-q"])
    assert result.exit_code == 0, result.output
    expected = spacy_aner.load(gazetteer_model_dir, gazetteers=[str(clients)])(SENTENCE)
    got = json.loads(out.read_text(encoding="utf-8"))["entities"]
    assert [(e["start"], e["end"], e["label"]) for e in got] == [
        (e.start_char, e.end_char, e.label_) for e in expected.ents]
    result = CliRunner().invoke(app, ["annotate", str(docs), "-o", str(out), "--model", str(tiny_model_dir),
                                      "--gazetteer", str(clients), "-q"])
    assert result.exit_code == 1 and "reads no gazetteer" in result.output


def test_an_ensemble_keeps_its_members_gazetteer(gazetteer_model_dir, model_copy, tmp_path):
    from spacy_aner.training.ensemble import ensemble

    ensemble([gazetteer_model_dir, model_copy(gazetteer_model_dir)], tmp_path / "ens")
    merged, member = Tagger.load(tmp_path / "ens"), Tagger.load(gazetteer_model_dir)
    assert merged.config.members == 2 and merged.gazetteer.names == member.gazetteer.names
    seqs = ["قال حسني مبارك في دمشق".split()]
    np.testing.assert_allclose(merged.unary_scores(seqs, 8), member.unary_scores(seqs, 8), rtol=1e-5, atol=1e-5)
