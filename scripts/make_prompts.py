#!/usr/bin/env python3
"""Render the shipped prompt set: prompts/catalog.tsv -> prompts/<lang>/<name>.au.

Speech comes from espeak-ng and is turned into G.711 u-law 8 kHz mono Sun .au by sox,
trimmed of leading and trailing silence and peak-normalised so that words and sentences
joined into one announcement play at the same level.  Only this script needs espeak-ng
and sox (Debian: apt-get install espeak-ng sox); the server just reads the files.

    python3 scripts/make_prompts.py              # every prompt, every language
    python3 scripts/make_prompts.py --lang es vm-main-menu 21-f

Texts in brackets are not speech but sounds made by other scripts (scripts/make_moh.py).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portaum_tx.ivr.prompts import load_catalog  # noqa: E402

VOICES = {"en": "en-us", "es": "es"}
WORDS_PER_MINUTE = 165
# Written forms espeak-ng would spell out letter by letter, and how they are said.
SPOKEN_AS = [(re.compile(r"\bPIN(s?)\b"), r"pin\1")]
# sox effects: level, then cut silence at both ends (reverse trick), then a short
# lead-in and tail so prompts played back to back do not run together.
EFFECTS = ["norm", "-3",
           "silence", "1", "0.01", "0.5%", "reverse",
           "silence", "1", "0.01", "0.5%", "reverse",
           "pad", "0.02", "0.06"]


def not_speech(text):
    """A catalog text in brackets names a sound another script makes (music on hold:
    scripts/make_moh.py); there is nothing to say."""
    return text.startswith("[") and text.endswith("]")


def spoken(text):
    for written, said in SPOKEN_AS:
        text = written.sub(said, text)
    return text


def render(text, voice, target):
    text = spoken(text)
    with tempfile.NamedTemporaryFile(suffix=".wav") as speech:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", speech.name, text],
                       check=True, stdout=subprocess.DEVNULL)
        partial = target.with_suffix(".au.part")
        # -D: no dither, so that rendering the same text twice gives the same file
        subprocess.run(["sox", "--no-glob", "-D", speech.name, "--comment", "",
                        "-r", "8000", "-c", "1", "-e", "u-law", "-b", "8", "-t", "au", str(partial)]
                       + EFFECTS, check=True)
        os.replace(partial, target)
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these prompts (default: all)")
    parser.add_argument("--lang", action="append", choices=sorted(VOICES), help="only this language")
    parser.add_argument("--catalog", type=Path, default=ROOT / "prompts" / "catalog.tsv")
    parser.add_argument("--out", type=Path, default=ROOT / "prompts")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (apt-get install espeak-ng sox)")

    catalog = load_catalog(args.catalog)
    unknown = set(args.names) - set(catalog)
    if unknown:
        parser.error("not in the catalog: " + ", ".join(sorted(unknown)))
    languages = args.lang or sorted(VOICES)
    work = []
    for lang in languages:
        lang_dir = args.out / lang
        lang_dir.mkdir(parents=True, exist_ok=True)
        wanted = {name for name, texts in catalog.items() if texts.get(lang)}
        if not args.names:
            for stale in lang_dir.glob("*.au"):
                if stale.stem not in wanted:
                    stale.unlink()
        for name in sorted(wanted):
            if not_speech(catalog[name][lang]):
                continue
            if not args.names or name in args.names:
                work.append((catalog[name][lang], VOICES[lang], lang_dir / f"{name}.au"))
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = list(pool.map(lambda job: render(*job), work))
    total = sum(path.stat().st_size for path in done)
    print(f"{len(done)} prompts, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
