"""Checkpoints and the run log: atomic saves so a killed run resumes from its last good state."""
import math
import os
import time

import torch


def save(path, **state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path):
    return torch.load(path, map_location="cpu") if os.path.exists(path) else None


class Log:
    """Appends timestamped lines to a file and echoes them."""

    def __init__(self, path):
        self.path = path

    def __call__(self, msg):
        line = time.strftime("%H:%M:%S ") + msg
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


def cosine_lr(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
