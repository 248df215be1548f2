"""WSJ POS: .mrg trees (traces kept, section split) and ready files to DEST/wsj-pos."""
from __future__ import annotations

import zipfile

import pytest
from typer.testing import CliRunner

from sparseseq_cli.cli import app
from sparseseq_cli.corpora.datasets import DatasetName, GetdataOptions
from sparseseq_cli.corpora.getdata import getdata
from sparseseq_cli.corpora.treebank import parse_mrg
from sparseseq_cli.errors import SparseseqError

# The first trees of NLTK's sample (wsj_0001-0003), bracketed by hand in the Treebank's layout.
WSJ_0001 = """( (S
    (NP-SBJ
      (NP (NNP Pierre) (NNP Vinken) )
      (, ,)
      (ADJP
        (NP (CD 61) (NNS years) )
        (JJ old) )
      (, ,) )
    (VP (MD will)
      (VP (VB join)
        (NP (DT the) (NN board) )
        (PP-CLR (IN as)
          (NP (DT a) (JJ nonexecutive) (NN director) ))
        (NP-TMP (NNP Nov.) (CD 29) )))
    (. .) ))
( (S
    (NP-SBJ (NNP Mr.) (NNP Vinken) )
    (VP (VBZ is)
      (NP-PRD
        (NP (NN chairman) )
        (PP (IN of)
          (NP
            (NP (NNP Elsevier) (NNP N.V.) )
            (, ,)
            (NP (DT the) (NNP Dutch) (VBG publishing) (NN group) )))))
    (. .) ))
"""
WSJ_0002 = """( (S
    (NP-SBJ-1
      (NP (NNP Rudolph) (NNP Agnew) )
      (, ,)
      (UCP
        (ADJP (NP (CD 55) (NNS years) ) (JJ old) )
        (CC and)
        (NP (NP (JJ former) (NN chairman) )
          (PP (IN of) (NP (NNP Consolidated) (NNP Gold) (NNP Fields) (NNP PLC) ))))
      (, ,) )
    (VP (VBD was)
      (VP (VBN named)
        (S
          (NP-SBJ (-NONE- *-1) )
          (NP-PRD
            (NP (DT a) (JJ nonexecutive) (NN director) )
            (PP (IN of) (NP (DT this) (JJ British) (JJ industrial) (NN conglomerate) ))))))
    (. .) ))
"""
WSJ_0003 = """( (S
    (S-TPC-1
      (NP-SBJ
        (NP (NP (DT A) (NN form) ) (PP (IN of) (NP (NN asbestos) )))
        (RRC (ADVP-TMP (RB once) )
          (VP (VBN used) (NP (-NONE- *) )
            (S-CLR (NP-SBJ (-NONE- *) )
              (VP (TO to) (VP (VB make) (NP (NNP Kent) (NN cigarette) (NNS filters) )))))))
      (VP (VBZ has)
        (VP (VBN caused)
          (NP (NP (DT a) (JJ high) (NN percentage) )
            (PP (IN of) (NP (NN cancer) (NNS deaths) ))
            (PP-LOC (IN among)
              (NP (NP (DT a) (NN group) )
                (PP (IN of)
                  (NP (NP (NNS workers) )
                    (RRC (VP (VBN exposed) (NP (-NONE- *) ) (PP-CLR (TO to) (NP (PRP it) ))
                      (ADVP-TMP (NP (QP (RBR more) (IN than) (CD 30) ) (NNS years) ) (IN ago) )))))))))))
    (, ,)
    (NP-SBJ (NNS researchers) )
    (VP (VBD reported) (SBAR (-NONE- 0) (S (-NONE- *T*-1) )))
    (. .) ))
"""
# What those trees must give: the lines of the reference conversion of NLTK's sample.
EXPECTED = """\
Pierre NNP|Vinken NNP|, ,|61 CD|years NNS|old JJ|, ,|will MD|join VB|the DT|board NN|as IN|a DT|\
nonexecutive JJ|director NN|Nov. NNP|29 CD|. .
Mr. NNP|Vinken NNP|is VBZ|chairman NN|of IN|Elsevier NNP|N.V. NNP|, ,|the DT|Dutch NNP|publishing VBG|\
group NN|. .
Rudolph NNP|Agnew NNP|, ,|55 CD|years NNS|old JJ|and CC|former JJ|chairman NN|of IN|Consolidated NNP|\
Gold NNP|Fields NNP|PLC NNP|, ,|was VBD|named VBN|*-1 -NONE-|a DT|nonexecutive JJ|director NN|of IN|\
this DT|British JJ|industrial JJ|conglomerate NN|. .
A DT|form NN|of IN|asbestos NN|once RB|used VBN|* -NONE-|* -NONE-|to TO|make VB|Kent NNP|cigarette NN|\
filters NNS|has VBZ|caused VBN|a DT|high JJ|percentage NN|of IN|cancer NN|deaths NNS|among IN|a DT|\
group NN|of IN|workers NNS|exposed VBN|* -NONE-|to TO|it PRP|more RBR|than IN|30 CD|years NNS|ago IN|\
, ,|researchers NNS|reported VBD|0 -NONE-|*T*-1 -NONE-|. .
"""


def conll(text: str) -> str:
    """EXPECTED's compact form (one sentence a line, 'token tag|...') as CoNLL text."""
    return "".join(
        "".join(pair.replace(" ", "\t", 1) + "\n" for pair in line.split("|")) + "\n"
        for line in text.splitlines()
    )


# The original code's tags.txt, in its order.
ORIGINAL_TAGS = """CC CD DT EX FW IN JJ JJR JJS LS MD NN NNP NNPS NNS PDT POS PRP PRP$ RB RBR RBS RP SYM TO UH
VB VBD VBG VBN VBP VBZ WDT WP WP$ WRB `` # $ '' , -LRB- -NONE- -RRB- . : <start> <end>""".split()


def nltk_sample(root):
    """NLTK's layout: treebank/combined/wsj_00NN.mrg."""
    combined = root / "treebank" / "combined"
    combined.mkdir(parents=True)
    for name, text in (("wsj_0001.mrg", WSJ_0001), ("wsj_0002.mrg", WSJ_0002), ("wsj_0003.mrg", WSJ_0003)):
        (combined / name).write_text(text)
    return root / "treebank"


def tree(*words):
    return "( (S " + " ".join(f"(NN {w})" for w in words) + " ) )\n"


def install(source, dest, **options):
    return getdata(GetdataOptions(DatasetName.wsj_pos, dest=dest, source=source, quiet=True, **options))


def test_trees_give_the_reference_lines_with_traces(tmp_path):
    [result] = install(nltk_sample(tmp_path), tmp_path / "data")
    folder = tmp_path / "data" / "wsj-pos"
    assert (folder / "train.conll").read_text() == conll(EXPECTED)
    assert (folder / "tags.txt").read_text().split("\n") == [*ORIGINAL_TAGS, ""]
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "tags.txt", "train.conll"]
    assert set(result.files) == {"train.conll", "tags.txt"}


def test_nltk_sample_says_dev_and_test_are_missing(tmp_path):
    [result] = install(nltk_sample(tmp_path), tmp_path / "data")
    [note] = result.notes
    assert note.startswith("no valid split (sections 19-21) and no test split (sections 22-24)")
    assert "sections found: 00" in note and "installed train.conll only" in note


def test_section_split(tmp_path):
    # Treebank-3's layout: parsed/mrg/wsj/SS/wsj_SSNN.mrg
    for name, word in [("0001", "a"), ("1899", "b"), ("1900", "c"), ("2101", "d"), ("2200", "e"), ("2499", "f"),
                       ("0002", "g")]:
        section = tmp_path / "wsj" / name[:2]
        section.mkdir(parents=True, exist_ok=True)
        (section / f"wsj_{name}.mrg").write_text(tree(word, word + "2"))
    [result] = install(tmp_path / "wsj", tmp_path / "data")
    folder = tmp_path / "data" / "wsj-pos"
    words = {split: [line.split("\t")[0] for line in (folder / f"{split}.conll").read_text().splitlines() if line]
             for split in ("train", "valid", "test")}
    assert words == {"train": ["a", "a2", "g", "g2", "b", "b2"], "valid": ["c", "c2", "d", "d2"],
                     "test": ["e", "e2", "f", "f2"]}
    assert result.notes == []


def test_ready_files(tmp_path):
    source = tmp_path / "ready"
    source.mkdir()
    (source / "wsj_train.conll").write_text("The\tDT\ncat\tNN\n\n\nsat\tVBD\n")  # the original's names
    (source / "dev.conll").write_text("A\tDT\ndog\tNN\n")
    [result] = install(source, tmp_path / "data")
    folder = tmp_path / "data" / "wsj-pos"
    assert (folder / "train.conll").read_text() == "The\tDT\ncat\tNN\n\nsat\tVBD\n\n"
    assert (folder / "valid.conll").read_text() == "A\tDT\ndog\tNN\n\n"
    assert result.notes == ["no test file given: installed train.conll, valid.conll only"]


def test_unlisted_tags_go_before_start_and_end(tmp_path):
    (tmp_path / "train.conll").write_text("x\tZZ\ny\tAA\nz\tNN\n")
    [result] = install(tmp_path, tmp_path / "data")
    tags = (tmp_path / "data" / "wsj-pos" / "tags.txt").read_text().split()
    assert tags[-4:] == ["AA", "ZZ", "<start>", "<end>"] and tags[:-4] == ORIGINAL_TAGS[:-2]
    assert "tags not in the Penn tag set, added to tags.txt: AA ZZ" in result.notes


def test_from_an_archive_of_the_sample(tmp_path):
    root = nltk_sample(tmp_path / "src")
    archive = tmp_path / "treebank.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*.mrg")):
            zf.write(path, path.relative_to(root.parent).as_posix())
    install(archive, tmp_path / "data")
    assert (tmp_path / "data" / "wsj-pos" / "train.conll").read_text() == conll(EXPECTED)


def test_second_run_does_nothing_other_data_needs_force(tmp_path):
    source = nltk_sample(tmp_path)
    install(source, tmp_path / "data")
    assert install(source, tmp_path / "data")[0].status == "already installed"
    other = tmp_path / "other"
    other.mkdir()
    (other / "train.conll").write_text("x\tNN\n")
    with pytest.raises(SparseseqError, match="wsj-pos exists and holds other data .*--force"):
        install(other, tmp_path / "data")
    install(other, tmp_path / "data", force=True)
    assert (tmp_path / "data" / "wsj-pos" / "train.conll").read_text() == "x\tNN\n\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("( (S (NN a) )", r"wsj_0001.mrg: a tree is not closed"),
        ("( (S (NN a) ) ) )", r"wsj_0001.mrg:1: unbalanced '\)'"),
        ("( (S (NP a b) ) )", r"wsj_0001.mrg:1: malformed tree"),
        ("junk\n( (S (NN a) ) )", r"wsj_0001.mrg:1: text outside a tree: 'junk'"),
    ],
)
def test_malformed_trees(tmp_path, text, message):
    (tmp_path / "wsj_0001.mrg").write_text(text)
    with pytest.raises(SparseseqError, match=message):
        install(tmp_path, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_duplicate_and_out_of_range_files(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "wsj_0001.mrg").write_text(tree("x"))
    with pytest.raises(SparseseqError, match="wsj_0001.mrg appears twice"):
        install(tmp_path, tmp_path / "data")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "wsj_2500.mrg").write_text(tree("x"))
    with pytest.raises(SparseseqError, match="WSJ has sections 00-24, not 25"):
        install(tmp_path / "c", tmp_path / "data")


def test_no_training_data(tmp_path):
    (tmp_path / "wsj_2200.mrg").write_text(tree("x"))
    with pytest.raises(SparseseqError, match=r"no training data \(sections 00-18"):
        install(tmp_path, tmp_path / "data")


def test_folder_without_trees_or_files(tmp_path):
    with pytest.raises(SparseseqError, match="no wsj_\\*.mrg trees and no ready files"):
        install(tmp_path, tmp_path / "data")


def test_bad_ready_line_names_file_and_line(tmp_path):
    (tmp_path / "train.conll").write_text("ok\tNN\nbroken line\n")
    with pytest.raises(SparseseqError, match=r"train.conll:2: expected token<TAB>tag"):
        install(tmp_path, tmp_path / "data")


def test_parse_mrg_keeps_leaf_order_across_depths():
    assert parse_mrg("((A (B x) (C (D y) (E z))) (F w))") == [[("x", "B"), ("y", "D"), ("z", "E"), ("w", "F")]]


def test_cli_from_the_sample(tmp_path):
    result = CliRunner().invoke(app, ["getdata", "wsj-pos", "--from", str(nltk_sample(tmp_path)),
                                      "--dest", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "wsj-pos: no valid split (sections 19-21)" in result.stderr
    assert "installed train.conll, tags.txt" in result.stderr and "train 4 sentences" in result.stderr
