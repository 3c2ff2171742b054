"""A real `CLIPTokenizer` for a small vocabulary, built offline from generated vocab.json/merges.txt.

CLIP's tokenizer is byte-level BPE: the base vocabulary is the 256 byte symbols (plain and with the
end-of-word marker `</w>`), and merges join symbols into longer tokens. Adding, for each word of the
world, the chain of merges that spells it left to right makes most known words one token, while any
other word (a placeholder such as "sks", a user's new subject) still tokenizes into byte symbols, exactly
as SD1.5's tokenizer treats rare words. BPE applies merges by rank, so a chain can be pre-empted by an
earlier merge of another word ("qu" of "quickly" before "sq" of "square"): in the shipped world,
"square", "striped" and "triangle" are several tokens each, as rare words are in SD1.5's tokenizer.
The shipped weights were trained with exactly this tokenizer, so it is kept as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _word_merges(word: str) -> list[tuple[str, str]]:
    """The merges that build `word</w>` from its characters, left to right."""
    symbols = list(word[:-1]) + [word[-1] + "</w>"]
    merges, current = [], symbols[0]
    for symbol in symbols[1:]:
        merges.append((current, symbol))
        current += symbol
    return merges


def build_vocab_files(words: list[str], directory: str | Path) -> Path:
    """Write vocab.json and merges.txt for `words` (lower-case ASCII) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    byte_symbols = list(bytes_to_unicode().values())
    vocab = byte_symbols + [s + "</w>" for s in byte_symbols]
    merges: list[tuple[str, str]] = []
    for word in sorted(set(words)):
        for left, right in _word_merges(word):
            if (left, right) not in merges:
                merges.append((left, right))
            if left + right not in vocab:
                vocab.append(left + right)
    vocab += [BOS, EOS]
    (directory / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (directory / "merges.txt").write_text("\n".join(lines) + "\n")
    return directory


def build_tokenizer(words: list[str], directory: str | Path, max_length: int = 16) -> CLIPTokenizer:
    """A CLIPTokenizer whose vocabulary holds `words` as single tokens, saved in `directory`."""
    build_vocab_files(words, directory)
    tokenizer = CLIPTokenizer.from_pretrained(str(directory), model_max_length=max_length)
    tokenizer.save_pretrained(str(directory))
    return tokenizer
