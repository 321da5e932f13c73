"""PyTorch's double backward of batch normalization (its hand-written batchnorm_double_backward),
one thread, float64: prints the median milliseconds of one double-backward call at each N D given.

Usage: python3 bench/double_torch.py N D [N D ...]   (exit code 3 when torch is missing)
"""
import sys
import time

try:
    import torch
except ImportError:
    sys.exit(3)

torch.set_num_threads(1)
args = [int(a) for a in sys.argv[1:]]
for N, D in zip(args[0::2], args[1::2]):
    g = torch.Generator().manual_seed(N * 7919 + D)
    r = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64) * 2 - 1
    x = (2 * r(N, D) + 0.5).requires_grad_()
    gamma = (0.5 * r(D) + 1).requires_grad_()
    beta = r(D).requires_grad_()
    dout = r(N, D).requires_grad_()
    gg = (r(N, D), r(D), r(D))
    out = torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)
    first = torch.autograd.grad(out, (x, gamma, beta), dout, create_graph=True)
    def double():
        return torch.autograd.grad(first, (x, gamma, dout), gg, retain_graph=True)
    for _ in range(3):
        double()
    times = []
    budget = time.perf_counter() + (2.0 if N * D < 1 << 20 else 6.0)
    while len(times) < 5 or (time.perf_counter() < budget and len(times) < 2000):
        t = time.perf_counter()
        double()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    n = len(times)
    median = times[(n - 1) // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2
    print(f"{N} {D} {median:.6f}", flush=True)
