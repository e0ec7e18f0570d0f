"""Tensors as JSON ({dtype, shape, b64 little-endian}), the format of golden.json and of run_onnx.mjs."""
import base64
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

DTYPES = {"float32": np.float32, "int64": np.int64, "uint8": np.uint8, "bool": np.bool_}


def as_numpy(array) -> np.ndarray:
    return np.asarray(array.detach().cpu() if hasattr(array, "detach") else array)


def to_json(array) -> dict:
    """numpy or torch array -> {dtype, shape, b64}; bool is stored as uint8."""
    a = as_numpy(array)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if a.dtype.name not in DTYPES:
        raise TypeError(f"unsupported dtype {a.dtype}")
    data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
    return {"dtype": a.dtype.name, "shape": list(a.shape), "b64": base64.b64encode(data).decode()}


def from_json(t: dict) -> np.ndarray:
    dtype = np.dtype(DTYPES[t["dtype"]]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(t["b64"]), dtype=dtype).reshape(t["shape"]).astype(DTYPES[t["dtype"]])


def run_onnxruntime(model_path, feeds: dict) -> dict:
    """Run `model_path` in onnxruntime-node (export/run_onnx.mjs) on numpy/torch `feeds`; returns numpy outputs."""
    script = Path(__file__).with_name("run_onnx.mjs")
    with tempfile.TemporaryDirectory() as tmp:
        feeds_path, out_path = Path(tmp) / "feeds.json", Path(tmp) / "out.json"
        feeds = {k: as_numpy(v) for k, v in feeds.items()}
        payload = {k: to_json(v) | ({"dtype": "bool"} if v.dtype == np.bool_ else {}) for k, v in feeds.items()}
        feeds_path.write_text(json.dumps(payload))
        run = subprocess.run(["node", str(script), str(model_path), str(feeds_path), str(out_path)],
                             capture_output=True, text=True, timeout=300)
        if run.returncode != 0:
            raise RuntimeError(f"onnxruntime-node failed on {model_path}: {run.stderr.strip()}")
        return {k: from_json(v) for k, v in json.loads(out_path.read_text()).items()}
