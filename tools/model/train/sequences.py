"""A Sample's conversation as token ids, built exactly as the inference core builds its prompts.

Turn 1: encode("<|im_start|>user\\n", BOS) + <image> + encode("\\n{q1}<|im_end|>\\n<|im_start|>assistant\\n");
turn k > 1: encode("\\n<|im_start|>user\\n{qk}<|im_end|>\\n<|im_start|>assistant\\n") after the previous answer.
Answers ("{a}<|im_end|>") are the only LM targets; they are tokenised the canonical way, i.e. the ids whose
decoding is exactly the answer text (no dummy-prefix space after `<p>`, `</p>` or `[SEG]`).
"""
from omg_llava.tokenizer import IM_END, SPACE

USER = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
IMAGE = "<image>"
IMAGE_ID = -200   # placeholder, replaced by the image block


def encode_answer(tok, text):
    """Ids that decode to exactly `text`: the dummy prefix only before the first segment."""
    ids = []
    for k, segment in enumerate(tok.split_added(text)):
        if segment in tok.added:
            ids.append(tok.added[segment])
        else:
            ids += tok._bpe((SPACE if k == 0 and tok.prepend else "") + segment.replace(" ", SPACE))
    return ids


def conversation_ids(tok, sample):
    """-> (ids [T] with IMAGE_ID once, target [T] bool: True where the id is part of an answer)."""
    ids, target = [], []
    for k, (question, answer) in enumerate(sample.turns):
        if k == 0:
            before, after = USER.format(f"{IMAGE}\n{question}").split(IMAGE)
            prompt = tok.encode(before, add_bos=True) + [IMAGE_ID] + tok.encode(after)
        else:
            prompt = tok.encode("\n" + USER.format(question))
        reply = encode_answer(tok, answer + IM_END)
        ids += prompt + reply
        target += [False] * len(prompt) + [True] * len(reply)
    return ids, target
