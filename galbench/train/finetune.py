"""Partial fine-tuning of timm models: train the classifier head only, the head plus the last
``k`` blocks, or everything.

Blocks are timm's own coarse parameter groups (``model.group_matcher(coarse=True)``, the grouping
timm uses for layer-wise learning-rate decay), in forward order:

- the **stem** (the first group, e.g. resnet's ``conv1``/``bn1``), never counted as a block;
- the **blocks**, one per stage (resnet18: ``layer1`` .. ``layer4``; regnetx_002: ``s1`` .. ``s4``;
  mobilenetv3_small_050: ``blocks.0`` .. ``blocks.5``);
- the **head side**: the parameters no pattern matches, which timm puts in a last group - the
  classifier (``model.get_classifier()``) and any layer between the last stage and it (mobilenet's
  ``conv_head``).

``set_trainable(model, "head")`` trains the classifier's parameters only; ``"last_k"`` the whole
head side plus the last ``k`` blocks (``k = 0``: the head side only); ``"all"`` everything. Every
other parameter gets ``requires_grad = False``.

BatchNorm: freezing parameters does not freeze the running statistics a BatchNorm layer updates
in training mode. Call :func:`freeze_batchnorm` after every ``model.train()`` (which puts every
layer back in training mode) to put the BatchNorm layers whose parameters are all frozen in eval
mode, so that the frozen part computes exactly what it did before fine-tuning.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

__all__ = ["block_groups", "count_trainable", "freeze_batchnorm", "set_trainable"]


def count_trainable(model: nn.Module) -> int:
    """Number of parameters (elements, shared tensors once) with ``requires_grad``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _classifier_names(model: nn.Module) -> list[str]:
    get_classifier = getattr(model, "get_classifier", None)
    if not callable(get_classifier):
        raise TypeError(
            f"{type(model).__name__} has no get_classifier(); set_trainable expects a timm model"
        )
    ids = {id(p) for p in get_classifier().parameters()}
    names = [name for name, p in model.named_parameters() if id(p) in ids]
    if not names:
        raise ValueError(
            f"{type(model).__name__}.get_classifier() has no parameters (built with num_classes=0?)"
        )
    return names


def block_groups(model: nn.Module) -> tuple[list[str], list[list[str]], list[str]]:
    """``(stem, blocks, head_side)``: the parameter names of the stem, of each block in forward
    order, and of the head side (see the module docstring)."""
    matcher = getattr(model, "group_matcher", None)
    if not callable(matcher):
        raise TypeError(
            f"{type(model).__name__} has no group_matcher(); last_k needs a timm model's groups"
        )
    from timm.models import group_parameters

    spec = matcher(coarse=True)
    groups = [list(names) for _, names in sorted(group_parameters(model, spec).items())]
    classifier = set(_classifier_names(model))
    if not classifier <= set(groups[-1]):
        raise ValueError(
            f"{type(model).__name__}: the classifier's parameters are not in timm's last parameter"
            " group, so the head side is not known"
        )
    head_side = groups.pop()
    has_stem = isinstance(spec, dict) and next(iter(spec), None) == "stem"
    stem = groups.pop(0) if has_stem and groups else []
    return stem, groups, head_side


def set_trainable(
    model: nn.Module, mode: Literal["head", "last_k", "all"], k: int = 1
) -> int:
    """Set ``requires_grad`` for fine-tuning ``mode`` (``"head"``, ``"last_k"`` with ``k`` blocks,
    ``"all"``); returns the number of trainable parameters. Layer modes (train/eval) are left as
    they are: see :func:`freeze_batchnorm`."""
    if mode == "all":
        trainable = {name for name, _ in model.named_parameters()}
    elif mode == "head":
        trainable = set(_classifier_names(model))
    elif mode == "last_k":
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"k must be an integer >= 0 (blocks), got {k!r}")
        _, blocks, head_side = block_groups(model)
        if k > len(blocks):
            raise ValueError(
                f"k={k} but {type(model).__name__} has {len(blocks)} blocks; use mode='all' to"
                " train the stem too"
            )
        trainable = set(head_side)
        for names in blocks[len(blocks) - k :]:
            trainable.update(names)
    else:
        raise ValueError(f"mode must be 'head', 'last_k' or 'all', got {mode!r}")
    for name, p in model.named_parameters():
        p.requires_grad_(name in trainable)
    return count_trainable(model)


def freeze_batchnorm(model: nn.Module) -> int:
    """Put every BatchNorm layer whose parameters are all frozen in eval mode (running statistics
    used, not updated); returns how many. Layers without affine parameters are left alone. Call it
    after each ``model.train()``."""
    frozen = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()
                frozen += 1
    return frozen
