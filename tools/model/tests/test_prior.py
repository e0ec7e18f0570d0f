import pytest
import torch
import torch.nn.functional as F

from omg_llava.prior import Projector, TextToVision, perception_prior, prior_grid, space_to_depth


def _direct_grid(class_logits, mask_logits, S, G):
    """The literal upstream computation: M -> S bilinear, sigmoid, score scale, S -> G bilinear."""
    score = class_logits[0].softmax(-1)[:, :-1].max(-1).values
    p = (0.5 * score + 0.5)[:, None, None] * F.interpolate(mask_logits, size=(S, S), mode="bilinear", align_corners=False)[0].sigmoid()
    return F.interpolate(p[None], size=(G, G), mode="bilinear", align_corners=False)[0].flatten(1)


@pytest.mark.parametrize("S", [128, 256, 1024])
def test_prior_shortcut_equals_two_step_resize(S):
    torch.manual_seed(S)
    Q, M, G = 3, S // 4, S // 64
    class_logits, mask_logits = torch.randn(1, Q, 6), 4 * torch.randn(1, Q, M, M)
    direct = _direct_grid(class_logits, mask_logits, S, G)
    assert torch.allclose(prior_grid(class_logits, mask_logits, G), direct, atol=1e-6)
    # the naive single resize M -> G is measurably different: the test can tell the two apart
    naive = F.interpolate(mask_logits, size=(G, G), mode="bilinear", align_corners=False)[0].sigmoid().flatten(1)
    assert (naive * (0.5 * class_logits[0].softmax(-1)[:, :-1].max(-1).values + 0.5)[:, None] - direct).abs().max() > 1e-3


def test_space_to_depth_order():
    Fc, G = 3, 2
    x = torch.arange(Fc * 4 * G * G, dtype=torch.float32).reshape(1, Fc, 2 * G, 2 * G)
    y = space_to_depth(x)
    assert y.shape == (G * G, 4 * Fc)
    for i, j, rh, rw, c in [(0, 1, 1, 0, 2), (1, 0, 0, 1, 1), (1, 1, 1, 1, 0)]:
        assert y[i * G + j, (rh * 2 + rw) * Fc + c] == x[0, c, 2 * i + rh, 2 * j + rw]
    assert not torch.equal(y, F.pixel_unshuffle(x, 2)[0].flatten(1).T)  # not PyTorch's channel-major order


def test_perception_prior_outputs(tiny_cfg, tiny_image_pass):
    torch.manual_seed(0)
    projector, out = Projector(tiny_cfg), tiny_image_pass
    with torch.no_grad():
        pixel_tokens, sep, objects, valid = perception_prior(out["clip_feature"], out["query_feat"], out["query_pos"],
                                                             out["class_logits"], out["mask_logits"], projector)
        P, D, Q = tiny_cfg.prior_grid ** 2, tiny_cfg.llm.hidden_size, tiny_cfg.num_queries
        assert pixel_tokens.shape == (P, D) and sep.shape == (1, D) and objects.shape == (Q, D)
        grid = prior_grid(out["class_logits"], out["mask_logits"], tiny_cfg.prior_grid)
        owners = set(grid.argmax(0).tolist())
        assert valid.dtype == torch.bool and valid.tolist() == [q in owners for q in range(Q)]
        qp = torch.cat([out["query_feat"][0], out["query_pos"][0]], -1)
        assert torch.allclose(objects, projector.model(projector.query_proj(qp)))
        soft = torch.einsum("qp,qc->pc", grid.softmax(0), qp)  # softmax over queries, per cell
        feat = torch.cat([space_to_depth(out["clip_feature"]), soft], -1)
        assert torch.allclose(pixel_tokens, projector.model_feat(feat), atol=1e-5)


def test_text_to_vision_shape(tiny_cfg):
    assert TextToVision(tiny_cfg)(torch.randn(3, tiny_cfg.llm.hidden_size)).shape == (3, 2 * tiny_cfg.decoder_dim)


def test_upstream_parameter_names(tiny_cfg):
    keys = set(Projector(tiny_cfg).state_dict()) | {f"t2v.{k}" for k in TextToVision(tiny_cfg).state_dict()}
    for k in ["query_proj.weight", "model.0.weight", "model.2.bias", "model_feat.0.weight", "model_feat.2.weight",
              "seperate_embed.weight", "t2v.model.0.weight", "t2v.model.2.bias"]:
        assert k in keys
