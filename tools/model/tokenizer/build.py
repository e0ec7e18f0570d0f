"""Train the scene SentencePiece model shared by the tiny-random and nano bundles.

    python3 -m tokenizer.build [--vocab 600] [--out tokenizer/scenes.model]     (from tools/model)

Training text is the scene task text (`scenes.texts.tokenizer_corpus`) inside the chat template, split on
the chat and OMG-LLaVA tokens and on `<image>` first, exactly as encoding splits it, so no merges are
wasted on them.
"""
import argparse
import re

from omg_llava.tokenizer import IM_END, IM_START, MARK, ROW_TOKENS, train_sentencepiece
from scenes.texts import tokenizer_corpus

SPLIT = re.compile("|".join(re.escape(t) for t in (IM_START, IM_END, "<image>", MARK) + ROW_TOKENS))


USER = "<|im_start|>user\n<image>\n{}<|im_end|>\n<|im_start|>assistant\n"


def segments(lines):
    for line in lines:
        yield from (s for s in SPLIT.split(USER.format(line)) if s)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, default=600, help="SentencePiece pieces (embedding rows = this + 4)")
    parser.add_argument("--out", default="tokenizer/scenes.model")
    args = parser.parse_args()
    model = train_sentencepiece(segments(tokenizer_corpus()), args.vocab)
    with open(args.out, "wb") as f:
        f.write(model)
    print(f"wrote {args.out} ({len(model)} bytes, {args.vocab} pieces)")


if __name__ == "__main__":
    main()
