"""What this machine's torch can do: dense fp32 matmul FLOP/s, measured in the same run.

The scoring benchmark reports the model's achieved FLOP/s as a fraction of this number,
which says how much of the machine the scoring path actually uses.
"""

from __future__ import annotations

import time

from bench.report import Figure, median


def matmul_flops(size: int = 1024, repetitions: int = 7, device: str = "cpu") -> list[float]:
    """FLOP/s of ``size x size`` fp32 matmuls (2 * n^3 per product), one sample per repetition."""
    import torch

    a = torch.randn(size, size, dtype=torch.float32, device=device)
    b = torch.randn(size, size, dtype=torch.float32, device=device)
    inner = max(1, int(4e9 // (2 * size**3)))  # about 4 GFLOP per sample
    for _ in range(2):  # warm-up: thread pool, caches, clocks
        torch.matmul(a, b)
    samples = []
    for _ in range(repetitions):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(inner):
            torch.matmul(a, b)
        if device != "cpu":
            torch.cuda.synchronize()
        samples.append(2 * size**3 * inner / (time.perf_counter() - start))
    return samples


def peak_matmul(quick: bool = False, device: str = "cpu") -> tuple[float, int, list[float]]:
    """(best median FLOP/s, the size that gave it, its samples) over a few square sizes."""
    best: tuple[float, int, list[float]] = (0.0, 0, [])
    for size in (512, 1024) if quick else (512, 1024, 2048):
        samples = matmul_flops(size, repetitions=3 if quick else 7, device=device)
        if median(samples) > best[0]:
            best = (median(samples), size, samples)
    return best


def run(quick: bool = False) -> tuple[list[Figure], float]:
    """The matmul figure and the FLOP/s the scoring benchmark divides by."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    flops, size, samples = peak_matmul(quick, device)
    figure = Figure(
        "hardware",
        f"dense fp32 matmul ({size}x{size}, {device}, {torch.get_num_threads()} threads)",
        flops,
        "FLOP/s",
        note="median of repetitions",
        samples=samples,
    )
    return [figure], flops
