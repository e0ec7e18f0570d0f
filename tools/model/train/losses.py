"""Mask2Former-style set losses over a batch of images: Hungarian matching, class cross-entropy, mask BCE and dice.

Per-object tensors are padded to a fixed count; a label of -1 marks padding (the first n entries are real)."""
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

CLASS_WEIGHT, BCE_WEIGHT, DICE_WEIGHT = 4.0, 5.0, 5.0   # class above Mask2Former's 2.0: classes lag masks in a short run
BACKGROUND_WEIGHT = 0.1   # most queries match nothing; keep them from drowning the real classes


def dice_loss(logits, targets):
    """logits, targets [N,M,M] -> [N] (soft targets allowed)."""
    p = logits.sigmoid().flatten(1)
    t = targets.flatten(1)
    return 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)


def mask_loss(logits, targets):
    """BCE + dice, weighted, averaged over N masks: logits, targets [N,M,M] -> scalar."""
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).mean(1)
    return (BCE_WEIGHT * bce + DICE_WEIGHT * dice_loss(logits, targets)).mean()


@torch.no_grad()
def match(class_logits, mask_logits, labels, targets):
    """class_logits [B,Q,K], mask_logits [B,Q,M,M], labels [B,N], targets [B,N,M,M]
    -> (image, query, target) index tensors of the matched pairs."""
    B, Q, _ = class_logits.shape
    prob = class_logits.softmax(-1).gather(2, labels.clamp(min=0)[:, None].expand(-1, Q, -1))   # [B,Q,N]
    x = mask_logits.flatten(2)                                                    # [B,Q,MM]
    t = targets.flatten(2).transpose(1, 2)                                       # [B,MM,N]
    # BCE of every query against every target: softplus(-x) where t = 1, softplus(x) where t = 0
    bce = (F.softplus(-x) @ t + F.softplus(x) @ (1 - t)) / x.shape[-1]           # [B,Q,N]
    p = x.sigmoid()
    dice = 1 - (2 * p @ t + 1) / (p.sum(-1, keepdim=True) + t.sum(1, keepdim=True) + 1)
    cost = (-CLASS_WEIGHT * prob + BCE_WEIGHT * bce + DICE_WEIGHT * dice).cpu().numpy()
    pairs = []
    for b, n in enumerate((labels >= 0).sum(1).tolist()):
        q, k = linear_sum_assignment(cost[b, :, :n])
        pairs += [(b, qi, ki) for qi, ki in zip(q.tolist(), k.tolist())]
    return torch.tensor(pairs, dtype=torch.int64, device=labels.device).reshape(-1, 3).T


def class_loss(class_logits, labels, pairs):
    """Cross-entropy of every query: the matched ones against their target's class, the rest against background."""
    B, Q, K = class_logits.shape
    b, q, k = pairs
    cls_target = torch.full((B, Q), K - 1, dtype=torch.int64, device=labels.device)
    cls_target[b, q] = labels[b, k]
    weight = torch.ones(K, device=labels.device)
    weight[-1] = BACKGROUND_WEIGHT
    return F.cross_entropy(class_logits.flatten(0, 1), cls_target.flatten(), weight=weight)


def set_loss(class_logits, mask_logits, labels, targets):
    """One decoder stage over a batch: class_logits [B,Q,K] (background last), mask_logits [B,Q,M,M] -> scalar."""
    pairs = match(class_logits, mask_logits, labels, targets)
    b, q, k = pairs
    return CLASS_WEIGHT * class_loss(class_logits, labels, pairs) + mask_loss(mask_logits[b, q], targets[b, k])


def cell_owners(targets, G):
    """targets [B,N,M,M] -> [B,P] object index per prior cell (row-major G x G): the object covering most of the
    cell, -1 where none does; then each object that owns no cell takes its best-covered one from an object that
    keeps another."""
    cover = F.adaptive_avg_pool2d(targets, G).flatten(2)                            # [B,N,P]
    owners = torch.where(cover.amax(1) > 0, cover.argmax(1), -1)                   # [B,P]
    for b in range(len(targets)):
        for k in range(targets.shape[1]):
            counts = torch.bincount(owners[b][owners[b] >= 0], minlength=targets.shape[1])
            if cover[b, k].amax() == 0 or counts[k] > 0:
                continue
            for cell in cover[b, k].argsort(descending=True).tolist():
                held = owners[b, cell].item()
                if cover[b, k, cell] > 0 and (held < 0 or counts[held] > 1):
                    owners[b, cell] = k
                    break
    return owners


def ownership_loss(grid, targets, pairs):
    """grid [B,Q,P] (prior.prior_grid per image), targets [B,N,M,M], pairs from `match` -> scalar.

    The perception prior gives a query an object token only if it is the argmax of some prior cell. Per cell this is a
    cross-entropy over the queries' log prior values: the owner should be the matched query of the object
    `cell_owners` names, and on a cell no object covers, any matched query (never an unmatched one). Each object's
    cells, and an image's empty cells, weigh as one group: a small object's single cell counts as much as a large
    object's many, since it is the small objects that lose their token."""
    B, Q, P = grid.shape
    owners = cell_owners(targets, round(P ** 0.5))
    b, q, k = pairs
    query_of = torch.full(targets.shape[:2], -1, dtype=torch.int64, device=grid.device)
    query_of[b, k] = q
    matched = torch.zeros(B, Q, dtype=torch.bool, device=grid.device)
    matched[b, q] = True
    owner_query = query_of.gather(1, owners.clamp(min=0))                                   # [B,P]
    one_owner = torch.arange(Q, device=grid.device)[None, :, None] == owner_query[:, None]   # [B,Q,P]
    allowed = torch.where((owners >= 0)[:, None], one_owner, matched[:, :, None])
    logp = grid.clamp(min=1e-6).log().log_softmax(1)
    cell_loss = -logp.masked_fill(~allowed, float("-inf")).logsumexp(1)                  # [B,P]
    group = owners + 1                                                                      # 0: the empty cells
    sizes = torch.zeros(B, targets.shape[1] + 1, device=grid.device).scatter_add_(1, group, torch.ones_like(cell_loss))
    weight = 1 / sizes.gather(1, group)
    return (weight * cell_loss).sum() / weight.sum()
