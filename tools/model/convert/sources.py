"""Reading the released checkpoint files into flat {name: float tensor} dicts."""
import json
import struct
from pathlib import Path

import numpy as np
import torch

_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64, "I32": np.int32}


def load_torch(path) -> dict:
    """A torch checkpoint: a state dict, {'state_dict': ...} (mmengine), or a bare tensor (returned as {'': t})."""
    obj = torch.load(path, map_location="cpu")
    if torch.is_tensor(obj):
        return {"": obj}
    return dict(obj.get("state_dict", obj))


def load_safetensors(path) -> dict:
    """A .safetensors file, read directly (8-byte header length, JSON header, raw little-endian data)."""
    data = Path(path).read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    body = memoryview(data)[8 + header_len:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=_SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
        if info["dtype"] == "BF16":  # bfloat16 = the top half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(array.copy())
    return out


def load_hf_folder(folder, log=print):
    """A Hugging Face model folder -> (config.json dict, state dict of every shard, tokenizer.model bytes)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    shards = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not shards:
        raise FileNotFoundError(f"{folder}: no *.safetensors or *.bin weight shards")
    state = {}
    for i, shard in enumerate(shards, start=1):
        log(f"  reading {shard.name} ({i}/{len(shards)}, {shard.stat().st_size / 2**30:.1f} GiB)")
        part = load_safetensors(shard) if shard.suffix == ".safetensors" else load_torch(shard)
        state.update({k: v.float() for k, v in part.items()})
    return config, state, (folder / "tokenizer.model").read_bytes()
