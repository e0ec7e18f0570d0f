"""The stage-2 cache on disk: a folder with one raw array file per record (scenes first) and cache.json, which
gives the scene count and each record's dtype and per-scene shape.

Loading maps the files into memory, so the cache may outgrow RAM (3.5 MB a scene at 512 px), and precompute grows
it by appending, so a long precompute resumes where it stopped.
"""
import json
import os

import numpy as np
import torch

FOLDER = "stage2_cache"


def folder(run):
    return os.path.join(run, FOLDER)


def read_meta(run):
    path = os.path.join(folder(run), "cache.json")
    if not os.path.exists(path):
        return {"config": None, "scenes": 0, "records": {}}
    with open(path) as f:
        return json.load(f)


def scene_count(run):
    return read_meta(run)["scenes"]


def load_cache(run, names=None, writable=False):
    """{name: [scenes, ...] tensor} mapped from the files; in-place changes reach the files only when `writable`."""
    meta = read_meta(run)
    if not meta["scenes"]:
        raise FileNotFoundError(f"no stage-2 cache in {folder(run)}: run train.precompute first")
    mode = "r+" if writable else "c"
    return {name: torch.from_numpy(np.memmap(os.path.join(folder(run), name), dtype=meta["records"][name]["dtype"],
                                             mode=mode, shape=(meta["scenes"], *meta["records"][name]["shape"])))
            for name in names or meta["records"]}


def append_cache(run, config, records):
    """Append {name: [n, ...] tensor} (every record, one n) of the segmenter of config `config` to run's cache."""
    os.makedirs(folder(run), exist_ok=True)
    meta = read_meta(run)
    arrays = {name: value.numpy() for name, value in records.items()}
    layout = {name: {"dtype": str(a.dtype), "shape": list(a.shape[1:])} for name, a in arrays.items()}
    if meta["scenes"] and (meta["config"], meta["records"]) != (config, layout):
        raise ValueError(f"{folder(run)} holds other records or another config ({meta['config']}) than these")
    for name, a in arrays.items():
        with open(os.path.join(folder(run), name), "ab") as f:
            f.truncate(meta["scenes"] * a[0].nbytes)   # drops what an append killed midway left
            a.tofile(f)
    meta = {"config": config, "scenes": meta["scenes"] + len(next(iter(arrays.values()))), "records": layout}
    tmp = os.path.join(folder(run), "cache.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, os.path.join(folder(run), "cache.json"))
