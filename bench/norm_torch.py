"""PyTorch's backward of layer normalization and batch normalization (training mode), one thread,
float32, at 1024x1024: prints the median and 10th-percentile milliseconds of each, the optional peer
of the wasm float32 rows of `npm run bench` (README: WebAssembly kernels).

Usage: python3 bench/norm_torch.py   (exit code 3 when torch is missing)
"""
import sys
import time

try:
    import torch
except ImportError:
    sys.exit(3)
import torch.nn.functional as F
torch.set_num_threads(1)
torch.manual_seed(0)
N = D = 1024
def med(fn, budget=3.0):
    for _ in range(5): fn()
    xs = []; t0 = time.perf_counter()
    while len(xs) < 20 or (time.perf_counter() - t0 < budget and len(xs) < 2000):
        a = time.perf_counter(); fn(); xs.append((time.perf_counter() - a) * 1e3)
    xs.sort(); return xs[len(xs)//2], xs[len(xs)//10]
x = torch.randn(N, D, requires_grad=True); g = torch.randn(D, requires_grad=True); b = torch.randn(D, requires_grad=True)
dy = torch.randn(N, D)
y = F.layer_norm(x, (D,), g, b, 1e-5)
print("layernorm backward median/p10 ms", med(lambda: torch.autograd.grad(y, (x, g, b), dy, retain_graph=True)))
y2 = F.batch_norm(x, None, None, g, b, training=True, eps=1e-5)
print("batchnorm backward median/p10 ms", med(lambda: torch.autograd.grad(y2, (x, g, b), dy, retain_graph=True)))
