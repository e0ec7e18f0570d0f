"""What every training stage shares: atomic checkpoints (a killed run resumes from its last good state), the run
log, the learning-rate schedule, a step count that fits a time budget, and the command-line options."""
import math
import os
import time

import torch

# A --minutes budget times steps SKIP..SKIP+TIMING (the first ones run slow: workers starting, kernels loading) for
# a first step count, within any warmup, then counts again from each next TIMING steps until REFIT of the budget has
# passed (a run can stay slow longer: stage 2 over a 7 GB cache ran 2 s a step until step 50, then 0.57 s, and a
# count fixed at step 30 ended it after 27 of its 75 minutes). Early in the cosine the lr barely moves with the count.
SKIP_STEPS, TIMING_STEPS, REFIT = 10, 20, 0.1


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


class StepBudget:
    """The number of steps of a run: given, or as many as fit in `minutes` at the speed of the latest timed steps,
    counted in the schedule's warmup and again until REFIT of the budget has passed."""

    def __init__(self, steps, minutes, step, log):
        # A resumed run may be past --steps already; with a time budget it still runs until the budget fixes its end.
        provisional = max(steps, step + SKIP_STEPS + TIMING_STEPS + 1) if minutes is not None else steps
        self.steps, self.minutes, self.log = provisional, minutes, log
        self.first, self.started, self.fitting = step, time.time(), minutes is not None

    def after(self, step):
        if not self.fitting:
            return self.steps
        now, since = time.time(), step - self.first - SKIP_STEPS
        if since == 0:
            self.timed = now
        elif since > 0 and since % TIMING_STEPS == 0:
            per_step = (now - self.timed) / TIMING_STEPS
            self.steps = step + int((self.minutes * 60 - (now - self.started)) / per_step)
            self.fitting = now - self.started < REFIT * self.minutes * 60
            if since == TIMING_STEPS or not self.fitting:
                fixed = "" if self.fitting else " (fixed)"
                self.log(f"{self.minutes} min at {per_step:.3f}s/step: {self.steps} steps{fixed}")
            self.timed = now
        return self.steps


def add_run_options(ap, steps, batch, lr, save_every, warmup=50, timed=True):
    ap.add_argument("--steps", type=int, default=steps)
    if timed:
        ap.add_argument("--minutes", type=float, help="instead of --steps: as many steps as fit in this time")
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--save-every", type=int, default=save_every)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader processes rendering scenes")
    # measured: 2 threads spin against the other jobs on a shared 2-core box and run ~10x slower than 1
    ap.add_argument("--threads", type=int, default=1)
