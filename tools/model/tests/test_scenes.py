"""Scene generator and task texts: determinism, masks that agree with the object list, upstream formats."""
import collections
import re
from dataclasses import replace

import numpy as np

from omg_llava.config import SCENE_CLASSES
from scenes import make_scene
from scenes.generate import RGB
from scenes.texts import (COUNT_QUESTIONS, GCG_QUESTIONS, REGION_SEG_ANSWER, REWORDINGS, SEG_QUESTIONS, TASKS, Sample,
                          balanced_count, caption_text, colour_question, count_many_turns, count_turn, gcg, multi_turn,
                          random_sample, refer, referring_name, region, reworded, shape_question, tokenizer_corpus)

SEEDS = range(12)


def test_same_seed_same_scene():
    a, b = make_scene(5, max_side=128), make_scene(5, max_side=128)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert np.array_equal(a.masks, b.masks) and a.objects == b.objects
    assert a.objects != make_scene(6, max_side=128).objects or a.size != make_scene(6, max_side=128).size


def test_real_sizes_and_model_size():
    for s in SEEDS:
        w, h = make_scene(s).size
        assert 200 <= min(w, h) and max(w, h) <= 1200
        assert max(make_scene(s, max_side=96).size) == 96


def test_masks_match_objects():
    for s in SEEDS:
        scene = make_scene(s, max_side=160)
        n = len(scene.objects)
        assert 1 <= n <= 4 and scene.masks.shape == (n, scene.size[1], scene.size[0])
        assert scene.masks.sum(0).max() <= 1, "visible parts must not overlap"
        img = np.asarray(scene.image).astype(int)
        for m, obj in zip(scene.masks, scene.objects):
            ys, xs = np.nonzero(m)
            assert obj.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) and obj.area == m.sum()
            assert np.abs(img[m].mean(0) - RGB[obj.colour]).max() <= 13, "pixels under a mask have its colour"
            assert SCENE_CLASSES[obj.class_id] == obj.name


def test_texts_use_upstream_formats():
    for s in SEEDS:
        scene, rng = make_scene(s, max_side=128), np.random.default_rng(s)
        g = gcg(scene, rng)
        assert g.turns[0][0] in GCG_QUESTIONS
        phrases = re.findall(r"<p> (.*?) </p> \[SEG\]", g.turns[0][1])
        assert phrases == [scene.objects[i].name for i in g.seg_objects]
        assert sorted(g.seg_objects) == list(range(len(scene.objects)))
        assert re.sub(r"<p> | </p> \[SEG\]", "", g.turns[0][1]) == caption_text(scene)
        r = refer(scene, rng)
        if r is not None:
            name = referring_name(scene, r.seg_objects[0])
            assert r.turns[0][1] == f"<p> {name.capitalize()} </p> [SEG]."
            assert any(r.turns[0][0] == t.format(x=name if "the {x}" in t else f"the {name}") for t in SEG_QUESTIONS)


def test_lists_name_the_shapes_left_to_right_or_in_the_order_a_trainer_sets():
    scene = make_scene(4, max_side=128)
    left_to_right = sorted(range(4), key=lambda i: scene.objects[i].centre[0])
    assert gcg(scene, np.random.default_rng(0)).seg_objects == left_to_right
    order = [2, 0, 3, 1]
    ordered = replace(scene, order=order)
    assert gcg(ordered, np.random.default_rng(0)).seg_objects == order
    assert [o.name for o in scene.objects] == ["purple square", "blue triangle", "blue star", "orange star"]
    assert caption_text(ordered) == ("There are four shapes: a blue star, a purple square, an orange star and "
                                     "a blue triangle.")


def test_ambiguous_targets_are_disambiguated_or_skipped():
    for s in range(200):
        scene = make_scene(s, max_side=64)
        names = [referring_name(scene, i) for i in range(len(scene.objects))]
        given = [n for n in names if n is not None]
        assert len(given) == len(set(given))


def test_balanced_counts_answer_each_offered_number_about_equally_often():
    scene = make_scene(3, max_side=64, num_objects=4)
    rng = np.random.default_rng(0)
    answers = [balanced_count(scene, rng).turns[0] for _ in range(3000)]
    offered = {count_turn(scene, *q)[1] for q in COUNT_QUESTIONS}
    numbers = collections.Counter(a.split()[2] for _, a in answers)
    assert {a for _, a in answers} <= offered and len(numbers) == len({a.split()[2] for a in offered}) >= 3
    assert max(numbers.values()) < 1.2 * min(numbers.values())


def test_counts_of_many_ask_every_count_of_two_or_more():
    for seed in range(60):
        scene = make_scene(seed, max_side=64)
        asked = dict(count_many_turns(scene))
        n = len(scene.objects)
        assert ("How many shapes are there in this image?" in asked) == (n > 1)
        shapes, colours = [o.shape for o in scene.objects], [o.colour for o in scene.objects]
        for o in scene.objects:
            assert (f"How many {o.shape}s are there?" in asked) == (shapes.count(o.shape) > 1)
            assert (f"How many {o.colour} shapes are there?" in asked) == (colours.count(o.colour) > 1)
        words = {2: "two", 3: "three", 4: "four"}
        for question, answer in asked.items():
            assert any(f"There are {w} " in answer for w in words.values()), answer
        if n > 1:
            assert asked["How many shapes are there in this image?"] == f"There are {words[n]} shapes."


def test_region_prompts_mark_their_object():
    scene, rng = make_scene(3, max_side=128, num_objects=3), np.random.default_rng(0)
    for kind, token in (("point", "<mark>"), ("box", "<region>")):
        sample = region(scene, rng, kind=kind, i=1, follow_up=True)
        assert "region1 " + token in sample.turns[0][0]
        assert sample.turns[0][1] == f"Region1 is {'an' if scene.objects[1].colour == 'orange' else 'a'} {scene.objects[1].name}."
        assert sample.turns[1][1] == REGION_SEG_ANSWER and sample.seg_objects == [1]
    x, y = region(scene, rng, kind="point", i=1).prompts[0].point
    assert scene.masks[1][y, x]


def test_every_task_and_corpus():
    scene, rng = make_scene(1, max_side=128), np.random.default_rng(1)
    for name, task in TASKS.items():
        sample = task(scene, rng)
        assert sample is None or (sample.task == name and all(q and a for q, a in sample.turns))
    m = multi_turn(scene, rng)
    assert len(m.turns) >= 3 and sum(a.count("[SEG]") for _, a in m.turns) == len(m.seg_objects)
    lines = tokenizer_corpus(num_scenes=5)
    assert any("[SEG]" in l for l in lines) and any("<mark>" in l for l in lines)


def test_training_rewords_half_of_the_count_colour_and_shape_questions_and_keeps_their_answers():
    scene, rng = make_scene(3), np.random.default_rng(0)
    asked = [count_turn(scene, *q)[0] for q in COUNT_QUESTIONS]
    asked += [s.turns[0][0] for task in (colour_question, shape_question) for _ in range(20)
              if (s := task(scene, rng)) is not None]
    assert asked and all(q in REWORDINGS for q in asked)  # evaluation's wordings are the first ones
    assert count_turn(scene)[0] == "How many shapes are there in this image?"
    turns = [("How many stars are there?", "There is one star."), ("Please segment the red circle.", "<p> Red circle </p> [SEG].")]
    seen = collections.Counter()
    for seed in range(400):
        out = reworded(Sample("multi", list(turns)), np.random.default_rng(seed)).turns
        assert [a for _, a in out] == [a for _, a in turns] and out[1] == turns[1]
        assert out[0][0] in REWORDINGS["How many stars are there?"]
        seen[out[0][0]] += 1
    assert 150 < seen["How many stars are there?"] < 250 and len(seen) == len(REWORDINGS["How many stars are there?"])
    drawn = {q for _ in range(300) for q, _ in random_sample(scene, rng, {"count": 1, "colour": 1, "shape": 1}).turns}
    assert drawn - set(REWORDINGS)  # stage 2 sees the other wordings
