#!/usr/bin/env python3
"""A PyTorch reference of one CrOC training step, for timing (tools/reference/compare.sh); its
clustering and object pooling also make the golden file of a parity test
(tools/fixtures/make_clustering_fixture.py).

It does the work of `croc-host bench` with the same shapes: teacher forward (no grad) on the two
views, the joint clustering (K0 = 5 seeds, 4 Sinkhorn solves of 5 sweeps, merges 5 -> 2, K* by
minimum cost, argmax masks, pruning), student forward with drop-path, object pooling, both heads
(L = 65536, Lc = 8192), both losses, backward, per-tensor clipping, AdamW and the EMA teacher.
Written here from spec §2-§8; not the official code.

    apt-get install --no-install-recommends python3-torch libopenblas0-openmp
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/reference/step.py --batch 8 [--precision bf16]

--precision bf16 runs the forward passes, the clustering's inputs and the losses under CPU autocast
(bfloat16 matmuls, PyTorch's own choice of ops kept in float32), the backward as autocast leaves it.
"""
import argparse
import contextlib
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim, heads, drop):
        super().__init__()
        self.heads, self.drop = heads, drop
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def branch(self, y):
        if not self.training or self.drop == 0:
            return y
        keep = torch.empty(y.shape[0], 1, 1).bernoulli_(1 - self.drop)
        return y * keep / (1 - self.drop)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if hasattr(F, "scaled_dot_product_attention"):
            a = F.scaled_dot_product_attention(q, k, v)
        else:  # PyTorch < 2.0 (Debian 12 ships 1.13)
            a = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(-1) @ v
        a = a.transpose(1, 2).reshape(b, t, d)
        x = x + self.branch(self.proj(a))
        return x + self.branch(self.fc2(F.gelu(self.fc1(self.norm2(x))))), k


class Vit(nn.Module):
    def __init__(self, dim=384, depth=12, heads=6, patch=16, size=224, drop=0.1):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (size // patch) ** 2 + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, drop * i / (depth - 1)) for i in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        p = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), p], 1) + self.pos_embed
        for blk in self.blocks:
            x, k = blk(x)
        return self.norm(x), k


class Head(nn.Module):
    def __init__(self, dim=384, out=65536, out_c=8192):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, 2048), nn.GELU(), nn.Linear(2048, 2048), nn.GELU(), nn.Linear(2048, 256))
        self.v = nn.Parameter(torch.randn(out, 256) * 0.02)
        self.v_c = nn.Parameter(torch.randn(out_c, 256) * 0.02)

    def forward(self, x, objects=False):
        z = F.normalize(self.mlp(x), dim=-1)
        w = self.v_c if objects else self.v
        return z @ F.normalize(w, dim=-1).t()


def sinkhorn(cost, a, b, lam=20.0, iters=5):
    p = torch.exp(-lam * cost)
    p = p / p.sum((1, 2), keepdim=True)
    for _ in range(iters):
        p = p * (a / p.sum(2)).unsqueeze(-1)
        p = p * (b / p.sum(1)).unsqueeze(1)
    p = torch.nan_to_num(p, nan=1e-8)
    return p, (p * cost).sum((1, 2))


@torch.no_grad()
def cluster(keys, pos, heads, k0=5, kmax=4, seeds=None, trace=None):
    """keys (2B, h, 1+N, dh), pos (2B, N, 2) -> masks (2, S, N, Kbar), valid flat indices.

    seeds (S, K0): injected instead of drawn; trace: a dict that receives each stage's plan, cost and
    merged pair, and K* (tools/fixtures/make_clustering_fixture.py)."""
    two_b, h, t, dh = keys.shape
    b, n = two_b // 2, t - 1
    x = F.normalize(keys, dim=-1).reshape(2, b * h, t, dh)
    cls, pat = x[:, :, :1], x[:, :, 1:]
    rho = (pat * cls).sum(-1).permute(1, 0, 2).reshape(b * h, 2 * n)
    xx = pat.permute(1, 0, 2, 3).reshape(b * h, 2 * n, dh)
    e = pos.reshape(2, b, n, 2).permute(1, 0, 2, 3).reshape(b, 2 * n, 2).repeat_interleave(h, 0)
    a = (rho / 2).softmax(1)
    if seeds is None:
        seeds = torch.multinomial(a, k0)
    gather = lambda tab, idx: tab.gather(1, idx.unsqueeze(-1).expand(-1, -1, tab.shape[-1]))
    c, mu = gather(xx, seeds), gather(e, seeds)
    bb = (rho.gather(1, seeds) / 2).softmax(1)
    plans, costs = [], []
    for k in range(k0, 1, -1):
        d = torch.cdist(e, mu)
        d = d / d.amax((1, 2), keepdim=True)
        m = -xx @ F.normalize(c, dim=-1).transpose(1, 2) + 4.0 * d
        m = (m - m.min()) / (m.max() - m.min())
        p, cost = sinkhorn(m, a, bb)
        q = p.view(-1, 2, n, k)
        plans.append(F.pad(q / q.sum(2, keepdim=True), (0, k0 - k)))
        costs.append(cost)
        if trace is not None:
            trace[f"stage{k}.plan"], trace[f"stage{k}.cost"] = q / q.sum(2, keepdim=True), cost
        if k == 2:
            break
        pbar = p / p.sum(1, keepdim=True)
        cen = pbar.transpose(1, 2) @ xx
        g = cen @ cen.transpose(1, 2) - 2 * torch.eye(k)
        best = g.flatten(1).argmax(1)
        i, j = best // k, best % k
        if trace is not None:
            trace[f"stage{k}.merged"] = torch.stack([i, j], 1)
        cols = torch.arange(k).unsqueeze(0)
        order = (cols + k * ((cols == i[:, None]) | (cols == j[:, None])).long()).argsort(1)
        pp = p.gather(2, order.unsqueeze(1).expand(-1, 2 * n, -1))
        p = torch.cat([pp[..., : k - 2], pp[..., k - 2:].sum(-1, keepdim=True)], 2)
        pbar = p / p.sum(1, keepdim=True)
        c, mu = pbar.transpose(1, 2) @ xx, pbar.transpose(1, 2) @ e
        bb = (a.unsqueeze(-1) * pbar).sum(1)
        bb = bb / bb.sum(1, keepdim=True)
    choice = torch.stack(costs[1:], 1).argmin(1)
    kbar = int(kmax - choice.min())
    if trace is not None:
        trace["kstar"] = kmax - choice
    q = torch.stack(plans[1:], 1)[torch.arange(b * h), choice][..., :kbar]
    hard = F.one_hot(q.argmax(-1), kbar).float()
    masks = (q * hard).permute(1, 0, 2, 3)
    present = hard.sum(2) > 0
    valid = (present[:, 0] & present[:, 1]).flatten().nonzero().flatten()
    return masks, valid, kbar


def objects(masks, valid, tokens, heads, kbar):
    two_b, t, d = tokens.shape
    b, n = two_b // 2, t - 1
    u = torch.einsum("vbgnk,vbnd->vbgkd", masks.reshape(2, b, heads, n, kbar), tokens[:, 1:].reshape(2, b, n, d))
    u = u.reshape(2, -1, d)[:, valid]
    return F.normalize(u, dim=-1) * tokens[:, 0].norm(dim=-1).mean()


def cross_view(t, s):
    t1, t2 = t.chunk(2)
    s1, s2 = s.chunk(2)
    return 0.5 * (-(t1 * s2).sum(-1).mean() - (t2 * s1).sum(-1).mean())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: forward and losses under torch.autocast('cpu', torch.bfloat16), as a PyTorch user would run it")
    args = parser.parse_args()
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    student, teacher = nn.ModuleDict({"vit": Vit(size=args.size), "head": Head()}), nn.ModuleDict({"vit": Vit(size=args.size, drop=0), "head": Head()})
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    teacher.eval()
    opt = torch.optim.AdamW(student.parameters(), lr=1e-4, weight_decay=0.04)
    centre, centre_c = torch.zeros(1, 65536), torch.zeros(1, 8192)
    views = torch.randn(2 * args.batch, 3, args.size, args.size)
    n = (args.size // 16) ** 2
    pos = torch.rand(2 * args.batch, n, 2) * args.size
    times = []
    for it in range(args.repeats + 2):
        start = time.perf_counter()
        with autocast():
            with torch.no_grad():
                tt, keys = teacher["vit"](views)
                gt = teacher["head"](tt[:, 0])
                masks, valid, kbar = cluster(keys.float(), pos, 6)
                at = teacher["head"](objects(masks, valid, tt, 6, kbar).reshape(-1, 384), True)
            ts, _ = student["vit"](views)
            gs = student["head"](ts[:, 0])
            as_ = student["head"](objects(masks, valid, ts, 6, kbar).reshape(-1, 384), True)
            loss = cross_view(((gt - centre) / 0.04).softmax(-1), (gs / 0.1).log_softmax(-1)) + \
                cross_view(((at - centre_c) / 0.04).softmax(-1), (as_ / 0.1).log_softmax(-1))
        opt.zero_grad()
        loss.backward()
        for p in student.parameters():
            if p.grad is not None:
                norm = p.grad.norm()
                clip = 3.0 / (norm + 1e-6)
                if clip < 1:
                    p.grad.mul_(clip)
        opt.step()
        with torch.no_grad():
            for ps, pt in zip(student.parameters(), teacher.parameters()):
                pt.mul_(0.996).add_(ps.detach(), alpha=0.004)
            centre = centre * 0.9 + 0.1 * gt.float().mean(0, keepdim=True)
            centre_c = centre_c * 0.9 + 0.1 * at.float().mean(0, keepdim=True)
        elapsed = time.perf_counter() - start
        if it >= 2:
            times.append(elapsed)
        print(f"step {it + 1}: {elapsed:.2f} s, loss {loss.item():.3f}, {len(valid)} objects", flush=True)
    median = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "precision": args.precision, "batch": args.batch, "threads": args.threads,
                      "step_s": median, "images_per_s": args.batch / median, "peak_rss_mb": rss}))


if __name__ == "__main__":
    main()
