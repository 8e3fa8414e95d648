"""The built-in gazetteer from the public name lists, and the gazetteer build command."""
import pytest
from typer.testing import CliRunner

from aner_support import GAZETTEERS_DIR, read_json
from spacy_aner.cli import app
from spacy_aner.core.gazetteer import Gazetteer
from spacy_aner.training.gazetteers import build_gazetteer, clean_name


@pytest.mark.parametrize("text,label,cleaned", [
    ("مدينة السادس من أكتوبر", "LOC", "السادس من أكتوبر"),  # the generic head stays outside
    ("شركة سوني", "ORG", "سوني"),
    ("مدينة السادس", "PERS", "مدينة السادس"),  # heads are cut for their label only
    ("ليمبورغ (بلجيكا)", "LOC", "ليمبورغ"),
    ("بوندسليغا 2", "ORG", "بوندسليغا 2"),
    ("Paris", "LOC", ""),
    ("باريس Paris", "LOC", ""),
    ("  حسني   مبارك ", "PERS", "حسني مبارك"),
    ("(ملاحظة)", "LOC", ""),
])
def test_clean_name_follows_anercorp_conventions(text, label, cleaned):
    assert clean_name(text, label) == cleaned


@pytest.fixture(scope="module")
def built():
    if not GAZETTEERS_DIR.is_dir():
        pytest.skip(f"the name lists are not here ({GAZETTEERS_DIR})")
    return build_gazetteer(GAZETTEERS_DIR, [])


def test_the_built_in_lists(built):
    gazetteer, kept = built
    assert set(kept) == {"NERAr", "world-cities", "ArWikiCats", "arabic-names"} and min(kept.values()) > 500
    counts = gazetteer.counts()
    assert counts["PERS"] > 15_000 and counts["LOC"] > 10_000 and counts["ORG"] > 2_000
    words = "زار حسني مبارك القاهرة ثم فرنسا".split()
    found = gazetteer.matches(words)
    assert (1, 3, "PERS") in found and (3, 4, "LOC") in found and (5, 6, "LOC") in found
    nationalities = gazetteer.matches(["الفرنسي", "الأمريكي"])  # adjectives are O in ANERCorp
    assert not [m for m in nationalities if m[2] == "LOC"]


def test_the_shipped_model_reads_the_lists_as_built_today(built, shipped_model_dir, tmp_path):
    """The model card's `gazetteer build --shared` gives the shipped gazetteer.json.gz byte for byte."""
    from spacy_aner.training.corpus import sha256_file

    gazetteer, _ = built
    gazetteer.write(tmp_path / "builtin.json.gz")
    shipped = read_json(shipped_model_dir / "meta.json")["gazetteer"]
    assert sha256_file(tmp_path / "builtin.json.gz") == shipped["sha256"]
    assert sha256_file(shipped_model_dir / "gazetteer.json.gz") == shipped["sha256"]
    assert shipped["names"] == gazetteer.counts()


def test_build_command_with_a_user_list(tmp_path):
    names = tmp_path / "clients.tsv"
    names.write_text("بنك الخليج الأول\tORG\nسعاد الصباح\tPERS\n", encoding="utf-8")
    out = tmp_path / "g.json.gz"
    result = CliRunner().invoke(app, ["gazetteer", "build", "--names", str(names), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 names (PERS 1, LOC 0, ORG 1)" in result.output
    assert Gazetteer.read(out).matches("وبنك الخليج الأول".split()) == [(0, 3, "ORG")]


@pytest.mark.parametrize("args,message", [
    ([], "give --shared DIR, --names FILE, or both"),
    (["--shared", "/nonexistent"], "folder not found"),
    (["--names", "/nonexistent.tsv"], "cannot read name list"),
])
def test_build_command_errors(tmp_path, args, message):
    result = CliRunner().invoke(app, ["gazetteer", "build", *args, "-o", str(tmp_path / "g.json.gz")])
    assert result.exit_code == 1 and message in result.output


def test_build_command_errors_on_its_output_and_broken_shared_lists(tmp_path):
    names = tmp_path / "clients.tsv"
    names.write_text("سعاد الصباح\tPERS\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["gazetteer", "build", "--names", str(names), "-o", str(tmp_path)])
    assert result.exit_code == 1 and "is a folder" in result.output
    shared = tmp_path / "shared"
    (shared / "NERAr").mkdir(parents=True)
    for label in ("PERS", "LOC", "ORG"):
        for name in (f"dico-mono-{label}.norm", f"dico-bi-ar-fr.{label}.norm"):
            (shared / "NERAr" / name).write_text("", encoding="utf-8")
    (shared / "world-cities").mkdir()
    (shared / "world-cities" / "world-cities.csv").write_text("CountryNameAr,CityNameAr\n", encoding="utf-8")
    (shared / "ArWikiCats").mkdir()
    (shared / "ArWikiCats" / "cities_full.json").write_text("{broken", encoding="utf-8")
    result = CliRunner().invoke(app, ["gazetteer", "build", "--shared", str(shared), "-o", str(tmp_path / "g.gz")])
    assert result.exit_code == 1 and "JSONDecodeError" in result.output


def test_build_command_refuses_a_label_without_a_list(tmp_path):
    names = tmp_path / "misc.tsv"
    names.write_text("العربية\tMISC\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["gazetteer", "build", "--names", str(names), "-o", str(tmp_path / "g.gz")])
    assert result.exit_code == 1 and "MISC" in result.output
