"""Every size of an OMG-LLaVA model, and the three configs we build.

The TypeScript core reads sizes only from a bundle's manifest; this file is where
the manifest's numbers come from (see `manifest_config`).
"""
from dataclasses import dataclass, field, asdict


@dataclass(frozen=True)
class LlmConfig:
    hidden_size: int          # D
    num_layers: int           # N_L
    num_heads: int            # query heads
    num_kv_heads: int         # H_kv (GQA)
    head_dim: int             # D_h
    intermediate_size: int    # SwiGLU width
    vocab_rows: int           # V: rows of tok_embeddings and output (<mark> has none)
    rope_theta: float = 1_000_000.0
    rms_eps: float = 1e-5


@dataclass(frozen=True)
class Config:
    name: str
    image_size: int                  # S_in
    backbone_dims: tuple             # ConvNeXt stage widths; the last is F (clip_channels)
    backbone_depths: tuple
    decoder_dim: int                 # C
    num_heads: int                   # heads of deformable and decoder attention
    norm_groups: int                 # GroupNorm groups in the pixel decoder
    pixel_decoder_layers: int
    pixel_decoder_ffn: int
    deform_points: int
    decoder_layers: int              # a multiple of 3: the level cycle 0,1,2
    decoder_ffn: int
    num_queries: int                 # Q
    class_names: tuple               # num_classes names; background is the extra last logit
    clip_dim: int                    # width of the class (text) embeddings
    class_synonyms: int              # P: embeddings per class, max-pooled cosine
    llm: LlmConfig
    logit_scale: float = 4.6052      # exp() of it multiplies the cosine logits
    pad_color: tuple = (122, 116, 104)
    mean: tuple = (0.4814, 0.4578, 0.4082)
    std: tuple = (0.2686, 0.2613, 0.2757)

    @property
    def num_classes(self): return len(self.class_names)
    @property
    def mask_size(self): return self.image_size // 4                       # M
    @property
    def memory_sizes(self): return tuple(self.image_size // s for s in (32, 16, 8))  # L0, L1, L2
    @property
    def prior_grid(self): return self.image_size // 64                     # G
    @property
    def clip_channels(self): return self.backbone_dims[-1]                 # F


COCO_PANOPTIC_CLASSES = 133  # the real names come from the class-embedding file at conversion

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
SCENE_CLASSES = tuple(f"{c} {s}" for s in SHAPES for c in COLOURS)

CONFIGS = {
    "omg-llava-7b": Config(
        name="omg-llava-7b", image_size=1024,
        backbone_dims=(192, 384, 768, 1536), backbone_depths=(3, 3, 27, 3),
        decoder_dim=256, num_heads=8, norm_groups=32,
        pixel_decoder_layers=6, pixel_decoder_ffn=1024, deform_points=4,
        decoder_layers=9, decoder_ffn=2048, num_queries=300,
        class_names=tuple(f"class{i}" for i in range(COCO_PANOPTIC_CLASSES)),
        clip_dim=768, class_synonyms=1,
        llm=LlmConfig(hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=8, head_dim=128,
                      intermediate_size=14336, vocab_rows=92548),
    ),
    "tiny-random": Config(
        name="tiny-random", image_size=128,
        backbone_dims=(8, 16, 24, 32), backbone_depths=(1, 1, 1, 1),
        decoder_dim=32, num_heads=4, norm_groups=8,
        pixel_decoder_layers=1, pixel_decoder_ffn=64, deform_points=2,
        decoder_layers=3, decoder_ffn=64, num_queries=8,
        class_names=("circle", "square", "triangle", "star", "blob"),
        clip_dim=16, class_synonyms=2,
        llm=LlmConfig(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16,
                      intermediate_size=128, vocab_rows=0),  # vocab_rows set from the tokenizer
    ),
    "nano": Config(
        # 512, not 256 or 384: an 8 x 8 prior grid (cells of 64 px) gives more small shapes an object token of their own
        name="nano", image_size=512,
        backbone_dims=(24, 48, 96, 192), backbone_depths=(1, 1, 2, 1),
        decoder_dim=64, num_heads=4, norm_groups=16,
        pixel_decoder_layers=2, pixel_decoder_ffn=128, deform_points=4,
        decoder_layers=6, decoder_ffn=256, num_queries=16,
        class_names=SCENE_CLASSES,
        clip_dim=64, class_synonyms=1,
        # cosine x 30, not x 100: trained from scratch in minutes, x 100 sat at a hedge (all cosines ~0)
        logit_scale=3.4012,
        llm=LlmConfig(hidden_size=192, num_layers=4, num_heads=6, num_kv_heads=2, head_dim=32,
                      intermediate_size=512, vocab_rows=0),  # vocab_rows set from the tokenizer
    ),
}


def get_config(name: str, **overrides) -> Config:
    """A registered config, optionally with fields replaced (e.g. llm=... once the tokenizer is known)."""
    from dataclasses import replace
    if name not in CONFIGS:
        raise KeyError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    return replace(CONFIGS[name], **overrides)


def manifest_config(cfg: Config, tokens: dict, template: dict, generation: dict) -> dict:
    """The `config` block of manifest.json (bundle.md)."""
    return {
        "image_size": cfg.image_size, "mask_size": cfg.mask_size, "memory_sizes": list(cfg.memory_sizes),
        "num_queries": cfg.num_queries, "decoder_dim": cfg.decoder_dim,
        "num_classes": cfg.num_classes, "class_names": list(cfg.class_names),
        "prior_grid": cfg.prior_grid, "clip_channels": cfg.clip_channels,
        "llm": {"hidden_size": cfg.llm.hidden_size, "num_layers": cfg.llm.num_layers,
                "num_kv_heads": cfg.llm.num_kv_heads, "head_dim": cfg.llm.head_dim,
                "vocab_rows": cfg.llm.vocab_rows},
        "preprocess": {"pad_color": list(cfg.pad_color), "mean": list(cfg.mean), "std": list(cfg.std),
                       "resample": "bicubic"},
        "tokens": tokens, "template": template, "generation": generation,
    }
