"""Questions and answers about a scene, for every task, in the upstream formats (omg-llava.md section 10).

A `Sample` is one conversation about one scene: its turns (question, answer) without the `<image>\\n`
prefix or the chat template (the trainer adds those), the visual prompts in order of appearance,
and the object index behind each `[SEG]` in the answers, in order. Captions and GCG answers list the
shapes in `scene.order` (left to right unless set), so they are a function of the scene. Referring
expressions that would be ambiguous (two objects of one colour and shape) get a position word ("left
red circle") or are skipped.
"""
from dataclasses import dataclass, field

import numpy as np

from omg_llava.config import COLOURS, SHAPES

NUMBERS = ("no", "one", "two", "three", "four")

# Upstream SEG_QUESTIONS (referring_seg_process.py); {x} is the lower-cased expression.
SEG_QUESTIONS = (
    "Can you segment the {x} in this image?",
    "Please segment {x} in this image.",
    "What is {x} in this image? Please respond with segmentation mask.",
    "What is {x} in this image? Please output segmentation mask.",
    "Could you provide a segmentation mask for the {x} in this image?",
    "Please identify and segment the {x} in this image.",
    "Where is the {x} in this picture? Please respond with a segmentation mask.",
    "Can you highlight the {x} in this image with a segmentation mask?",
)
REFER_EVAL_QUESTION = "Please segment the {x} in this image."   # the form the service sends

# Upstream GCG_QUESTIONS (gcg_process.py), verbatim.
GCG_QUESTIONS = (
    "Could you please give me a detailed description of the image? Please respond with interleaved segmentation masks for the corresponding parts of the answer.",
    "Can you provide a thorough description of the this image? Please output with interleaved segmentation masks for the corresponding phrases.",
    "Please describe in detail the contents of the image. Please respond with interleaved segmentation masks for the corresponding parts of the answer.",
    "Could you give a comprehensive explanation of what can be found within this picture? Please output with interleaved segmentation masks for the corresponding phrases.",
    "Could you give me an elaborate explanation of this picture? Please respond with interleaved segmentation masks for the corresponding phrases.",
    "Could you provide me with a detailed analysis of this photo? Please output with interleaved segmentation masks for the corresponding parts of the answer.",
)

CAPTION_QUESTIONS = (
    "Could you please give me a detailed description of the image?",
    "Please describe this picture.",
    "Describe the image.",
    "What is in this image?",
    "Can you describe the shapes in this picture?",
)

# Region wording of section 10.4; {r} is "region1 <region>" or "region1 <mark>".
REGION_QUESTIONS = (
    "Can you provide me with a detailed description of the region in the picture marked by {r}?",
    "What is in the region marked by {r}?",
    "Please describe {r} in the image.",
    "What shape is in {r}?",
)
REGION_SEG_QUESTION = "Please segment the region1."
REGION_SEG_ANSWER = "<p> Region1 </p> [SEG]."


@dataclass
class Prompt:
    kind: str          # "point" (<mark>), "box" or "mask" (<region>)
    obj: int           # index of the object it marks
    point: tuple = None   # (x, y) pixels, point prompts
    box: tuple = None     # (x1, y1, x2, y2) pixels, box prompts; mask prompts use scene.masks[obj]


@dataclass
class Sample:
    task: str
    turns: list                                      # [(question, answer)]
    prompts: list = field(default_factory=list)      # Prompt, in order of appearance
    seg_objects: list = field(default_factory=list)  # object index per [SEG], in order


def pick(rng, options):
    return options[rng.integers(len(options))]


def article(phrase):
    return "an" if phrase[0] in "aeiou" else "a"


def plural(n, word):
    return f"{NUMBERS[n]} {word}" + ("" if n == 1 else "s")


def there_are(n, word):
    return f"There {'is' if n == 1 else 'are'} {plural(n, word)}"


def listing(scene):
    """The order captions and GCG answers name the objects in."""
    if scene.order is not None:
        return scene.order
    return sorted(range(len(scene.objects)), key=lambda i: scene.objects[i].centre[0])


def join_list(items):
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def referring_name(scene, i):
    """"red circle", "left red circle" when one other object shares colour and shape, else None."""
    obj = scene.objects[i]
    twins = [j for j, o in enumerate(scene.objects) if o.name == obj.name and j != i]
    if not twins:
        return obj.name
    if len(twins) > 1:
        return None
    w, h = scene.size
    other = scene.objects[twins[0]]
    dx, dy = obj.centre[0] - other.centre[0], obj.centre[1] - other.centre[1]
    if abs(dx) >= 0.1 * w and abs(dx) >= abs(dy):
        return ("left " if dx < 0 else "right ") + obj.name
    if abs(dy) >= 0.1 * h:
        return ("top " if dy < 0 else "bottom ") + obj.name
    return None


def caption_text(scene):
    names = [scene.objects[i].name for i in listing(scene)]
    return f"{there_are(len(names), 'shape')}: {join_list([f'{article(n)} {n}' for n in names])}."


def caption(scene, rng):
    return Sample("caption", [(pick(rng, CAPTION_QUESTIONS), caption_text(scene))])


def gcg(scene, rng, question=None):
    order = listing(scene)
    parts = [f"{article(scene.objects[i].name)} <p> {scene.objects[i].name} </p> [SEG]" for i in order]
    answer = f"{there_are(len(order), 'shape')}: {join_list(parts)}."
    return Sample("gcg", [(question or pick(rng, GCG_QUESTIONS), answer)], seg_objects=order)


# The (attribute, value) of every count question a scene can be asked; () counts all shapes.
COUNT_QUESTIONS = ((),) + tuple(("shape", s) for s in SHAPES) + tuple(("colour", c) for c in COLOURS)


def count_of(scene, attribute=None, value=None):
    return len(scene.objects) if attribute is None else sum(getattr(o, attribute) == value for o in scene.objects)


# Wordings of the count, colour and shape questions; the first is the one evaluation and the test fixtures ask, and
# stage 2 rewords half of its questions into one of the others (`reworded`), so the model also answers them as people
# type them (before, "How many shapes are there?" got "There are no purple shapes.").
COUNT_WORDINGS = {
    None: ("How many shapes are there in this image?", "How many shapes are there?", "How many shapes can you see?",
           "How many objects are in the picture?", "How many shapes are in this image?", "Count the shapes in this image."),
    "shape": ("How many {v}s are there?", "How many {v}s are there in this image?", "How many {v}s can you see?",
              "How many {v}s are in the picture?", "Count the {v}s."),
    "colour": ("How many {v} shapes are there?", "How many {v} shapes are in this image?", "How many {v} objects are there?",
               "How many {v} things can you see?", "Count the {v} shapes."),
}
COLOUR_WORDINGS = ("What {spelling} is the {shape}?", "What is the colour of the {shape}?", "What is the color of the {shape}?",
                   "Which colour is the {shape}?", "What color does the {shape} have?")
SHAPE_WORDINGS = ("What shape is the {colour} object?", "What shape is the {colour} one?",
                  "What is the shape of the {colour} object?", "Which shape is {colour}?")


def count_turn(scene, attribute=None, value=None):
    """(question, answer) counting all shapes, or the objects whose `attribute` ("shape" or "colour") is `value`."""
    n = count_of(scene, attribute, value)
    word = "shape" if attribute is None else value if attribute == "shape" else f"{value} shape"
    return COUNT_WORDINGS[attribute][0].format(v=value), there_are(n, word) + "."


def count_many_turns(scene):
    """Every count of two or more the scene offers (all shapes, each repeated shape and colour), for evaluation:
    count() draws from six colours, so most of its answers are none or one."""
    turns = [count_turn(scene)] if len(scene.objects) > 1 else []
    for attribute in ("shape", "colour"):
        values = [getattr(o, attribute) for o in scene.objects]
        turns += [count_turn(scene, attribute, v) for v in sorted(set(values)) if values.count(v) > 1]
    return turns


def count(scene, rng):
    """A count of all shapes, of one shape or of one colour (of six, so most answers are none or one)."""
    kind = rng.integers(3)
    if kind == 0:
        return Sample("count", [count_turn(scene)])
    attribute, names = ("shape", SHAPES) if kind == 1 else ("colour", COLOURS)
    return Sample("count", [count_turn(scene, attribute, names[rng.integers(len(names))])])


def balanced_count(scene, rng):
    """A count whose answer is drawn evenly from the numbers the scene offers (none, one, two...): trained on count()
    alone, whose answers are mostly none or one, the model answered "one" for most pairs."""
    by_number = {}
    for question in COUNT_QUESTIONS:
        by_number.setdefault(count_of(scene, *question), []).append(question)
    numbers = sorted(by_number)
    questions = by_number[numbers[rng.integers(len(numbers))]]
    return Sample("balanced_count", [count_turn(scene, *questions[rng.integers(len(questions))])])


def colour_question(scene, rng):
    """Colour of the only object of some shape; None when every shape is repeated."""
    shapes = [o.shape for o in scene.objects]
    unique = [o for o in scene.objects if shapes.count(o.shape) == 1]
    if not unique:
        return None
    obj = unique[rng.integers(len(unique))]
    spelling = "color" if rng.random() < 0.5 else "colour"
    question = COLOUR_WORDINGS[0].format(spelling=spelling, shape=obj.shape)
    return Sample("colour", [(question, f"The {obj.shape} is {obj.colour}.")])


def shape_question(scene, rng):
    """Shape of the only object of some colour; None when every colour is repeated."""
    colours = [o.colour for o in scene.objects]
    unique = [o for o in scene.objects if colours.count(o.colour) == 1]
    if not unique:
        return None
    obj = unique[rng.integers(len(unique))]
    question = SHAPE_WORDINGS[0].format(colour=obj.colour)
    return Sample("shape", [(question, f"The {obj.colour} object is {article(obj.shape)} {obj.shape}.")])


def relation(scene, rng):
    """A yes/no question on left/right or above/below between two nameable, well separated objects."""
    w, h = scene.size
    pairs = []
    for i in range(len(scene.objects)):
        for j in range(len(scene.objects)):
            a, b = referring_name(scene, i), referring_name(scene, j)
            if i == j or a is None or b is None:
                continue
            ca, cb = scene.objects[i].centre, scene.objects[j].centre
            if abs(ca[0] - cb[0]) >= 0.15 * w:
                pairs.append((a, b, "to the left of", "to the right of", ca[0] < cb[0]))
            if abs(ca[1] - cb[1]) >= 0.15 * h:
                pairs.append((a, b, "above", "below", ca[1] < cb[1]))
    if not pairs:
        return None
    a, b, word, opposite, holds = pairs[rng.integers(len(pairs))]
    if rng.random() < 0.5:  # ask the opposite relation half of the time, so "No." is as common as "Yes."
        word, opposite, holds = opposite, word, not holds
    q = f"Is the {a} {word} the {b}?"
    answer = f"Yes, the {a} is {word} the {b}." if holds else f"No, the {a} is {opposite} the {b}."
    return Sample("relation", [(q, answer)])


def refer(scene, rng, i=None, eval_form=False):
    """Referring segmentation of object i (random nameable one by default); None if none is nameable."""
    names = {k: referring_name(scene, k) for k in range(len(scene.objects))}
    names = {k: v for k, v in names.items() if v is not None}
    if not names:
        return None
    if i is None:
        keys = sorted(names)
        i = keys[rng.integers(len(keys))]
    if i not in names:
        return None
    x = names[i]
    template = REFER_EVAL_QUESTION if eval_form else pick(rng, SEG_QUESTIONS)
    q = template.format(x=x if "the {x}" in template else f"the {x}")
    return Sample("refer", [(q, f"<p> {x.capitalize()} </p> [SEG].")], seg_objects=[i])


def interior_point(mask, rng):
    """A random pixel well inside the mask (among the innermost half), (x, y)."""
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean(), ys.mean()
    d = (xs - cx) ** 2 + (ys - cy) ** 2
    inner = np.nonzero(d <= np.quantile(d, 0.5))[0]
    k = inner[rng.integers(len(inner))]
    return int(xs[k]), int(ys[k])


def region(scene, rng, kind=None, i=None, follow_up=None):
    """Region caption from a point, box or mask prompt; optionally followed by "Please segment the region1."."""
    kind = kind or ("point", "box", "mask")[rng.integers(3)]
    i = int(rng.integers(len(scene.objects))) if i is None else i
    obj = scene.objects[i]
    if kind == "point":
        prompt, token = Prompt("point", i, point=interior_point(scene.masks[i], rng)), "<mark>"
    elif kind == "box":
        prompt, token = Prompt("box", i, box=obj.bbox), "<region>"
    else:  # masks feed <region> in upstream training, <mark> in its region-caption eval
        prompt, token = Prompt("mask", i), "<region>" if rng.random() < 0.7 else "<mark>"
    q = pick(rng, REGION_QUESTIONS).format(r=f"region1 {token}")
    turns = [(q, f"Region1 is {article(obj.name)} {obj.name}.")]
    seg = []
    if follow_up if follow_up is not None else rng.random() < 0.3:
        turns.append((REGION_SEG_QUESTION, REGION_SEG_ANSWER))
        seg = [i]
    return Sample("region", turns, [prompt], seg)


TASKS = {"caption": caption, "gcg": gcg, "count": count, "balanced_count": balanced_count, "colour": colour_question,
         "shape": shape_question, "relation": relation, "refer": refer, "region": region}


def multi_turn(scene, rng, turns=3):
    """Several prompt-free tasks asked in one conversation (region prompts stay single-turn: one region1)."""
    names = ["caption", "gcg", "count", "colour", "shape", "relation", "refer"]
    out = Sample("multi", [])
    while len(out.turns) < turns:
        s = TASKS[names[rng.integers(len(names))]](scene, rng)
        if s is not None:
            out.turns += s.turns
            out.seg_objects += s.seg_objects
    return out


def _rewordings():
    """Each first wording of a count, colour or shape question -> all its wordings."""
    families = ((COUNT_WORDINGS[None], [{}]), (COUNT_WORDINGS["shape"], [{"v": s} for s in SHAPES]),
                (COUNT_WORDINGS["colour"], [{"v": c} for c in COLOURS]),
                (COLOUR_WORDINGS, [{"spelling": sp, "shape": s} for s in SHAPES for sp in ("color", "colour")]),
                (SHAPE_WORDINGS, [{"colour": c} for c in COLOURS]))
    forms = [[t.format(**values) for t in templates] for templates, each in families for values in each]
    return {f[0]: f for f in forms}


REWORDINGS = _rewordings()


def reworded(sample, rng):
    """The sample with half of its count, colour and shape questions in another of their wordings."""
    turns = []
    for q, a in sample.turns:
        if q in REWORDINGS and rng.random() < 0.5:
            q = pick(rng, REWORDINGS[q][1:])
        turns.append((q, a))
    sample.turns = turns
    return sample


def random_sample(scene, rng, weights):
    """One training sample of a task drawn with `weights` {task: weight} (tasks that do not apply are redrawn), its
    questions reworded as people type them."""
    names = sorted(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    while True:
        name = names[rng.choice(len(names), p=p / p.sum())]
        s = multi_turn(scene, rng) if name == "multi" else TASKS[name](scene, rng)
        if s is not None:
            return reworded(s, rng)


def tokenizer_corpus(num_scenes=600, seed=10_000):
    """Representative text lines (questions and answers, special tokens included) for training the tokenizer."""
    from scenes.generate import make_scene
    lines = list(SEG_QUESTIONS) + list(GCG_QUESTIONS) + list(CAPTION_QUESTIONS) + [REGION_SEG_QUESTION, REGION_SEG_ANSWER]
    lines += [q.format(r=f"region1 {t}") for q in REGION_QUESTIONS for t in ("<region>", "<mark>")]
    for s in range(num_scenes):
        scene = make_scene(seed + s, max_side=128)
        rng = np.random.default_rng(seed + s)
        for task in TASKS.values():
            sample = task(scene, rng)
            if sample is not None:
                for q, a in sample.turns:
                    lines += [q, a]
    return lines
