"""Texts -> ids expected from SentencePiece itself, to check tokenizer.json readers against.

The Python `Tokenizer` and the TypeScript core (@huggingface/tokenizers) must both reproduce these ids;
they are computed by SentencePiece on each segment between added tokens, independently of both.
"""
import sentencepiece as spm

from omg_llava.tokenizer import Tokenizer

TEXTS = (
    "<|im_start|>user\n",                                                     # chunk 0 of the template
    "\nPlease segment the red circle in this image.<|im_end|>\n<|im_start|>assistant\n",  # chunk 1
    "<p> A blue star </p> [SEG] is above <p> the green square </p> [SEG].<|im_end|>",
    "There are some marks: Mark 1 <mark>, Mark 2 <mark>.\nWhat is region1 <region>?",
    "What is at (12, 407)? Describe the box 0,5,1023,99.",
    "  two leading spaces,   three inside, trailing  ",
    "tabs\tand\r\nwindows newlines\n\n\nand more",
    "Ünïcödé façade, naïve café — «quotes» 中文字符 日本語 한국어",
    "emoji 😀🎉 and flags 🇫🇷 and ZWJ 👩‍👩‍👧",
    "digits 0123456789 3.14159 1e-5 -42",
    "[SEG][SEG]<p></p><region><mark><|im_end|><|im_start|>",
    "literal <image> and <s> and </s> and <unk> in text",
    "<pp> [SEG ] <regionx> < mark> almost tokens",
    "",
    " ",
    "\n",
)


def samples(tokenizer_json: dict, sp_model: bytes) -> list:
    """[{text, add_bos, ids}] for every text, with and without BOS."""
    tok = Tokenizer(tokenizer_json)
    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    out = []
    for text in TEXTS:
        ids = []
        for seg in tok.split_added(text):
            ids += [tok.added[seg]] if seg in tok.added else sp.encode(seg)
        out += [{"text": text, "add_bos": False, "ids": ids}, {"text": text, "add_bos": True, "ids": [tok.bos_id] + ids}]
    return out
