"""OMG-LLaVA: the OMG-Seg visual encoder, projectors and the InternLM2 decoder, one method per bundle graph.

Attribute names give upstream state-dict keys: `visual_encoder.*`, `projector.model.*`,
`projector_text2vision.model.*`, `llm.model.*` / `llm.output.*` (LoRA merged, peft prefix dropped).
"""
import torch
from torch import nn

from .config import Config
from .llm import InternLM2
from .prior import Projector, TextToVision, perception_prior
from .segmenter import OmgSeg


def has_llm_decoder(keys) -> bool:
    """Whether state-dict keys (ours, or a task checkpoint's) carry the task-specific [SEG] decoder copy."""
    return any(".transformer_decoder_llm." in k for k in keys)


class OmgLlava(nn.Module):
    def __init__(self, cfg: Config, llm_decoder: bool = False):
        super().__init__()
        if cfg.llm.vocab_rows <= 0:
            raise ValueError("cfg.llm.vocab_rows is not set: take it from the tokenizer (Tokenizer.vocab_rows)")
        self.cfg = cfg
        self.visual_encoder = OmgSeg(cfg, llm_decoder)
        self.projector = nn.ModuleDict({"model": Projector(cfg)})
        self.projector_text2vision = TextToVision(cfg)
        self.llm = InternLM2(cfg.llm)

    @classmethod
    def random(cls, cfg: Config, seed: int):
        """Randomly initialised model (PyTorch default init, seeded)."""
        torch.manual_seed(seed)
        return cls(cfg).eval()

    def vision(self, pixel_values):
        """pixel_values [1,3,S_in,S_in] -> dict: mask_features, mem0..2, clip_feature, query_feat, query_pos,
        class_logits, mask_logits (bundle.md graph 1)."""
        return self.visual_encoder(pixel_values)

    def prior(self, clip_feature, query_feat, query_pos, class_logits, mask_logits):
        """-> (pixel_tokens [P,D], separator [1,D], object_tokens [Q,D], object_valid [Q] bool) (graph 2)."""
        return perception_prior(clip_feature, query_feat, query_pos, class_logits, mask_logits, self.projector["model"])

    def prompt(self, mask_features, mem0, mem1, mem2, points, boxes, regions, kinds):
        """points [N,2], boxes [N,4] (S_in space), regions [N,S_in,S_in], kinds [N] -> prompt_embeds [N,D] (graph 3)."""
        q_final, q_pos, _ = self.visual_encoder.decode_prompts(mask_features, [mem0, mem1, mem2], points, boxes, regions, kinds)
        return self.projector["model"].embed_queries(torch.cat([q_final, q_pos], -1))

    def embed(self, input_ids):
        """input_ids [B,T] int64 -> inputs_embeds [B,T,D] (graph 4)."""
        return self.llm.model.tok_embeddings(input_ids)

    def seg(self, seg_hidden, mask_features, mem0, mem1, mem2):
        """seg_hidden [N,D] (post-norm [SEG] states) -> mask_logits [N,1,M,M] (graph 6)."""
        C = self.cfg.decoder_dim
        h = self.projector_text2vision(seg_hidden)  # [N,2C] = [query content, query position]
        return self.visual_encoder.decode_seg(h[:, :C], h[:, C:], mask_features, [mem0, mem1, mem2])
