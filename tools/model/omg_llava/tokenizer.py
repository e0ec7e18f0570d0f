"""SentencePiece BPE -> Hugging Face tokenizer.json, and a Python encoder with tokenizer.json semantics.

The TypeScript core tokenises with `@huggingface/tokenizers` over the bundle's tokenizer.json; the Python
pipeline must produce the same ids, so `Tokenizer` implements exactly what that file says:
split on added tokens first (leftmost, longest), then per remaining segment: prepend "▁" (if the SentencePiece
model adds a dummy prefix), replace " " by "▁", BPE by merge rank, unknown characters as <0xXX> byte tokens (or <unk> without byte fallback).

OMG-LLaVA's added tokens (spec §8.2): `[SEG]`, `<p>`, `</p>`, `<region>` get embedding rows V-4..V-1;
`<mark>` gets id V, one past the last row (it is always replaced by a prompt embedding).
"""
import io
import re

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

SEG, P_OPEN, P_CLOSE, REGION, MARK = "[SEG]", "<p>", "</p>", "<region>", "<mark>"
ROW_TOKENS = (SEG, P_OPEN, P_CLOSE, REGION)   # appended after the SentencePiece vocabulary, with rows
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPACE = "\u2581"  # "▁"

# SentencePiece piece types (sentencepiece_model.proto)
_UNKNOWN, _CONTROL, _USER_DEFINED, _BYTE = 2, 3, 4, 6


def train_sentencepiece(texts, vocab_size: int) -> bytes:
    """Train a byte-fallback BPE SentencePiece model on `texts` (an iterable of str); returns the model proto.

    Text is kept as written (identity normalisation, whitespace not collapsed) so the Hugging Face
    conversion is exact. Added tokens must already be removed from `texts` (see `split_added`).
    """
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, model_type="bpe", vocab_size=vocab_size,
        byte_fallback=True, character_coverage=1.0, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True,
        user_defined_symbols=[IM_START, IM_END], unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        max_sentence_length=1 << 14, num_threads=1, minloglevel=2)
    return model.getvalue()


def _merges(vocab: dict, scores: dict) -> list:
    """BPE merges in SentencePiece priority order: every split of a piece into two vocabulary pieces,
    ranked by the merged piece's score (higher first), as Hugging Face's SentencePieceExtractor does."""
    merges = []
    for piece, score in scores.items():
        local = [(piece[:i], piece[i:]) for i in range(1, len(piece)) if piece[:i] in vocab and piece[i:] in vocab]
        local.sort(key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
        merges.extend((score, l, r) for l, r in local)
    merges.sort(key=lambda m: -m[0])  # stable: ties keep vocabulary order
    return [[l, r] for _, l, r in merges]


def sentencepiece_to_hf(model_proto: bytes, extra_tokens=ROW_TOKENS + (MARK,)) -> dict:
    """A Hugging Face tokenizer.json dict for a SentencePiece BPE model (ours, or InternLM2's tokenizer.model).

    Control, unknown and user-defined pieces become special added tokens (matched before BPE);
    `extra_tokens` are appended with ids len(pieces), len(pieces)+1, ...
    Like the Llama and InternLM2 fast-tokenizer converters, the SentencePiece normalisation rules
    (precompiled charsmap, remove_extra_whitespaces) are not carried over; our trained models use none.
    """
    m = sp_pb2.ModelProto()
    m.ParseFromString(model_proto)
    if m.trainer_spec.model_type != sp_pb2.TrainerSpec.BPE:
        raise ValueError("only BPE SentencePiece models can be converted")
    vocab = {p.piece: i for i, p in enumerate(m.pieces)}
    scores = {p.piece: p.score for p in m.pieces if p.type not in (_UNKNOWN, _CONTROL, _USER_DEFINED, _BYTE)}
    added = [(i, p.piece) for i, p in enumerate(m.pieces) if p.type in (_UNKNOWN, _CONTROL, _USER_DEFINED)]
    added += [(len(m.pieces) + k, t) for k, t in enumerate(extra_tokens)]
    unk = m.pieces[m.trainer_spec.unk_id].piece
    bos = m.pieces[m.trainer_spec.bos_id].piece

    normalizers = [{"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]
    decoders = [{"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]
    if m.normalizer_spec.add_dummy_prefix:
        normalizers.insert(0, {"type": "Prepend", "prepend": SPACE})
        decoders.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    # Hugging Face's converter ignores remove_extra_whitespaces too; our trained models have it off.
    bos_item = {"SpecialToken": {"id": bos, "type_id": 0}}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in added],
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [bos_item, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [bos_item, {"Sequence": {"id": "A", "type_id": 0}}, bos_item, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [vocab[bos]], "tokens": [bos]}},
        },
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": None, "unk_token": unk, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": bool(m.trainer_spec.byte_fallback), "ignore_merges": False,
                  "vocab": vocab, "merges": _merges(vocab, scores)},
    }


def _bytes_text(data: bytearray) -> str:
    """A run of byte-fallback tokens as text; like Hugging Face's ByteFallback, one U+FFFD per byte if invalid."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "\ufffd" * len(data)


class Tokenizer:
    """Encoder/decoder over a tokenizer.json dict of the shape `sentencepiece_to_hf` writes."""

    def __init__(self, tokenizer_json: dict):
        self.json = tokenizer_json
        model = tokenizer_json["model"]
        self.vocab = dict(model["vocab"])
        self.unk_id = self.vocab[model["unk_token"]]
        self.byte_fallback = model["byte_fallback"]
        self.ranks = {tuple(pair): rank for rank, pair in enumerate(model["merges"])}
        self.added = {t["content"]: t["id"] for t in tokenizer_json["added_tokens"]}
        self.id_to_piece = {i: p for p, i in self.vocab.items()} | {i: t for t, i in self.added.items()}
        self.prepend = any(n["type"] == "Prepend" for n in tokenizer_json["normalizer"]["normalizers"])
        self.bos_id = self.added[tokenizer_json["post_processor"]["single"][0]["SpecialToken"]["id"]]
        self.byte_ids = {i for p, i in self.vocab.items() if re.fullmatch(r"<0x[0-9A-F]{2}>", p)}
        # Longest first, so the alternation picks the leftmost-longest added token like Hugging Face does.
        self._added_re = re.compile("|".join(re.escape(t) for t in sorted(self.added, key=len, reverse=True)))

    def token_id(self, token: str) -> int:
        return self.added[token] if token in self.added else self.vocab[token]

    def split_added(self, text: str) -> list:
        """text -> list of segments; added tokens are their own segments."""
        parts, pos = [], 0
        for match in self._added_re.finditer(text):
            parts += [text[pos:match.start()], match.group()]
            pos = match.end()
        parts.append(text[pos:])
        return [p for p in parts if p]

    def _bpe(self, segment: str) -> list:
        symbols = list(segment)
        while len(symbols) > 1:
            best = min(((self.ranks.get((a, b)), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))
                        if (a, b) in self.ranks), default=None)
            if best is None:
                break
            i = best[1]
            symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
        ids = []
        for s in symbols:
            if s in self.vocab:
                ids.append(self.vocab[s])
            else:
                byte_ids = [self.vocab.get(f"<0x{b:02X}>") for b in s.encode("utf-8")]
                ids += byte_ids if self.byte_fallback and None not in byte_ids else [self.unk_id]
        return ids

    def encode(self, text: str, add_bos: bool = False) -> list:
        """text -> ids, as tokenizer.json (`add_special_tokens` = add_bos) encodes it."""
        ids = [self.bos_id] if add_bos else []
        for segment in self.split_added(text):
            if segment in self.added:
                ids.append(self.added[segment])
            else:
                ids += self._bpe((SPACE if self.prepend else "") + segment.replace(" ", SPACE))
        return ids

    def decode(self, ids) -> str:
        """ids -> text (special tokens kept), as the tokenizer.json decoder does."""
        out, pending = [], bytearray()
        for i in ids:
            piece = self.id_to_piece[int(i)]
            if int(i) in self.byte_ids:
                pending.append(int(piece[3:5], 16))
                continue
            out.append(_bytes_text(pending))
            pending = bytearray()
            out.append(piece.replace(SPACE, " "))
        out.append(_bytes_text(pending))
        text = "".join(out)
        return text[1:] if self.prepend and text.startswith(" ") else text

    def manifest_tokens(self) -> dict:
        """The manifest's `tokens` block (bundle.md)."""
        return {"bos": self.bos_id, "eos": self.token_id("</s>"), "im_start": self.token_id(IM_START),
                "im_end": self.token_id(IM_END), "seg": self.token_id(SEG), "p_open": self.token_id(P_OPEN),
                "p_close": self.token_id(P_CLOSE), "region": self.token_id(REGION), "mark": self.token_id(MARK)}

    @property
    def vocab_rows(self) -> int:
        """V: embedding rows; every id but `<mark>` (= V) has one."""
        return self.token_id(MARK)
