"""Mask2Former-style set losses: Hungarian matching, class cross-entropy, mask BCE and dice."""
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
    """class_logits [Q,K], mask_logits [Q,M,M], labels [n], targets [n,M,M] -> (query idx [n], target idx [n])."""
    prob = class_logits.softmax(-1)[:, labels]                                  # [Q,n]
    p = mask_logits.flatten(1).sigmoid()                                        # [Q,MM]
    t = targets.flatten(1)                                                      # [n,MM]
    pos = F.binary_cross_entropy_with_logits(mask_logits.flatten(1), torch.ones_like(p), reduction="none")
    neg = F.binary_cross_entropy_with_logits(mask_logits.flatten(1), torch.zeros_like(p), reduction="none")
    bce = (pos @ t.T + neg @ (1 - t).T) / t.shape[1]                            # [Q,n]
    dice = 1 - (2 * p @ t.T + 1) / (p.sum(1)[:, None] + t.sum(1)[None] + 1)     # [Q,n]
    cost = -CLASS_WEIGHT * prob + BCE_WEIGHT * bce + DICE_WEIGHT * dice
    q, k = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(q), torch.as_tensor(k)


def set_loss(class_logits, mask_logits, labels, targets):
    """One stage of one image: class_logits [Q,K] (background last), mask_logits [Q,M,M] -> scalar."""
    q, k = match(class_logits, mask_logits, labels, targets)
    K = class_logits.shape[-1]
    cls_target = torch.full((class_logits.shape[0],), K - 1, dtype=torch.int64)
    cls_target[q] = labels[k]
    weight = torch.ones(K)
    weight[-1] = BACKGROUND_WEIGHT
    ce = F.cross_entropy(class_logits, cls_target, weight=weight)
    return CLASS_WEIGHT * ce + mask_loss(mask_logits[q], targets[k])
