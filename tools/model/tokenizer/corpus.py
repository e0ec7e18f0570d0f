"""Representative scene text for training the shared SentencePiece model.

Questions and answers in the upstream task formats (spec §10) about coloured shapes, so the small
vocabulary spends its merges on the words the nano model actually sees. Deterministic.
"""
import random

from omg_llava.config import COLOURS, SHAPES

SEG_QUESTIONS = (
    "Can you segment the {x} in this image?", "Please segment {x} in this image.",
    "What is {x} in this image? Please respond with segmentation mask.",
    "What is {x} in this image? Please output segmentation mask.",
    "Could you provide a segmentation mask for the {x} in this image?",
    "Please identify and segment the {x} in this image.",
    "Where is the {x} in this picture? Please respond with a segmentation mask.",
    "Can you highlight the {x} in this image with a segmentation mask?",
)
GCG_QUESTIONS = (
    "Could you please give me a detailed description of the image? Please respond with interleaved "
    "segmentation masks for the corresponding parts of the answer.",
    "Can you provide a thorough description of the this image? Please output with interleaved segmentation "
    "masks for the corresponding phrases.",
    "Please describe in detail the contents of the image. Please respond with interleaved segmentation masks "
    "for the corresponding parts of the answer.",
    "Could you give a comprehensive explanation of what can be found within this picture? Please output with "
    "interleaved segmentation masks for the corresponding phrases.",
    "Could you give me an elaborate explanation of this picture? Please respond with interleaved segmentation "
    "masks for the corresponding phrases.",
    "Could you provide me with a detailed analysis of this photo? Please output with interleaved segmentation "
    "masks for the corresponding parts of the answer.",
)
REGION_QUESTION = "Can you provide me with a detailed description of the region in the picture marked by region{i} {tok}?"
PLACES = ("on the left", "on the right", "at the top", "at the bottom", "in the middle", "near the corner")
SIZES = ("small", "large", "big", "tiny")
OTHER = ("What colour is the {x}?", "How many shapes are there?", "Is there a {x}?", "What is at ({a}, {b})?",
         "Describe the box {a},{b},{c},{d}.", "Describe region {n}.", "Segment everything.", "Caption this image.")


def _thing(rng):
    return f"{rng.choice(COLOURS)} {rng.choice(SHAPES)}"


def _caption(rng, grounded):
    parts = []
    for k in range(rng.randint(1, 4)):
        phrase = f"{rng.choice(('a', 'the', 'one'))} {rng.choice(SIZES + ('',))} {_thing(rng)}".replace("  ", " ")
        words = f"<p> {phrase.capitalize() if k == 0 else phrase} </p> [SEG]" if grounded else phrase
        parts.append(f"{words} {rng.choice(PLACES)}")
    return ", ".join(parts) + "."


def texts(n: int = 3000, seed: int = 0):
    """n chat turns as the model reads them: template, question, answer (added tokens included)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rng.randrange(5)
        if kind == 0:
            x = _thing(rng)
            q, a = rng.choice(SEG_QUESTIONS).format(x=x), f"<p> {x.capitalize()} </p> [SEG]."
        elif kind == 1:
            q, a = rng.choice(GCG_QUESTIONS), _caption(rng, True)
        elif kind == 2:
            i = rng.randint(1, 5)
            q = REGION_QUESTION.format(i=i, tok=rng.choice(("<region>", "<mark>")))
            a = f"region{i} is a {_thing(rng)} {rng.choice(PLACES)}."
        elif kind == 3:
            marks = ", ".join(f"Mark {i} <mark>" for i in range(1, rng.randint(2, 4)))
            q, a = f"There are some marks: {marks}.\nWhat are they?", _caption(rng, False).capitalize()
        else:
            q = rng.choice(OTHER).format(x=_thing(rng), n=rng.randint(1, 12),
                                         **{k: rng.randint(0, 1023) for k in "abcd"})
            a = _caption(rng, False).capitalize()
        out.append(f"<|im_start|>user\n<image>\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n")
    return out
