"""Checkpoint converter on a synthetic upstream checkpoint set: upstream key names and layouts at tiny sizes."""
import argparse
import json
import shutil
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch

from convert.__main__ import export, load_model
from convert.coco_classes import COCO_PANOPTIC
from convert.keys import FINETUNE_PREFIX, ConversionError
from convert.sources import load_safetensors
from export.tokenizer_samples import samples
from omg_llava.config import get_config
from omg_llava.model import OmgLlava
from omg_llava.tokenizer import Tokenizer, train_sentencepiece

LORA_R, LORA_ALPHA = 4, 2.0
PIECES = 400  # SentencePiece vocabulary; embedding rows = PIECES + 4
LORA_TARGETS = ("attention.wqkv", "attention.wo", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3")
TEXT = ["Please segment the red circle in this image.", "There are 3 shapes: 12 squares, 4 stars!",
        "Ünïcödé café 中文 and emoji 😀\n\ttabs", "  spaced   out  ", "region1 is a blue triangle at (10, 20)."] * 20


def to_open_clip(key):
    """Our backbone key (upstream OMG-Seg naming) -> the open_clip / timm name of the same weight."""
    rest = key[len("backbone."):]
    if rest.startswith("layer"):
        stage, rest = rest[len("layer"):].split(".", 1)
        return f"visual.trunk.stages.{int(stage) - 1}.{rest}"
    return "visual.trunk." + rest


def upstream_set(tmp, *, with_backbone=True):
    """Write a synthetic upstream checkpoint set into `tmp`.

    Returns (CLI args, expected state dict, class embeddings, SentencePiece model): the expected state is a seeded
    tiny model with a task [SEG] decoder; the base LLM weights are chosen so that base + LoRA gives it back."""
    sp_model = train_sentencepiece(iter(TEXT), PIECES)
    cfg = get_config("tiny-random")
    cfg = replace(cfg, llm=replace(cfg.llm, vocab_rows=PIECES + 4))
    torch.manual_seed(0)
    expected = OmgLlava(cfg, llm_decoder=True).state_dict()

    visual = {k[len("visual_encoder."):]: v for k, v in expected.items()
              if k.startswith("visual_encoder.") and "_llm." not in k}
    visual["backbone.head.proj.weight"] = torch.zeros(3, 3)  # unused CLIP head, as in upstream files
    open_clip = None
    if not with_backbone:
        open_clip = {to_open_clip(k): v for k, v in visual.items() if k.startswith("backbone.") and ".head." not in k}
        open_clip |= {"text_projection": torch.zeros(2, 2), "visual.head.proj.weight": torch.zeros(2, 2)}
        visual = {k: v for k, v in visual.items() if not k.startswith("backbone.")}
        torch.save(open_clip, tmp / "open_clip.bin")
    torch.save({"state_dict": visual, "meta": {}}, tmp / "omg_seg_convl.pth")

    # InternLM2 base: norms and pre-LoRA layer weights; embeddings and head with the base vocabulary only.
    base = {k[len("llm."):]: v for k, v in expected.items() if k.startswith("llm.model.layers.") or k == "llm.model.norm.weight"}
    base["model.tok_embeddings.weight"] = torch.randn(PIECES, cfg.llm.hidden_size)
    base["output.weight"] = torch.randn(PIECES, cfg.llm.hidden_size)
    base["model.layers.0.attention.rotary_emb.inv_freq"] = torch.ones(cfg.llm.head_dim // 2)
    finetune = {FINETUNE_PREFIX + "model.tok_embeddings.weight": expected["llm.model.tok_embeddings.weight"]}
    scale = LORA_ALPHA / LORA_R
    for name in [f"model.layers.{i}.{t}" for i in range(cfg.llm.num_layers) for t in LORA_TARGETS] + ["output"]:
        weight = expected[f"llm.{name}.weight"]
        A, B = torch.randn(LORA_R, weight.shape[1]), torch.randn(weight.shape[0], LORA_R)
        finetune[f"{FINETUNE_PREFIX}{name}.lora_A.default.weight"] = A
        finetune[f"{FINETUNE_PREFIX}{name}.lora_B.default.weight"] = B
        pre = weight - scale * B @ A
        if name == "output":
            finetune[FINETUNE_PREFIX + "output.base_layer.weight"] = pre  # peft >= 0.7 naming
        else:
            base[f"{name}.weight"] = pre
    finetune |= {k: v for k, v in expected.items() if k.startswith(
        ("projector", "visual_encoder.panoptic_head.transformer_decoder_llm.", "visual_encoder.panoptic_head.mask_embed_llm."))}
    torch.save(finetune, tmp / "finetuned_refseg.pth")

    hf = tmp / "internlm2-chat-7b"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({
        "hidden_size": cfg.llm.hidden_size, "num_hidden_layers": cfg.llm.num_layers,
        "num_attention_heads": cfg.llm.num_heads, "num_key_value_heads": cfg.llm.num_kv_heads,
        "intermediate_size": cfg.llm.intermediate_size, "rms_norm_eps": cfg.llm.rms_eps, "rope_theta": cfg.llm.rope_theta}))
    keys = sorted(base)  # two shards; norms in fp16 like a half-precision release
    torch.save({k: base[k].half() if k.endswith("norm.weight") else base[k] for k in keys[::2]}, hf / "pytorch_model-00001-of-00002.bin")
    torch.save({k: base[k] for k in keys[1::2]}, hf / "pytorch_model-00002-of-00002.bin")
    (hf / "tokenizer.model").write_bytes(sp_model)
    cls = torch.nn.functional.normalize(torch.randn(cfg.num_classes, 2, cfg.clip_dim), dim=-1)
    torch.save(cls, tmp / "classes.pth")
    args = argparse.Namespace(
        internlm2=str(hf), omg_seg=str(tmp / "omg_seg_convl.pth"), class_embeddings=str(tmp / "classes.pth"),
        finetune=str(tmp / "finetuned_refseg.pth"), open_clip=str(tmp / "open_clip.bin") if open_clip else None,
        class_names=None, config="tiny-random", lora_alpha=LORA_ALPHA, lora_r=LORA_R, out=str(tmp / "bundle"),
        name="converted", description="synthetic", licence="test", verify=False)
    return args, expected, cls, sp_model, base, finetune


def quiet(*_):
    pass


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_converts_every_key_and_the_bundle_runs(tmp_path):
    args, expected, cls, sp_model, base, finetune = upstream_set(tmp_path)
    args.verify = True  # every graph in onnxruntime-node vs PyTorch
    with torch.no_grad():
        model, tokenizer_json = load_model(args, log=quiet)
        export(args, model, tokenizer_json, log=quiet)
    state = model.state_dict()
    assert set(state) == set(expected)
    for k, v in expected.items():
        assert torch.allclose(state[k], v, atol=1e-5), k
    # LoRA merge against the direct computation, on the grouped wqkv and on the head
    A = finetune[f"{FINETUNE_PREFIX}model.layers.1.attention.wqkv.lora_A.default.weight"]
    B = finetune[f"{FINETUNE_PREFIX}model.layers.1.attention.wqkv.lora_B.default.weight"]
    direct = base["model.layers.1.attention.wqkv.weight"] + (LORA_ALPHA / LORA_R) * B @ A
    assert torch.equal(state["llm.model.layers.1.attention.wqkv.weight"], direct)
    assert torch.equal(model.visual_encoder.panoptic_head.cls_embed, cls)
    assert model.visual_encoder.has_llm_decoder
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["config"]["llm"]["vocab_rows"] == PIECES + 4 == manifest["config"]["tokens"]["mark"]
    assert json.loads((tmp_path / "bundle" / "tokenizer.json").read_text()) == tokenizer_json
    tok = Tokenizer(tokenizer_json)
    for sample in samples(tokenizer_json, sp_model):  # varied text, ids from SentencePiece itself
        assert tok.encode(sample["text"], sample["add_bos"]) == sample["ids"], sample["text"]


def test_backbone_from_open_clip_when_the_omg_seg_file_lacks_it(tmp_path):
    args, expected, *_ = upstream_set(tmp_path, with_backbone=False)
    with torch.no_grad():
        model, _ = load_model(args, log=quiet)
    key = "visual_encoder.backbone.layer3.blocks.0.conv_dw.weight"
    assert torch.equal(model.state_dict()[key], expected[key])


def test_unknown_and_missing_keys_are_errors(tmp_path):
    args, *_ = upstream_set(tmp_path)
    finetune = torch.load(args.finetune)
    finetune["llm.base_model.model.model.layers.0.attention.wqkv.magnitude"] = torch.zeros(1)
    del finetune["projector.model.seperate_embed.weight"]
    torch.save(finetune, args.finetune)
    with pytest.raises(ConversionError) as err:
        load_model(args, log=quiet)
    assert "unknown key llm.base_model.model.model.layers.0.attention.wqkv.magnitude" in str(err.value)
    assert "missing: projector.model.seperate_embed.weight" in str(err.value)


def test_safetensors_reader(tmp_path):
    values = np.array([[1.5, -2.0], [0.25, 3.0]], np.float32)
    tensors = {"f32": ("F32", values.tobytes()), "f16": ("F16", values.astype(np.float16).tobytes()),
               "bf16": ("BF16", (values.view(np.uint32) >> 16).astype(np.uint16).tobytes())}
    header, body, offset = {}, b"", 0
    for name, (dtype, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": [2, 2], "data_offsets": [offset, offset + len(data)]}
        body, offset = body + data, offset + len(data)
    raw = json.dumps(header).encode()
    (tmp_path / "x.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + body)
    loaded = load_safetensors(tmp_path / "x.safetensors")
    for name in tensors:
        assert np.array_equal(loaded[name].float().numpy(), values), name


def test_coco_panoptic_names():
    assert len(COCO_PANOPTIC) == 133 and len(set(COCO_PANOPTIC)) == 133
