import io
import math

import onnx
import pytest
import torch

from omg_llava.config import get_config
from omg_llava.decoder import predicted_block
from omg_llava.segmenter import OmgSeg


def _mems(out):
    return [out["mem0"], out["mem1"], out["mem2"]]


def _prompts(S):
    points = torch.tensor([[10.0, 20.0], [0.0, 0.0], [60.0, 70.0]])
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [40.0, 8.0, 70.0, 100.0], [0.0, 0.0, 1.0, 1.0]])
    regions = torch.zeros(3, S, S)
    regions[2, 30:80, 40:90] = 1
    return points, boxes, regions, torch.tensor([0, 1, 2])


@pytest.mark.parametrize("name", ["tiny-random", "nano"])
def test_image_pass_shapes(name):
    cfg = get_config(name)
    seg = OmgSeg(cfg).eval()
    S, C, Q, M = cfg.image_size, cfg.decoder_dim, cfg.num_queries, cfg.mask_size
    with torch.no_grad():
        out = seg(torch.randn(1, 3, S, S), all_predictions=True)
    L0, L1, L2 = cfg.memory_sizes
    assert out["mask_features"].shape == (1, C, M, M)
    assert [tuple(out[f"mem{i}"].shape) for i in range(3)] == [(1, C, L0, L0), (1, C, L1, L1), (1, C, L2, L2)]
    assert out["clip_feature"].shape == (1, cfg.clip_channels, L0, L0)
    assert out["query_feat"].shape == out["query_pos"].shape == (1, Q, C)
    assert out["class_logits"].shape == (1, Q, cfg.num_classes + 1)
    assert out["mask_logits"].shape == (1, Q, M, M)
    assert len(out["predictions"]) == cfg.decoder_layers + 1
    assert torch.allclose(out["predictions"][-1][0], out["class_logits"]) and out["predictions"][0][0].shape == (1, Q, cfg.num_classes + 1)
    assert torch.all(out["class_logits"][..., -1] == 0)  # zero background row
    assert out["class_logits"].abs().max() <= 100.004  # exp(4.6052) * cosine


def test_upstream_parameter_names(tiny_seg):
    keys = set(OmgSeg(tiny_seg.cfg, llm_decoder=True).state_dict())
    expected = ["backbone.stem.0.weight", "backbone.stem.1.weight", "backbone.layer2.downsample.0.weight",
                "backbone.layer4.downsample.1.weight", "backbone.layer1.blocks.0.conv_dw.weight",
                "backbone.layer3.blocks.0.gamma", "backbone.layer1.blocks.0.mlp.fc2.bias",
                "panoptic_head.pixel_decoder.input_convs.2.gn.weight", "panoptic_head.pixel_decoder.level_encoding.weight",
                "panoptic_head.pixel_decoder.encoder.layers.0.self_attn.sampling_offsets.weight",
                "panoptic_head.pixel_decoder.encoder.layers.0.ffn.layers.0.0.weight",
                "panoptic_head.pixel_decoder.encoder.layers.0.norms.1.bias",
                "panoptic_head.pixel_decoder.lateral_convs.0.conv.weight", "panoptic_head.pixel_decoder.output_convs.0.gn.bias",
                "panoptic_head.pixel_decoder.mask_feature.weight",
                "panoptic_head.transformer_decoder.layers.2.cross_attn.attn.in_proj_weight",
                "panoptic_head.transformer_decoder.layers.0.self_attn.attn.out_proj.bias",
                "panoptic_head.transformer_decoder.layers.0.ffn.layers.1.weight",
                "panoptic_head.transformer_decoder.layers.0.norms.2.weight", "panoptic_head.transformer_decoder.post_norm.weight",
                "panoptic_head.query_feat.weight", "panoptic_head.query_embed.weight", "panoptic_head.level_embed.weight",
                "panoptic_head.mask_embed.4.weight", "panoptic_head.cls_proj.4.weight", "panoptic_head.mask_pooling_proj.1.weight",
                "panoptic_head.iou_embed.4.bias", "panoptic_head.mask_tokens.weight", "panoptic_head.pb_embedding.weight",
                "panoptic_head.pos_linear.weight", "panoptic_head.transformer_decoder_llm.layers.0.norms.0.weight",
                "panoptic_head.mask_embed_llm.0.weight"]
    assert [k for k in expected if k not in keys] == []
    assert "backbone.layer1.downsample.0.weight" not in keys
    assert not any("cls_embed" in k or "key_pos" in k for k in keys)  # non-persistent buffers


def test_fully_blocked_rows_are_unblocked(tiny_seg):
    head = tiny_seg.panoptic_head
    logits = torch.full((2, 3, 32, 32), 5.0)
    logits[0, 1] = -5.0  # query 1 of batch 0 blocked everywhere
    logits[1, 2, :16] = -5.0  # half blocked: stays as predicted
    mask = head.attention_mask(logits, 0, predicted_block).reshape(2, head.heads, 3, -1)
    assert not mask[0, :, 1].any()
    expected_half = torch.nn.functional.interpolate(logits[1:, 2:], size=head.sizes[0], mode="bilinear").flatten() < 0
    assert mask[1, :, 2].eq(expected_half).all() and mask[1, :, 2].any()
    assert not mask[:, :, 0].any()


def test_box_and_region_block_rules(tiny_seg):
    head, S = tiny_seg.panoptic_head, tiny_seg.cfg.image_size  # S = 128, level 0 is 4 x 4
    points, boxes, regions, kinds = _prompts(S)
    block = head.prompt_block(boxes, regions, kinds)(torch.full((3, 1, 4, 4), 10.0), 0)[:, 0]
    # box (40, 8, 70, 100) / 128 on 4x4: sx = floor(1.25) = 1, sy = 0, ex = floor(2.19 + 1) = 3, ey = floor(3.125 + 1) = 4
    expected_box = torch.ones(4, 4, dtype=torch.bool)
    expected_box[0:4, 1:3] = False
    assert torch.equal(block[1], expected_box)
    assert not block[0].any()  # a point follows the prediction only
    # region rows/cols 30:80 and 40:90 sampled at floor(dst * 32) = 0, 32, 64, 96
    expected_region = torch.ones(4, 4, dtype=torch.bool)
    expected_region[1:3, 2:3] = False
    assert torch.equal(block[2], expected_region)


def test_prompt_queries(tiny_seg):
    from omg_llava.positional import coordinate_to_encoding
    head, S = tiny_seg.panoptic_head, tiny_seg.cfg.image_size
    points, boxes, regions, kinds = _prompts(S)
    q_feat, q_pos = head.prompt_queries(points, boxes, kinds)
    centre = torch.tensor([55.0, 54.0])
    xy = torch.stack([points[0], centre, points[2]]) / S
    cxcywh = torch.cat([xy, torch.full_like(xy, 6 / S)], -1).clamp(1e-5, 1 - 1e-5)
    assert torch.allclose(q_pos, head.pos_linear(coordinate_to_encoding(cxcywh, q_pos.shape[-1])), atol=1e-5)
    assert torch.allclose(q_feat, (head.pb_embedding.weight[0] + head.mask_tokens.weight[0]).expand(3, -1))


def test_prompts_decode_independently(tiny_seg, tiny_image_pass):
    out, S = tiny_image_pass, tiny_seg.cfg.image_size
    points, boxes, regions, kinds = _prompts(S)
    with torch.no_grad():
        q, q_pos, masks = tiny_seg.decode_prompts(out["mask_features"], _mems(out), points, boxes, regions, kinds)
        assert q.shape == q_pos.shape == (3, tiny_seg.cfg.decoder_dim) and masks.shape == (3, 1, S // 4, S // 4)
        for i in range(3):
            one = tiny_seg.decode_prompts(out["mask_features"], _mems(out), points[i:i + 1], boxes[i:i + 1], regions[i:i + 1], kinds[i:i + 1])
            assert torch.allclose(one[0], q[i:i + 1], atol=1e-5) and torch.allclose(one[2], masks[i:i + 1], atol=1e-4)
        stages = tiny_seg.decode_prompts(out["mask_features"], _mems(out), points, boxes, regions, kinds, all_predictions=True)[2]
        assert len(stages) == tiny_seg.cfg.decoder_layers + 1 and torch.equal(stages[-1], masks)
        assert not torch.isnan(masks).any()


def test_decode_seg_uses_the_llm_copy_when_present(tiny_cfg, tiny_image_pass):
    out = tiny_image_pass
    torch.manual_seed(0)
    seg = OmgSeg(tiny_cfg, llm_decoder=True).eval()
    head = seg.panoptic_head
    q_feat0, q_pos = torch.randn(2, tiny_cfg.decoder_dim), torch.randn(2, tiny_cfg.decoder_dim)
    with torch.no_grad():
        head.transformer_decoder_llm.load_state_dict(head.transformer_decoder.state_dict())
        head.mask_embed_llm.load_state_dict(head.mask_embed.state_dict())
        same = seg.decode_seg(q_feat0, q_pos, out["mask_features"], _mems(out))
        main = head.decode(q_feat0[:, None], q_pos[:, None], out["mask_features"], _mems(out))[1][-1][1]
        assert torch.allclose(same, main)
        head.mask_embed_llm[4].bias += 1.0
        assert not torch.allclose(seg.decode_seg(q_feat0, q_pos, out["mask_features"], _mems(out)), main)


class _Graph(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def _export(fn, module, args, names_in, names_out, dynamic):
    graph = _Graph(fn)
    graph.module = module  # registers the parameters
    buf = io.BytesIO()
    torch.onnx.export(graph, args, buf, opset_version=17, input_names=names_in, output_names=names_out, dynamic_axes=dynamic)
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    return model


def test_onnx_export(tiny_seg, tiny_image_pass):
    out, S = tiny_image_pass, tiny_seg.cfg.image_size
    mems = _mems(out)
    vision_out = ["mask_features", "mem0", "mem1", "mem2", "clip_feature", "query_feat", "query_pos", "class_logits", "mask_logits"]
    model = _export(lambda x: tuple(tiny_seg(x)[k] for k in vision_out), tiny_seg, (torch.randn(1, 3, S, S),),
                    ["pixel_values"], vision_out, None)
    assert "GridSample" in {n.op_type for n in model.graph.node}
    points, boxes, regions, kinds = _prompts(S)
    n = {0: "N"}
    _export(lambda mf, m0, m1, m2, p, b, r, k: tiny_seg.decode_prompts(mf, [m0, m1, m2], p, b, r, k), tiny_seg,
            (out["mask_features"], *mems, points, boxes, regions, kinds),
            ["mask_features", "mem0", "mem1", "mem2", "points", "boxes", "regions", "kinds"], ["q", "q_pos", "mask_logits"],
            {"points": n, "boxes": n, "regions": n, "kinds": n, "q": n, "q_pos": n, "mask_logits": n})
    _export(lambda qf, qp, mf, m0, m1, m2: tiny_seg.decode_seg(qf, qp, mf, [m0, m1, m2]), tiny_seg,
            (torch.randn(2, 32), torch.randn(2, 32), out["mask_features"], *mems),
            ["q_feat0", "q_pos", "mask_features", "mem0", "mem1", "mem2"], ["mask_logits"],
            {"q_feat0": n, "q_pos": n, "mask_logits": n})


def test_class_head_formula(tiny_cfg):
    head = OmgSeg(tiny_cfg).panoptic_head
    torch.manual_seed(3)
    K1, P, D = tiny_cfg.num_classes, tiny_cfg.class_synonyms, tiny_cfg.clip_dim
    head.set_class_embeddings(torch.nn.functional.normalize(torch.randn(K1, P, D), dim=-1))
    z, mask_features = torch.randn(1, 2, tiny_cfg.decoder_dim), torch.randn(1, tiny_cfg.decoder_dim, 8, 8)
    mask_logits = torch.randn(1, 2, 8, 8)
    with torch.no_grad():
        logits = head.classify(z, mask_features, mask_logits)
        fg = mask_logits[0, 1] > 0
        pooled = mask_features[0][:, fg].sum(-1) / (fg.sum() + 1e-8)  # average over the binary mask
        e = head.cls_proj(head.mask_pooling_proj(pooled) + z[0, 1])
        cos = (head.cls_embed @ (e / e.norm())).max(-1).values  # [K-1], best synonym
    assert torch.allclose(logits[0, 1, :-1], math.exp(4.6052) * cos, atol=1e-4) and logits[0, 1, -1] == 0


def test_empty_region_prompt_stays_finite(tiny_seg, tiny_image_pass):
    out, S = tiny_image_pass, tiny_seg.cfg.image_size
    with torch.no_grad():  # every cell blocked at every stage: the fully-blocked-row rule avoids a NaN softmax
        q, _, masks = tiny_seg.decode_prompts(out["mask_features"], _mems(out), torch.zeros(1, 2), torch.zeros(1, 4),
                                              torch.zeros(1, S, S), torch.tensor([2]))
    assert torch.isfinite(q).all() and torch.isfinite(masks).all()
