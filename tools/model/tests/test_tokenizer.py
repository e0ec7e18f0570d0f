"""Tokenizer: SentencePiece -> tokenizer.json conversion, the Python encoder, and the TypeScript reader."""
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import sentencepiece as spm

from export.tokenizer_samples import TEXTS, samples
from omg_llava.tokenizer import MARK, ROW_TOKENS, Tokenizer, sentencepiece_to_hf

HERE = Path(__file__).resolve().parent
SP_MODEL = (HERE.parent / "tokenizer" / "scenes.model").read_bytes()
TOKENIZER_JSON = sentencepiece_to_hf(SP_MODEL)
TOK = Tokenizer(TOKENIZER_JSON)


def test_python_encoder_matches_sentencepiece():
    for sample in samples(TOKENIZER_JSON, SP_MODEL):
        assert TOK.encode(sample["text"], sample["add_bos"]) == sample["ids"], sample["text"]


def test_decode_inverts_encode_for_plain_text():
    for text in TEXTS:
        if not any(s in TOK.added for s in TOK.split_added(text)):
            assert TOK.decode(TOK.encode(text)) == text


def test_unknown_characters_fall_back_to_bytes():
    ids = TOK.encode("😀")
    pieces = [TOK.id_to_piece[i] for i in ids]
    assert pieces[-4:] == ["<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]


def test_added_tokens_split_first_and_layout():
    tokens = TOK.manifest_tokens()
    V = TOK.vocab_rows
    assert (tokens["bos"], tokens["eos"]) == (1, 2)
    assert [TOK.token_id(t) for t in ROW_TOKENS] == [V - 4, V - 3, V - 2, V - 1]
    assert TOK.token_id(MARK) == V == tokens["mark"]
    assert TOK.encode("a[SEG]b<mark>") == TOK.encode("a") + [tokens["seg"]] + TOK.encode("b") + [V]
    assert 400 <= V <= 800


def test_merges_are_ranked_by_piece_score():
    merges = TOKENIZER_JSON["model"]["merges"]
    vocab = TOKENIZER_JSON["model"]["vocab"]
    merged_ids = [vocab["".join(m)] for m in merges]
    assert merged_ids == sorted(merged_ids)  # BPE pieces: lower id = higher score


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run_js(tokenizer_json, sample_list, tmp_path):
    """Encode the samples with @huggingface/tokenizers (export/check_tokenizer.mjs); returns the process result."""
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "samples.json").write_text(json.dumps({"samples": sample_list}), encoding="utf-8")
    script = HERE.parent / "export" / "check_tokenizer.mjs"
    return subprocess.run(["node", str(script), str(tmp_path / "tokenizer.json"), str(tmp_path / "samples.json")],
                          capture_output=True, text=True, timeout=60)


@needs_node
def test_huggingface_tokenizers_js_agrees(tmp_path):
    run = run_js(TOKENIZER_JSON, samples(TOKENIZER_JSON, SP_MODEL), tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


@needs_node
def test_without_byte_fallback_unknown_characters_are_unk_in_python_and_js(tmp_path):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["red circle, blue square"] * 10), model_writer=model,
                                   model_type="bpe", vocab_size=40, byte_fallback=False, character_coverage=1.0,
                                   normalization_rule_name="identity", minloglevel=2)
    tokenizer_json = sentencepiece_to_hf(model.getvalue())
    tok = Tokenizer(tokenizer_json)
    assert tok.encode("red ?!") == tok.encode("red ") + [tok.unk_id, tok.unk_id]
    ours = [{"text": t, "add_bos": b, "ids": tok.encode(t, b)} for t in TEXTS for b in (False, True)]
    run = run_js(tokenizer_json, ours, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
