"""Upstream checkpoint keys -> `OmgLlava` state-dict keys (spec §11), accounting for every key.

Each source file has a rule that maps one of its keys to a target key, to a LoRA factor, or to an
explicit, documented ignore; a key no rule knows, a target we lack, a shape mismatch, or a model key
left unfilled is an error that names the keys.
"""
import re

IGNORE = "ignore"


def omg_seg_rule(key):
    """omg_seg_convl.pth (mmengine `state_dict`): `backbone.*`, `panoptic_head.*` under `visual_encoder.`."""
    if key.startswith(("backbone.head.", "backbone.norm_pre.", "data_preprocessor.")):
        return IGNORE  # CLIP head and pre-norm (unused at inference), mmdet preprocessor buffers
    if key.startswith(("backbone.", "panoptic_head.")):
        return "visual_encoder." + key
    return None


def open_clip_rule(key):
    """open_clip ConvNeXt-L: the visual trunk only; timm `stages.{k}` is our `layer{k+1}`."""
    if key.startswith("visual.trunk.stem."):
        return "visual_encoder.backbone.stem." + key[len("visual.trunk.stem."):]
    m = re.fullmatch(r"visual\.trunk\.stages\.(\d+)\.(.+)", key)
    if m:
        return f"visual_encoder.backbone.layer{int(m[1]) + 1}.{m[2]}"
    return IGNORE  # text tower, CLIP projection head, trunk head: not part of OMG-LLaVA's encoder


def internlm2_rule(key):
    """internlm2-chat-7b shards: the decoder layers and final norm."""
    if key in ("model.tok_embeddings.weight", "output.weight"):
        return IGNORE  # superseded by the finetune file's full matrices, which have the added tokens' rows
    if key.endswith(".rotary_emb.inv_freq"):
        return IGNORE  # recomputed from rope_theta
    if key.startswith("model."):
        return "llm." + key
    return None


FINETUNE_PREFIX = "llm.base_model.model."
FINETUNE_KEEP = ("projector.model.", "projector_text2vision.model.",
                 "visual_encoder.panoptic_head.transformer_decoder_llm.", "visual_encoder.panoptic_head.mask_embed_llm.")


def finetune_rule(key):
    """omg_llava_7b_finetune_8gpus.pth / task checkpoints: full embeddings and head, LoRA factors, projectors,
    and (task checkpoints) the [SEG] decoder copy. Returns a target, IGNORE, None, or ("lora", module, "A"|"B")."""
    if key.startswith(FINETUNE_PREFIX):
        rest = key[len(FINETUNE_PREFIX):]
        m = re.fullmatch(r"(.+)\.lora_([AB])\.default\.weight", rest)
        if m:
            return ("lora", m[1], m[2])
        if rest == "output.base_layer.weight":  # peft >= 0.7 names the wrapped head this way
            return "llm.output.weight"
        if rest in ("model.tok_embeddings.weight", "output.weight"):
            return "llm." + rest
        return None
    if key.startswith(FINETUNE_KEEP):
        return key
    return None


class ConversionError(ValueError):
    pass


def convert_state(targets: dict, sources: dict, lora_scale: float, log=print) -> dict:
    """Build our state dict.

    Arguments:
      targets: {our key: shape} of the model being filled.
      sources: {source name: (rule, state dict)}, applied in order; a target filled twice is an error.
      lora_scale: alpha / r; every LoRA pair is merged as W + lora_scale * B @ A.
    Returns: {our key: float32 tensor}, with exactly the keys of `targets`.
    """
    state, lora, errors = {}, {}, []
    for source, (rule, weights) in sources.items():
        for key, tensor in weights.items():
            target = rule(key)
            if target is None:
                errors.append(f"{source}: unknown key {key}")
            elif target == IGNORE:
                continue
            elif isinstance(target, tuple):
                lora.setdefault(target[1], {})[target[2]] = tensor.float()
            elif target not in targets:
                errors.append(f"{source}: {key} -> {target}, which the model does not have")
            elif target in state:
                errors.append(f"{source}: {key} -> {target}, already filled by another source")
            elif tuple(tensor.shape) != tuple(targets[target]):
                errors.append(f"{source}: {key} has shape {tuple(tensor.shape)}, {target} needs {tuple(targets[target])}")
            else:
                state[target] = tensor.float()
    for module, factors in lora.items():
        target = f"llm.{module}.weight"
        if set(factors) != {"A", "B"}:
            errors.append(f"LoRA {module}: only lora_{''.join(factors)}")
        elif target not in state:
            errors.append(f"LoRA {module}: no base weight {target}")
        else:
            delta = factors["B"] @ factors["A"]  # [out, r] @ [r, in]
            if delta.shape != state[target].shape:
                errors.append(f"LoRA {module}: B @ A has shape {tuple(delta.shape)}, {target} is {tuple(state[target].shape)}")
            else:
                state[target] = state[target] + lora_scale * delta
    errors += [f"missing: {k}" for k in targets if k not in state]
    if errors:
        raise ConversionError(f"{len(errors)} key problem(s):\n  " + "\n  ".join(errors))
    log(f"  mapped {len(state)} tensors, merged {len(lora)} LoRA pairs (scale {lora_scale})")
    return state
