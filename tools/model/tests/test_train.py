"""The nano recipe end to end at toy sizes: two steps of each stage, and the result loads into OmgLlava."""
from dataclasses import replace

import numpy as np
import torch

from export.bundle import load_tokenizer
from omg_llava.config import LlmConfig, get_config
from omg_llava.model import OmgLlava
from scenes import make_scene
from scenes.texts import gcg, region
from train import assemble, classes, precompute, stage1, stage2
from train.losses import match
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
    precompute.precompute(CFG, run, scenes=3, batch=2)
    stage2.train(CFG, TOK, run, steps=2, batch=2, warmup=1, save_every=1)
    model = OmgLlava(CFG)
    model.load_state_dict(assemble.assemble(run, CFG), strict=True)
    assert (tmp_path / "stage1.log").read_text().count("stage1 done") == 1


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
