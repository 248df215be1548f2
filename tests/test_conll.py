"""The CoNLL reader and tag list: good files, and each bad input as one line naming file:line."""
import pytest

from sparseseq_cli.corpora import conll
from sparseseq_cli.errors import SparseseqError

GOOD = "The\tDT\ndog\tNN\nruns\tVBZ\n\n\nIt\tPRP\n*T*-1\t-NONE-\nran\tVBD\n"


def write_dir(tmp_path, train=GOOD, valid=GOOD, test=None, tags=None):
    for name, text in (("train.conll", train), ("valid.conll", valid), ("test.conll", test),
                       ("tags.txt", tags)):
        if text is not None:
            (tmp_path / name).write_text(text)
    return tmp_path


def test_reads_sentences_with_their_line_numbers(tmp_path):
    path = tmp_path / "x.conll"
    path.write_text(GOOD.replace("\n", "\r\n"))
    first, second = conll.read_conll(path)
    assert first.words == ("The", "dog", "runs") and first.tags == ("DT", "NN", "VBZ")
    assert (first.line, second.line) == (1, 6)
    assert second.tags == ("PRP", "-NONE-", "VBD")


def test_folder_without_test_or_tags_file(tmp_path):
    corpus = conll.load_conll_dir(write_dir(tmp_path))
    assert corpus.test is None and set(corpus.splits()) == {"train", "valid"}
    assert corpus.tags == ("-NONE-", "DT", "NN", "PRP", "VBD", "VBZ")   # seen in training, sorted


def test_tags_file_gives_the_classes_in_its_order(tmp_path):
    tags = "VBZ\nNN\nDT\nPRP\n-NONE-\nVBD\n\nJJ\n"
    corpus = conll.load_conll_dir(write_dir(tmp_path, test=GOOD, tags=tags))
    assert corpus.tags == ("VBZ", "NN", "DT", "PRP", "-NONE-", "VBD", "JJ")
    assert len(corpus.test) == 2


def error_of(call, *args):
    with pytest.raises(SparseseqError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_line_without_tab(tmp_path):
    path = tmp_path / "x.conll"
    path.write_text("The\tDT\ndog NN\n")
    assert error_of(conll.read_conll, path).startswith(f"{path}:2: expected token<TAB>tag")


def test_line_with_extra_column_or_empty_tag(tmp_path):
    path = tmp_path / "x.conll"
    path.write_text("The\tDT\tB-NP\n")
    assert f"{path}:1:" in error_of(conll.read_conll, path)
    path.write_text("The\tDT\n\ndog\t \n")
    assert f"{path}:3:" in error_of(conll.read_conll, path)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path, text):
    path = tmp_path / "x.conll"
    path.write_text(text)
    assert "holds no sentences" in error_of(conll.read_conll, path)


def test_missing_split_file(tmp_path):
    (tmp_path / "train.conll").write_text(GOOD)
    message = error_of(conll.load_conll_dir, tmp_path)
    assert f"split file {tmp_path / 'valid.conll'} does not exist" in message


def test_missing_folder(tmp_path):
    assert "no data folder" in error_of(conll.load_conll_dir, tmp_path / "nowhere")


def test_dev_tag_missing_from_tags_file(tmp_path):
    valid = GOOD + "\nBig\tJJ\nhouse\tNN\n\nold\tJJS\n"
    write_dir(tmp_path, valid=valid, tags="DT\nNN\nVBZ\nPRP\n-NONE-\nVBD\nJJ\n")
    message = error_of(conll.load_conll_dir, tmp_path)
    assert message.startswith(f"{tmp_path / 'valid.conll'}:13: tag 'JJS' is not in {tmp_path / 'tags.txt'}")


def test_test_tag_unseen_in_training_without_tags_file(tmp_path):
    write_dir(tmp_path, test="a\tDT\nb\tFW\n")
    message = error_of(conll.load_conll_dir, tmp_path)
    assert f"{tmp_path / 'test.conll'}:2: tag 'FW'" in message and "tags.txt" in message


def test_sentence_over_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(conll, "MAX_SENTENCE_TOKENS", 4)
    path = tmp_path / "x.conll"
    path.write_text(GOOD + "\n" + "w\tNN\n" * 5)
    message = error_of(conll.read_conll, path)
    assert message.startswith(f"{path}:10: sentence of 5 tokens is longer than the limit of 4")


def test_bad_tags_files(tmp_path):
    path = tmp_path / "tags.txt"
    path.write_text("NN\nDT\nNN\n")
    assert f"{path}:3: tag 'NN' is listed twice" in error_of(conll.read_tags, path)
    path.write_text("\n\n")
    assert "lists no tags" in error_of(conll.read_tags, path)


def test_not_utf8(tmp_path):
    path = tmp_path / "x.conll"
    path.write_bytes(b"caf\xe9\tNN\n")
    assert "not UTF-8" in error_of(conll.read_conll, path)


def test_corpus_from_pairs():
    corpus = conll.corpus_from_pairs({"train": [[("a", "DT"), ("b", "NN")]], "valid": [[("c", "NN")]]},
                                     ("DT", "NN"))
    assert corpus.test is None and corpus.train[0].words == ("a", "b") and corpus.valid[0].tags == ("NN",)
