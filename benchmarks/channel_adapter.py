"""Microbenchmark of one spatial adapter, X @ (I + A_down A_up), on the shapes it meets.

    python benchmarks/channel_adapter.py [--rank 8] [--repeats 200]

Compares `stillmoving.adapters.spatial.channel_adapter` (a hand-written backward when gradients are needed)
with autograd through the same two ops, and with two 1x1 convolutions and an add (the first version); and
`shared_channel_adapter` (`customize --shared-correction`, autograd) over videos of 8 frames.
Prints the median time of forward + backward and of the no-grad forward, in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from stillmoving.adapters.spatial import channel_adapter, shared_channel_adapter

SHAPES = [(8, 64, 8, 8), (8, 128, 4, 4), (32, 320, 32, 32), (32, 1280, 8, 8)]  # world levels; SD1.5 at 256 px


def autograd_ops(x, down, up):
    n, c = x.shape[:2]
    pixels = x.reshape(n, c, -1)
    low = torch.matmul(down.t(), pixels)
    return torch.baddbmm(pixels, up.t().expand(n, c, -1), low).view_as(x)


def convolutions(x, down, up):
    low = torch.nn.functional.conv2d(x, down.t()[:, :, None, None])
    return x + torch.nn.functional.conv2d(low, up.t()[:, :, None, None])


def shared_over_8_frames(x, down, up):
    return shared_channel_adapter(x, down, up, frames=8)


def median_us(fn, shape, rank, repeats, grad):
    x = torch.randn(*shape, requires_grad=grad)
    down = torch.randn(shape[1], rank, requires_grad=grad)
    up = torch.randn(rank, shape[1], requires_grad=grad)
    grad_out = torch.randn(*shape)
    times = []
    for i in range(repeats + 10):
        start = time.perf_counter()
        if grad:
            fn(x, down, up).backward(grad_out)
        else:
            with torch.no_grad():
                fn(x, down, up)
        if i >= 10:
            times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, rank {args.rank}; median microseconds")
    print(f"{'shape':>20} {'mode':>12} {'stillmoving':>12} {'autograd':>10} {'1x1 convs':>10} {'shared':>10}")
    for shape in SHAPES:
        repeats = max(10, args.repeats // (10 if shape[2] * shape[3] * shape[1] > 1e5 else 1))
        for grad, mode in ((True, "fwd+bwd"), (False, "fwd no-grad")):
            functions = (channel_adapter, autograd_ops, convolutions, shared_over_8_frames)
            cells = [median_us(fn, shape, args.rank, repeats, grad) for fn in functions]
            print(f"{str(shape):>20} {mode:>12} " + " ".join(f"{c:>10.0f}" for c in cells))


if __name__ == "__main__":
    main()
