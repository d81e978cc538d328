"""Device and batch-size choice for embedding: GPU when there is one, batch sized by its memory.

`Embedder(device=None)` already picks CUDA when torch sees it; this module adds the batch
size. A transformer encoder at inference holds one layer's activations at a time, so the
memory a text costs is about `seq_len * (ffn_mult * hidden + heads * seq_len) * bytes` (the
feed-forward block and the attention scores dominate). We take a share of the free memory,
divide by that, round down to a power of two and cap it: past the cap throughput stops
growing (see docs/scale.md for the H100 measurements), while padding waste and latency do.

>>> plan = plan_embedding()                      # doctest: +SKIP
>>> Embedder(device=plan.device, batch_size=plan.batch_size)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

# all-MiniLM-L6-v2: hidden 384, 12 heads, feed-forward 4x, max 256 tokens.
MINILM = {"hidden": 384, "heads": 12, "ffn_mult": 4, "max_seq_len": 256}
CPU_BATCH = 64
# Measured on an H100 (docs/scale.md): texts/s flattens out well before this.
MAX_GPU_BATCH = 1024
MIN_GPU_BATCH = 16
MEMORY_SHARE = 0.5  # leave room for the model, the allocator's slack and other tenants


@dataclass(frozen=True)
class EmbeddingPlan:
    device: str  # "cuda", "cuda:1", "mps" or "cpu"
    batch_size: int
    dtype: str  # "float16" on GPU, "float32" on CPU
    free_bytes: int | None = None  # free device memory when planned (None on CPU)


def bytes_per_text(*, hidden: int, heads: int, ffn_mult: int, max_seq_len: int, dtype_bytes: int) -> int:
    """Peak activation bytes one text of `max_seq_len` tokens costs in one encoder layer."""
    per_token = ffn_mult * hidden + heads * max_seq_len + 4 * hidden  # FFN, scores, q/k/v/out
    return max_seq_len * per_token * dtype_bytes


def batch_size_for(free_bytes: int, *, dtype_bytes: int = 2, share: float = MEMORY_SHARE,
                   cap: int = MAX_GPU_BATCH, shape: dict | None = None) -> int:
    """The largest power of two batch whose activations fit `share` of `free_bytes` (capped)."""
    shape = shape or MINILM
    per_text = bytes_per_text(dtype_bytes=dtype_bytes, **shape)
    fit = int(free_bytes * share) // max(per_text, 1)
    if fit < 1:
        return 1
    size = 1 << (fit.bit_length() - 1)
    return max(1, min(cap, size))


def plan_embedding(device: str | None = None, *, shape: dict | None = None) -> EmbeddingPlan:
    """Pick the device (CUDA, then Apple MPS, then CPU) and a batch size that fits it."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return EmbeddingPlan("cpu", CPU_BATCH, "float32")
    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        size = max(MIN_GPU_BATCH, batch_size_for(free, dtype_bytes=2, shape=shape))
        log.info("embedding on %s: %.1f GiB free, batch %d", device, free / 2**30, size)
        return EmbeddingPlan(device, size, "float16", int(free))
    if device == "mps":
        return EmbeddingPlan(device, 128, "float16")
    return EmbeddingPlan("cpu", CPU_BATCH, "float32")
