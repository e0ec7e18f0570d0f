"""OMG-Seg, the frozen visual encoder of OMG-LLaVA (spec omg-llava.md §4, §7, §9.3).

Three stateless entry points, one per use: the image pass (`forward`, whose decoder half is `decode_image`),
visual prompts (`decode_prompts`) and `[SEG]` decoding (`decode_seg`). Each decodes a batch independently;
prompts and [SEG] use Q = 1.
"""
from torch import nn

from .convnext import ConvNeXt
from .decoder import PanopticHead


def _last_or_all(predictions, all_predictions):
    masks = [mask_logits for _, mask_logits in predictions]
    return masks if all_predictions else masks[-1]


class OmgSeg(nn.Module):
    def __init__(self, cfg, llm_decoder=False):
        super().__init__()
        self.cfg = cfg
        self.backbone = ConvNeXt(cfg)
        self.panoptic_head = PanopticHead(cfg, llm_decoder)

    @property
    def has_llm_decoder(self):
        return hasattr(self.panoptic_head, "transformer_decoder_llm")

    def forward(self, pixel_values, all_predictions=False):
        """pixel_values [B,3,S_in,S_in] -> dict of the vision graph's outputs (bundle.md, where B = 1)."""
        feats = self.backbone(pixel_values)  # [c2, c3, c4, c5]
        mask_features, mems = self.panoptic_head.pixel_decoder(feats)
        # the batch from the input, not from mask_features: traced from an inner tensor, every shape stays dynamic
        return self.decode_image(mask_features, mems, feats[3], pixel_values.shape[0], all_predictions)

    def decode_image(self, mask_features, mems, clip_feature, B, all_predictions=False):
        """The panoptic queries of B images over their pixel-decoder outputs; training reruns it alone over cached
        features when only the decoder changes."""
        head = self.panoptic_head
        query_pos = head.query_embed.weight[None].expand(B, -1, -1)  # [B,Q,C]
        # class logits of earlier stages only matter for training (all_predictions)
        q, predictions = head.decode(head.query_feat.weight[None].expand(B, -1, -1), query_pos, mask_features, mems, with_classes=all_predictions)
        mask_logits = predictions[-1][1]
        class_logits = head.classify(head.transformer_decoder.post_norm(q), mask_features, mask_logits)
        out = dict(mask_features=mask_features, mem0=mems[0], mem1=mems[1], mem2=mems[2], clip_feature=clip_feature,
                   query_feat=q, query_pos=query_pos, class_logits=class_logits, mask_logits=mask_logits)
        if all_predictions:
            out["predictions"] = predictions
        return out

    def decode_prompts(self, mask_features, mems, points, boxes, regions, kinds, all_predictions=False):
        """points [N,2], boxes [N,4], regions [N,S_in,S_in], kinds [N] (0 point, 1 box, 2 mask)
        -> (q_final [N,C] raw layer output, q_pos [N,C], mask_logits [N,1,M,M] or the list of all stages)."""
        head = self.panoptic_head
        q_feat0, q_pos = head.prompt_queries(points, boxes, kinds)
        block = head.prompt_block(boxes, regions, kinds)
        q, predictions = head.decode(q_feat0[:, None], q_pos[:, None], mask_features, mems, block)
        return q[:, 0], q_pos, _last_or_all(predictions, all_predictions)

    def decode_seg(self, q_feat0, q_pos, mask_features, mems, all_predictions=False):
        """q_feat0, q_pos [N,C] (from projector_text2vision) -> mask_logits [N,1,M,M] or the list of all stages."""
        head = self.panoptic_head
        _, predictions = head.decode(q_feat0[:, None], q_pos[:, None], mask_features, mems, use_llm=self.has_llm_decoder)
        return _last_or_all(predictions, all_predictions)
