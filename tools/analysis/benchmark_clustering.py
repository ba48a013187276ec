# Copyright (c) mmuld contributors. All rights reserved.
"""Benchmark :func:`mmuld.clustering.kmeans` (optionally vs scikit-learn).

Example::

    python tools/analysis/benchmark_clustering.py --n 1000000 --dim 384 \\
        --k 10 100 --iters 30 --device cpu --sklearn

The data is a float32 mixture of 256 gaussian blobs (N x D x 4 bytes:
1.5 GB for 1M x 384), generated in chunks.
"""
import argparse
import time

import numpy as np
import torch

from mmuld.clustering import kmeans


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark torch K-means')
    parser.add_argument('--n', type=int, default=1_000_000, help='points')
    parser.add_argument('--dim', type=int, default=384, help='dimension')
    parser.add_argument(
        '--k', type=int, nargs='+', default=[10, 100], help='cluster counts')
    parser.add_argument('--iters', type=int, default=30, help='max iters')
    parser.add_argument(
        '--tol',
        type=float,
        default=0.0,
        help='relative tolerance; 0 stops only at exact convergence, a '
        'negative value always runs --iters iterations (sklearn gets 0)')
    parser.add_argument(
        '--device',
        nargs='+',
        default=['auto'],
        help="devices: cpu, cuda, or auto (cpu, plus cuda if available)")
    parser.add_argument(
        '--minibatch', action='store_true', help='also time mini-batch mode')
    parser.add_argument(
        '--sklearn',
        action='store_true',
        help='also time sklearn KMeans(n_init=1) (slow)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def make_data(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """Float32 gaussian blobs, generated chunk by chunk."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(256, dim, generator=g) * 3
    x = torch.empty(n, dim)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        idx = torch.randint(256, (m, ), generator=g)
        x[s:s + m] = centers[idx] + torch.randn(m, dim, generator=g)
    return x


def main(argv=None) -> list:
    args = parse_args(argv)
    devices = []
    for d in args.device:
        if d == 'auto':
            devices.append('cpu')
            if torch.cuda.is_available():
                devices.append('cuda')
        else:
            devices.append(d)
    print(f'data: {args.n} x {args.dim} float32, torch threads '
          f'{torch.get_num_threads()}')
    t = time.perf_counter()
    x = make_data(args.n, args.dim, args.seed)
    print(f'generated in {time.perf_counter() - t:.1f} s')
    for dev in devices:  # warm up (lazy init of torch kernels / CUDA)
        kmeans(x[:1000], 2, n_iter=2, device=dev)
    rows = []
    for k in args.k:
        for dev in devices:
            modes = [False, True] if args.minibatch else [False]
            for mb in modes:
                if dev.startswith('cuda'):
                    torch.cuda.synchronize()
                t = time.perf_counter()
                res = kmeans(
                    x,
                    k,
                    n_iter=args.iters,
                    tol=args.tol,
                    seed=args.seed,
                    minibatch=mb,
                    device=dev)
                if dev.startswith('cuda'):
                    torch.cuda.synchronize()
                sec = time.perf_counter() - t
                name = f'mmuld{"-minibatch" if mb else ""}[{dev}]'
                rows.append((name, k, sec, res.inertia, res.n_iter))
                print(f'{name:24s} K={k:4d}  {sec:8.2f} s  inertia '
                      f'{res.inertia:.6e}  iters {res.n_iter}', flush=True)
        if args.sklearn:
            from sklearn.cluster import KMeans
            xn = x.numpy()
            t = time.perf_counter()
            km = KMeans(
                n_clusters=k,
                n_init=1,
                max_iter=args.iters,
                tol=max(args.tol, 0.0),
                random_state=args.seed).fit(xn)
            sec = time.perf_counter() - t
            rows.append(('sklearn[cpu]', k, sec, float(km.inertia_),
                         int(km.n_iter_)))
            print(f'{"sklearn[cpu]":24s} K={k:4d}  {sec:8.2f} s  inertia '
                  f'{km.inertia_:.6e}  iters {km.n_iter_}', flush=True)
    return rows


if __name__ == '__main__':
    np.set_printoptions(precision=4)
    main()
