"""Parity of `subpt-bench tokenize` with OpenAI CLIP's `clip.tokenize` (clip-anytorch).

Build the binary first: `cargo build -p subpt-bench`. Its path is taken from SUBPT_BENCH_BIN,
else `$CARGO_TARGET_DIR/debug/subpt-bench`, else `<repo>/target/debug/subpt-bench`.
"""

import json
import os
import random
import subprocess
import sys
import types
import unicodedata
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"

# clip-anytorch imports `packaging` through pkg_resources, which setuptools >= 81 no longer
# ships; hand it the real `packaging` so `import clip` works with any setuptools.
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pkg_resources  # noqa: F401
except ImportError:
    import packaging
    import packaging.version

    _shim = types.ModuleType("pkg_resources")
    _shim.packaging = packaging
    sys.modules["pkg_resources"] = _shim

import clip  # noqa: E402
from clip.simple_tokenizer import SimpleTokenizer  # noqa: E402

# Bytes of text per run: keeps argv far below the kernel's limit.
CHUNK_BYTES = 400_000


def bench_bin() -> Path:
    if os.environ.get("SUBPT_BENCH_BIN"):
        path = Path(os.environ["SUBPT_BENCH_BIN"])
    elif os.environ.get("CARGO_TARGET_DIR"):
        path = Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "subpt-bench"
    else:
        path = REPO / "target" / "debug" / "subpt-bench"
    if not path.is_file():
        pytest.fail(f"{path} does not exist: run `cargo build -p subpt-bench` (or set SUBPT_BENCH_BIN)")
    return path


def run_bench(texts, truncate=False):
    args = [str(bench_bin()), "tokenize"] + (["--truncate"] if truncate else [])
    # `--text=T`, not `--text T`: a text starting with '-' must not read as an option.
    args += [f"--text={t}" for t in texts]
    return subprocess.run(args, capture_output=True, text=True, encoding="utf-8")


def rust_ids(texts, truncate=False):
    out = []
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (end == start or size + len(texts[end].encode()) < CHUNK_BYTES):
            size += len(texts[end].encode()) + 16
            end += 1
        chunk = texts[start:end]
        proc = run_bench(chunk, truncate)
        assert proc.returncode == 0, f"subpt-bench failed on {chunk[:3]}...: {proc.stderr}"
        ids = json.loads(proc.stdout)["ids"]
        assert len(ids) == len(chunk)
        out += ids
        start = end
    return out


def assert_parity(texts, truncate=False):
    ours = rust_ids(texts, truncate)
    ref = clip.tokenize(texts, truncate=truncate).tolist()
    bad = [(t, a, b) for t, a, b in zip(texts, ours, ref) if a != b]
    detail = "\n".join(f"{t!r}:\n  rust {a}\n  clip {b}" for t, a, b in bad[:5])
    assert not bad, f"{len(bad)} of {len(texts)} texts differ, e.g.\n{detail}"


TRICKY = [
    # punctuation, clitics, digits
    "a photo of a dog.",
    "Hello, World!!! ...?! (really) [yes] {no} <maybe>",
    "it's they're we've I'm you'll he'd don't",
    "IT'S THEY'RE WE'VE I'M YOU'LL HE'D DON'T",
    "it\u2019s \u2018quoted\u2019 \u201cdouble\u201d \u201ehigh\u201f \u02bcokina",
    "'s 't 're start's end'",
    "rock 'n' roll, o'clock, 90's",
    "3.14159 2024-01-01 1,000,000 #1 50% $9.99 4x4 a1b2c3",
    "\u00bd \u00b2 \u2167 \u0663\u0664 \uff11\uff12",
    "e-mail foo@bar.com http://example.com/a?b=c&d=e",
    "snake_case kebab-case CamelCase ALLCAPS",
    "--- *** ___ ~~~ ``` ### !!! ???",
    # accents, scripts, emoji
    "Cr\u00e8me br\u00fbl\u00e9e, na\u00efve caf\u00e9, se\u00f1or, \u00c5ngstr\u00f6m, stra\u00dfe",
    "cafe\u0301 (decomposed) vs caf\u00e9",
    "\u0395\u039b\u039b\u0397\u039d\u0399\u039a\u0391 \u039f\u0394\u039f\u03a3 \u03c3\u03bf\u03c6\u03af\u03b1 \u03a3",
    "\u041c\u043e\u0441\u043a\u0432\u0430 \u043a\u043e\u0448\u043a\u0430",
    "\u732b\u306e\u5199\u771f \u6771\u4eac\u30bf\u30ef\u30fc \ud55c\uad6d\uc5b4 \u4e2d\u6587",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea \u0939\u093f\u0928\u094d\u0926\u0940 \u0e44\u0e17\u0e22",
    "a \U0001f431 cat \U0001f436\U0001f415 \U0001f468\u200d\U0001f469\u200d\U0001f467 flag \U0001f1eb\U0001f1f7",
    "\U0001d400\U0001d401 \U0001d7d8 \U00020000",
    "\u0130stanbul \u0131 \u1e9e \u017f 'S '\u017f",
    "a\u0345b \u1fb3 \u0391\u0345",
    "\u2126 \u212a \u212b \u00b5 \u03bc",
    # HTML entities (ftfy's own pass, then html.unescape twice)
    "Tom &amp; Jerry",
    "it&#39;s &#x27;quoted&#x27; &quot;x&quot; &lt;tag&gt;",
    "caf&eacute; &Eacute;COLE P&EACUTE;REZ BUNDESSTRA&SZLIG;E &nTILDE;",
    "&amp;amp; &amp;amp;amp; &amp;lt;",
    "&hellip; &mdash; &ndash; &rsquo; &ldquo;x&rdquo; &trade; &copy; &reg;",
    "&ampfoo &notit; &not that &copy2024 &zzz; &#; &#x; &#65",
    "&#150; &#128; &#0; &#1; &#x110000; &#xD800; &#65533; &#9731;",
    "&Jscr;ohn &HilbertSpace;ancock &checkmark; &NotNestedGreaterGreater;",
    "<b>bold</b> &amp; more",
    "line one &amp;\n<i>two</i> &amp;\nthree &amp;",
    "&lt;b&gt; is &amp;lt;b&amp;gt;",
    # ligatures, width, controls, line breaks
    "\ufb02u\ufb03e\ufb06 \ufb01sh \ufb00 \ufb04 \ufb05 \u0132 \u0133 \u01c4 \u01c5 \u01c6 \u01c7 \u01ca \u01f1 \u0149",
    "\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33\uff01 \uff55\uff54\uff46",
    "\uff35\uff80\uff70\uff9d \uff76\uff9e\uff77\uff9e \uffe3 \uffe5 \uffe6 \uff5e",
    "tab\there  many    spaces\n\nnewlines\r\nwindows\rmac\u2028ls\u2029ps\x85nel",
    "   leading and trailing   ",
    "\x0b\x0c vertical \x1c\x1d\x1e\x1f separators",
    "nbsp\u00a0thin\u2009ideo\u3000em\u2003zwsp\u200bzwj\u200dnarrow\u202f",
    "bell\x07 esc\x1b[31mred\x1b[0m del\x7f bom\ufeff ann\ufff9x\ufffb obj\ufffc arab\u206a",
    "c1 \x80 \x85 \x91quoted\x92 \x93dq\x94 \x96 \x99 \x9d",
    "soft\u00adhyphen zero\u200bwidth rtl\u200fmark",
    # special tokens and odd bits
    "<|startoftext|> inside <|endoftext|>",
    "<|STARTOFTEXT|>x<|EndOfText|>",
    "",
    " ",
    "\n\t",
    "&",
    "'",
    "x" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a.b.c.d...e",
    "\U0001f600" * 30,
]


def test_tricky_strings():
    assert_parity(TRICKY, truncate=True)


def read_names(path: Path):
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        # "n01440764 tench" lines carry a WordNet id before the name.
        first, _, rest = line.partition(" ")
        if rest and first[:1] == "n" and first[1:].isdigit():
            line = rest
        names.append(line)
    return names


def all_class_names():
    files = sorted(ASSETS.glob("classnames_nfl_*.txt")) + [
        ASSETS / "imagenet_classnames_only.txt",
        ASSETS / "imagenet_a_classnames.txt",
        ASSETS / "imagenet_r_classnames.txt",
    ]
    names = []
    for f in files:
        names += read_names(f)
    assert len(names) > 3000
    return names


def test_class_names_and_prompts():
    names = all_class_names()
    texts = list(names)
    texts += [" ".join(["X"] * 16) + f" {n}." for n in names]
    texts += [n.replace("_", " ").capitalize() for n in names]
    templates = (ASSETS / "imagenet_templates_80.txt").read_text(encoding="utf-8").splitlines()
    rng = random.Random(0)
    texts += [rng.choice(templates).format(n) for n in read_names(ASSETS / "imagenet_classnames_only.txt")]
    assert_parity(texts)


def cat_text(n_tokens):
    return " ".join(["cat"] * n_tokens)


def test_context_length_boundary():
    # "cat" is one id, so n words are n + 2 ids with SOT and EOT.
    assert len(SimpleTokenizer().encode(cat_text(75))) == 75
    exact = cat_text(75)
    assert_parity([exact])
    assert_parity([exact], truncate=True)

    over = cat_text(76)
    with pytest.raises(RuntimeError):
        clip.tokenize([over])
    proc = run_bench([over])
    assert proc.returncode != 0
    assert "78" in proc.stderr, proc.stderr
    assert_parity([over, cat_text(200), exact], truncate=True)

    # One over-long text fails the whole call even among short ones.
    assert run_bench(["a cat", over]).returncode != 0


def sampled_code_points():
    """Every code point where Latin, Greek, Cyrillic, combining marks, punctuation, symbols and
    compatibility forms live; one in 11 elsewhere (CJK, Hangul, astral planes...)."""
    dense = [(0x1, 0x3000), (0xA640, 0xA800), (0xFB00, 0x10000), (0x1F000, 0x1FB00)]
    for cp in range(1, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if any(lo <= cp < hi for lo, hi in dense) or cp % 11 == 0:
            yield cp


def test_code_points():
    # Code points (assigned in Unicode 14, the tables of this Python) between two ASCII letters:
    # covers the regex classes, lowercasing, NFC, ftfy's fixers and byte-level BPE of each script.
    texts = []
    for cp in sampled_code_points():
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat == "Cn" or cat == "Co":
            continue
        texts.append(f"x{ch}y")
    assert len(texts) > 20000
    assert_parity(texts, truncate=True)


def test_random_mixtures():
    pieces = [
        "a", "Z", "cat", "DOG", "7", "42", " ", "  ", "\t", "\n", "\r\n", ".", ",", "!?", "'", "'s",
        "'T", "\u2019", "\u201c", "&amp;", "&lt;", "&#39;", "&eacute;", "&AMP;", "&", ";", "#", "<",
        ">", "\ufb01", "\uff21", "\uff44", "\u3000", "\u00e9", "e\u0301", "\u03a3", "\u03c3",
        "\u4e2d", "\U0001f431", "\u200b", "\u00a0", "\x07", "\x1b[1m", "<|endoftext|>", "_", "-",
    ]
    rng = random.Random(1234)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 25))) for _ in range(3000)]
    assert_parity(texts, truncate=True)
