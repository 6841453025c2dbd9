#!/usr/bin/env python3
"""Derives src/classify/lexicon/vader_negative.tsv from VADER's lexicon.

VADER (C.J. Hutto, MIT licence, LICENSE-VADER.txt beside this file) ships
its lexicon in the PyPI package vaderSentiment. To regenerate:

    pip download --no-deps vaderSentiment==3.3.2 -d /tmp/vader
    python3 src/classify/lexicon/derive_vader.py /tmp/vader/vaderSentiment-3.3.2-py2.py3-none-any.whl \
        > src/classify/lexicon/vader_negative.tsv

The subset: every single word (letters only, as frontdesk's normaliser
leaves it) whose mean valence is -1.5 or lower on VADER's -4..+4 scale,
i.e. clearly negative. Nothing is added or removed by hand; the detector
(`classify/frustration.rs`) decides how the words count (only in a
statement of how the visitor feels, "I'm so X", "makes me X").
"""

import re
import sys
import zipfile

THRESHOLD = -1.5


def lexicon_lines(path):
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            return z.read("vaderSentiment/vader_lexicon.txt").decode("utf-8").splitlines()
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: derive_vader.py <vaderSentiment wheel or vader_lexicon.txt>")
    words = {}
    for line in lexicon_lines(sys.argv[1]):
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        word, valence = parts[0], float(parts[1])
        if re.fullmatch(r"[a-z]+", word) and valence <= THRESHOLD:
            words[word] = valence
    print("# Derived from VADER's vader_lexicon.txt (vaderSentiment 3.3.2, MIT licence,")
    print("# Copyright (c) 2016 C.J. Hutto; see LICENSE-VADER.txt) by derive_vader.py:")
    print(f"# single lower-case words with mean valence <= {THRESHOLD}. word<TAB>valence.")
    for word in sorted(words):
        print(f"{word}\t{words[word]}")


if __name__ == "__main__":
    main()
