"""The nano recipe end to end at toy sizes: two steps of each stage, and the result loads into OmgLlava."""
import shutil
from dataclasses import replace

import numpy as np
import torch

from export.bundle import load_tokenizer, write_bundle
from omg_llava.config import LlmConfig, get_config
from omg_llava.model import OmgLlava
from scenes import make_scene
from scenes.texts import gcg, region
from train import assemble, cache, classes, data, from_bundle, ownership, precompute, runs, stage1, stage2
from train.cache import load_cache
from train.losses import cell_owners, match, ownership_loss
from train.runs import SKIP_STEPS, TIMING_STEPS, StepBudget
from train.sequences import IMAGE_ID, conversation_ids

_, TOK = load_tokenizer()
CFG = get_config("nano", image_size=64, backbone_dims=(8, 8, 8, 16), backbone_depths=(1, 1, 1, 1), decoder_dim=16,
                 num_heads=2, norm_groups=4, pixel_decoder_layers=1, pixel_decoder_ffn=32, decoder_layers=3,
                 decoder_ffn=32, num_queries=6, clip_dim=8,
                 llm=LlmConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, head_dim=16,
                               intermediate_size=64, vocab_rows=TOK.vocab_rows))


def test_two_steps_of_each_stage_load_into_omg_llava(tmp_path):
    torch.set_num_threads(1)
    run = str(tmp_path)
    stage1.train(CFG, run, steps=2, batch=2, warmup=1, save_every=1)
    classes.train(CFG, run, steps=1, batch=2)
    ownership.train(CFG, run, steps=2, batch=2, warmup=1, save_every=1)
    precompute.precompute(CFG, run, scenes=3, batch=2)
    stage2.train(CFG, TOK, run, steps=2, batch=2, warmup=1, save_every=1)
    model = OmgLlava(CFG)
    model.load_state_dict(assemble.assemble(run, CFG), strict=True)
    log = (tmp_path / "stage1.log").read_text()
    assert log.count("stage1 done") == log.count("ownership done") == 1
    assert torch.load(tmp_path / "stage1.pt")["ownership_steps"] == 2


def test_ownership_trains_the_backbone_only_when_whole(tmp_path):
    torch.set_num_threads(1)
    run = str(tmp_path)
    stage1.train(CFG, run, steps=1, batch=2, warmup=1)
    backbone = lambda: torch.cat([p.flatten() for p in precompute.load_segmenter(run, CFG).backbone.parameters()])
    before = backbone()
    ownership.train(CFG, run, steps=1, batch=2, warmup=1)
    assert torch.equal(backbone(), before)
    ownership.train(CFG, run, steps=1, batch=2, warmup=1, whole=True, twins=0.5)
    assert not torch.equal(backbone(), before)


def test_twin_sampling_draws_scenes_with_two_shapes_of_one_colour_and_keeps_those_that_have_them():
    plain = [data.train_scene(i, CFG, np.random.default_rng(i)) for i in range(12)]
    twins = [data.train_scene(i, CFG, np.random.default_rng(i), twins=1.0) for i in range(12)]
    assert all(data.has_twins(s) for s in twins) and not all(data.has_twins(s) for s in plain)
    kept = [(p, t) for p, t in zip(plain, twins) if data.has_twins(p)]
    assert kept and all(np.array_equal(np.asarray(p.image), np.asarray(t.image)) for p, t in kept)


def test_a_cached_ownership_run_moves_the_decoder_alone_and_a_refresh_equals_a_new_precompute(tmp_path):
    torch.set_num_threads(1)
    run = str(tmp_path)
    stage1.train(CFG, run, steps=1, batch=2, warmup=1)
    precompute.precompute(CFG, run, scenes=3, batch=2)
    before = precompute.load_segmenter(run, CFG).state_dict()
    ownership.train(CFG, run, steps=2, batch=2, warmup=1, cached=True)
    after = precompute.load_segmenter(run, CFG).state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved and not any(k.startswith(ownership.FROZEN) for k in moved)
    stale = {k: v.clone() for k, v in load_cache(run).items()}
    precompute.refresh(CFG, run, batch=2)
    refreshed = load_cache(run)
    shutil.rmtree(cache.folder(run))
    precompute.precompute(CFG, run, scenes=3, batch=2)
    fresh = load_cache(run)
    tensors = list(fresh)
    assert set(tensors) >= {"query_feat", "class_logits", "mask_logits", "prompt_q", "best_query"}
    # the cache keeps pixel-decoder outputs in float16, so the refreshed decoder outputs differ by rounding only
    assert all(torch.allclose(refreshed[k].float(), fresh[k].float(), atol=2e-2) for k in tensors)
    assert not torch.allclose(stale["query_feat"], fresh["query_feat"], atol=2e-2)


def test_a_cache_grown_in_two_runs_equals_one_made_at_once(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    run = str(tmp_path)
    stage1.train(CFG, run, steps=1, batch=2, warmup=1)
    monkeypatch.setattr(precompute, "CHUNK", 2)
    precompute.precompute(CFG, run, scenes=5, batch=2)
    (tmp_path / "stage2.log").unlink()
    once = {k: v.clone() for k, v in load_cache(run).items()}
    shutil.rmtree(cache.folder(run))
    precompute.precompute(CFG, run, scenes=2, batch=2)
    with open(tmp_path / cache.FOLDER / "query_feat", "ab") as f:
        f.write(b"left by a run killed midway")
    precompute.precompute(CFG, run, scenes=5, batch=2)
    precompute.precompute(CFG, run, scenes=4, batch=2)   # fewer than it holds: nothing to do
    grown = load_cache(run)
    assert cache.scene_count(run) == 5 and set(grown) == set(once)
    assert all(torch.equal(grown[k], once[k]) for k in once)
    assert (tmp_path / "stage2.log").read_text().count("precomputed") == 3   # 2, then 4 and 5


def test_answers_are_the_only_targets_and_decode_exactly():
    scene, rng = make_scene(2, max_side=128), np.random.default_rng(0)
    for sample in (gcg(scene, rng), region(scene, rng, follow_up=True)):
        ids, target = conversation_ids(TOK, sample)
        assert ids.count(IMAGE_ID) == 1 and ids[0] == TOK.bos_id
        answers = TOK.decode([i for i, t in zip(ids, target) if t])
        assert answers == "".join(a + "<|im_end|>" for _, a in sample.turns)


def test_matching_pairs_each_target_with_its_best_query():
    targets = torch.zeros(2, 3, 8, 8)                    # two images, up to 3 objects
    targets[0, 0, :4], targets[0, 1, 4:], targets[1, 0, :, :4] = 1, 1, 1
    logits = torch.full((2, 3, 8, 8), -5.0)
    logits[0, 2, 4:], logits[0, 0, :4] = 5, 5           # image 0: query 2 predicts target 1, query 0 target 0
    logits[1, 1, :, :4] = 5                             # image 1: query 1 predicts its only target
    labels = torch.tensor([[0, 1, -1], [2, -1, -1]])    # -1: padding, never matched
    b, q, k = match(torch.zeros(2, 3, 3), logits, labels, targets)
    assert sorted(zip(b.tolist(), k.tolist(), q.tolist())) == [(0, 0, 0), (0, 1, 2), (1, 0, 1)]


def test_every_object_owns_a_cell_and_empty_cells_have_no_owner():
    targets = torch.zeros(1, 3, 8, 8)                    # 2 x 2 cells of 4 x 4 mask pixels
    targets[0, 0, :, :4] = 1                             # object 0: the left half (cells 0 and 2)
    targets[0, 1, 3, 3] = 1                              # object 1: one pixel in cell 0, which object 0 covers more
    assert cell_owners(targets, 2).tolist() == [[1, -1, 0, -1]]   # object 2 is padding


def test_ownership_loss_wants_the_matched_query_on_top_of_each_cell():
    targets = torch.zeros(1, 2, 8, 8)
    targets[0, 0, :4, :4] = 1                            # one object, in cell 0
    pairs = torch.tensor([[0], [2], [0]])                # matched to query 2 of 3
    right = torch.full((1, 3, 4), 0.1)
    right[0, 2] = 0.9                                    # query 2 tops every cell
    wrong = right.clone()
    wrong[0, 0, 0] = 0.95                                # an unmatched query tops the object's cell
    assert ownership_loss(right, targets, pairs) + 0.1 < ownership_loss(wrong, targets, pairs)


def test_ownership_loss_weighs_a_small_objects_lost_cell_above_one_of_a_large_objects():
    targets = torch.zeros(1, 2, 8, 8)                    # 2 x 2 cells of 4 x 4 mask pixels
    targets[0, 0, :, :4], targets[0, 0, :4, 4:] = 1, 1   # object 0: cells 0, 1 and 2
    targets[0, 1, 5:, 5:] = 1                            # object 1: cell 3 alone
    pairs = torch.tensor([[0, 0], [0, 1], [0, 1]])       # object k matched to query k, of 3
    right = torch.full((1, 3, 4), 0.1)
    right[0, 0, :3], right[0, 1, 3] = 0.9, 0.9
    small_lost, large_lost = right.clone(), right.clone()
    small_lost[0, 2, 3] = 0.95                           # an unmatched query tops the small object's only cell
    large_lost[0, 2, 0] = 0.95                           # ... or one of the large object's three
    assert ownership_loss(large_lost, targets, pairs) + 0.1 < ownership_loss(small_lost, targets, pairs)


def test_a_run_seeded_from_a_bundle_holds_its_weights_and_trains_on(tmp_path):
    torch.set_num_threads(1)
    original = OmgLlava.random(CFG, seed=3)
    write_bundle(original, load_tokenizer()[0], tmp_path / "bundle", name="toy", description="", source=[], verify=False)
    run = str(tmp_path / "run")
    from_bundle.seed_run(tmp_path / "bundle", run, CFG)
    seeded = OmgLlava(CFG).eval()
    seeded.load_state_dict(assemble.assemble(run, CFG), strict=True)
    llm_side = {k: v for k, v in original.state_dict().items() if not k.startswith("visual_encoder.")}
    assert all(torch.equal(v, seeded.state_dict()[k]) for k, v in llm_side.items())
    pixel = torch.randn(1, 3, CFG.image_size, CFG.image_size)
    with torch.no_grad():  # folded sums (a prompt kind's row plus the mask token) keep only the sum: compare outputs
        want, got = original.vision(pixel), seeded.vision(pixel)
    assert all(torch.allclose(want[k], got[k], atol=1e-6) for k in want)
    precompute.precompute(CFG, run, scenes=3, batch=2)
    stage2.train(CFG, TOK, run, steps=1, batch=2, warmup=1, save_every=1, resume=True)
    trained = assemble.assemble(run, CFG)
    moved = [k for k, v in seeded.state_dict().items() if not torch.equal(v, trained[k])]
    assert moved and not any(k.startswith("visual_encoder.") for k in moved)


def test_a_seg_decoder_copy_starts_as_the_frozen_decoder_trains_alone_and_comes_back_from_its_bundle(tmp_path):
    torch.set_num_threads(1)
    write_bundle(OmgLlava.random(CFG, seed=3), load_tokenizer()[0], tmp_path / "bundle", name="toy", description="",
                 source=[], verify=False)
    run = str(tmp_path / "run")
    from_bundle.seed_run(tmp_path / "bundle", run, CFG)
    precompute.precompute(CFG, run, scenes=3, batch=2)
    stage2.train(CFG, TOK, run, steps=1, batch=2, lr=0.0, warmup=1, save_every=1, resume=True, seg_decoder=True)
    copied = assemble.assemble(run, CFG)
    head = "visual_encoder.panoptic_head."
    pairs = [(k, k.replace("transformer_decoder_llm.", "transformer_decoder.").replace("mask_embed_llm.", "mask_embed."))
             for k in copied if k.startswith(from_bundle.SEG_DECODER)]
    assert len(pairs) == len([k for k in copied if k.startswith((head + "transformer_decoder.", head + "mask_embed."))])
    assert all(torch.equal(copied[k], copied[frozen]) for k, frozen in pairs)

    # the copy is kept (six steps: twelve conversations, enough to hold a [SEG] that trains it)
    stage2.train(CFG, TOK, run, steps=6, batch=2, lr=1e-3, warmup=1, save_every=1, resume=True)
    trained = assemble.assemble(run, CFG)
    assert all(torch.equal(trained[frozen], copied[frozen]) for _, frozen in pairs)
    assert any(not torch.equal(trained[k], copied[k]) for k, _ in pairs)
    model = OmgLlava(CFG, llm_decoder=True).eval()
    model.load_state_dict(trained, strict=True)
    write_bundle(model, load_tokenizer()[0], tmp_path / "bundle2", name="toy", description="", source=[], verify=False)
    from_bundle.seed_run(tmp_path / "bundle2", str(tmp_path / "run2"), CFG)
    side = torch.load(tmp_path / "run2" / "stage2.pt")["model"]
    assert all(torch.equal(side[k], trained[k]) for k, _ in pairs)


def test_a_timed_run_resumed_past_its_step_default_runs_until_its_budget_is_timed():
    budget = StepBudget(steps=50, minutes=1, step=100, log=lambda _: None)
    assert budget.steps > 100 + SKIP_STEPS + TIMING_STEPS
    assert StepBudget(steps=50, minutes=None, step=100, log=print).steps == 50


def test_a_timed_run_that_stays_slow_past_its_timed_steps_still_fills_its_budget(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(runs.time, "time", lambda: clock[0])
    budget, step, steps = StepBudget(steps=50, minutes=20, step=0, log=lambda _: None), 0, 50
    while step < steps:
        clock[0] += 2.0 if step < 50 else 0.5   # slow until step 50, as stage 2 over a large cache
        step += 1
        steps = budget.after(step)
    assert 0.9 * 1200 < clock[0] <= 1200   # a count fixed from steps 10-30 alone would end near 400 s


def test_token_orders_list_the_shapes_by_their_tokens_and_need_exactly_one_token_of_its_class_for_each(monkeypatch):
    cfg = get_config("nano")
    # In these scenes (3, 4 and 4 shapes, two of them twins) every shape covers a centre of the 8x8 prior grid, so
    # each owns a cell; elsewhere a small shape may own none.
    scenes = [precompute.stage2_scene(s, cfg) for s in (1, 4, 5)]
    monkeypatch.setattr(stage2, "stage2_scene", lambda s, _: scenes[s])
    Q, K, M, L0 = cfg.num_queries, cfg.num_classes, cfg.mask_size, cfg.memory_sizes[0]
    records = {"class_logits": torch.full((3, Q, K + 1), -5.0), "mask_logits": torch.full((3, Q, M, M), -20.0),
               "clip_feature": torch.zeros(3, cfg.clip_dim, L0, L0), "best_query": torch.zeros(3, 4, dtype=torch.long)}
    for s, scene in enumerate(scenes):   # query n-1-i segments object i as its class; the other queries see nothing
        n = len(scene.objects)
        for i, (o, m) in enumerate(zip(scene.objects, data.target_masks(scene.masks, M))):
            records["class_logits"][s, n - 1 - i, cfg.class_names.index(o.name)] = 5.0
            records["mask_logits"][s, n - 1 - i] = torch.where(m > 0.5, 10.0, -10.0)
            records["best_query"][s, i] = n - 1 - i
    reverse = [list(range(len(scene.objects)))[::-1] for scene in scenes]
    assert stage2.token_orders(cfg, records) == reverse
    records["class_logits"][1, 0] = records["class_logits"][1, 0].roll(1)          # one token of the wrong class
    records["mask_logits"][2, 0] = -20.0                                            # one shape without a token
    assert stage2.token_orders(cfg, records) == [reverse[0], None, None]
