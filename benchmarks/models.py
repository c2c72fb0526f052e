"""Benchmark: one training step (forward + backward + AdamW) of `dstformer-lite` on CPU.

Compares, in the same run, hpe_pretrain's DSTformer with a straightforward implementation of the same model
(same 16.00M parameters) written the way the reference code is structured: `nn.Linear` everywhere, tokens kept as
(B*T, J, C), attention by explicit `softmax(q @ k^T) @ v` with reshape/permute for the temporal axis, and the
default (for-loop) AdamW. Steps of the two implementations are interleaved (the machine is shared, and load from
others then hits both alike); peak RSS is measured for each case alone in a fresh subprocess.

    python benchmarks/models.py                       # B=4,T=27 and B=2,T=81; 2 warm-up + 9 timed steps
    python benchmarks/models.py --sizes 4x27 --steps 5 --skip-naive
    python benchmarks/models.py --device cuda --sizes 32x243 --bf16 [--compile]   # GPU throughput (clips/s)

Speed is compared only within one run on one machine: the table and the speed-up lines relate the two
implementations timed (interleaved) in this run, and nothing else. The machine is shared and absolute times move
from day to day, so never turn a figure from another run, machine or document (e.g. a step time quoted for
MotionBERT's own code) into a ratio with these numbers; to compare with another implementation, time it in the same
run. MotionBERT's code itself is not part of this benchmark (the project copies no code from other repositories):
the naive implementation above stands in for its structure.
"""
import argparse, datetime, json, os, platform, resource, statistics, subprocess, sys, time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


# ---------------------------------------------------------------------------------------------------------------
# The naive, reference-like implementation (same parameter count as DSTformer-lite)
class NaiveAttention(nn.Module):
    def __init__(self, dim, heads, mode):
        super().__init__()
        self.heads, self.mode, self.scale = heads, mode, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x, seqlen):                                   # x (B*T, J, C)
        BT, J, C = x.shape
        H, d = self.heads, C // self.heads
        qkv = self.qkv(x).reshape(BT, J, 3, H, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                             # (B*T, H, J, d)
        if self.mode == 'spatial':
            attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            x = (attn @ v).transpose(1, 2).reshape(BT, J, C)
        else:
            qt = q.reshape(-1, seqlen, H, J, d).permute(0, 2, 3, 1, 4)   # (B, H, J, T, d)
            kt = k.reshape(-1, seqlen, H, J, d).permute(0, 2, 3, 1, 4)
            vt = v.reshape(-1, seqlen, H, J, d).permute(0, 2, 3, 1, 4)
            attn = ((qt @ kt.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            x = (attn @ vt).permute(0, 3, 2, 1, 4).reshape(BT, J, C)
        return self.proj(x)


class NaiveBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, mode):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = NaiveAttention(dim, heads, mode)
        h = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, h), nn.GELU(), nn.Linear(h, dim))

    def forward(self, x, seqlen):
        x = x + self.attn(self.norm1(x), seqlen)
        return x + self.mlp(self.norm2(x))


class NaiveDSTformer(nn.Module):
    def __init__(self, dim_in=3, dim_out=3, dim_feat=256, dim_rep=512, depth=5, heads=8, mlp_ratio=4, J=17, maxlen=243):
        super().__init__()
        self.joints_embed = nn.Linear(dim_in, dim_feat)
        self.pos_embed = nn.Parameter(torch.zeros(1, J, dim_feat))
        self.temp_embed = nn.Parameter(torch.zeros(1, maxlen, 1, dim_feat))
        mk = lambda m: NaiveBlock(dim_feat, heads, mlp_ratio, m)
        self.st_s = nn.ModuleList(mk('spatial') for _ in range(depth)); self.st_t = nn.ModuleList(mk('temporal') for _ in range(depth))
        self.ts_t = nn.ModuleList(mk('temporal') for _ in range(depth)); self.ts_s = nn.ModuleList(mk('spatial') for _ in range(depth))
        self.fuse = nn.ModuleList(nn.Linear(2 * dim_feat, 2) for _ in range(depth))
        self.norm = nn.LayerNorm(dim_feat)
        self.pre_logits = nn.Sequential(nn.Linear(dim_feat, dim_rep), nn.Tanh())
        self.head = nn.Linear(dim_rep, dim_out)

    def forward(self, x):                                           # (B, T, J, 3)
        B, T, J, C = x.shape
        x = self.joints_embed(x.reshape(-1, J, C)) + self.pos_embed
        x = (x.reshape(-1, T, J, x.shape[-1]) + self.temp_embed[:, :T]).reshape(B * T, J, -1)
        for s1, t1, t2, s2, f in zip(self.st_s, self.st_t, self.ts_t, self.ts_s, self.fuse):
            x_st = t1(s1(x, T), T)
            x_ts = s2(t2(x, T), T)
            a = f(torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)
            x = x_st * a[:, :, 0:1] + x_ts * a[:, :, 1:2]
        x = self.head(self.pre_logits(self.norm(x)))
        return x.reshape(B, T, J, -1)


# ---------------------------------------------------------------------------------------------------------------
NAMES = {'ours': 'hpe_pretrain DSTformer (SDPA, oneDNN)', 'naive': 'naive reference-like (explicit softmax)'}


def machine(device: str) -> str:
    "One line naming the machine the figures were measured on (CPU model and cores, or the GPU)."
    if device.startswith('cuda'): return f"GPU {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): pass
    return f"{os.cpu_count()}-core CPU ({cpu})"


def rss_mb() -> float:
    "Peak resident set size of this process so far, MB (VmHWM: unlike ru_maxrss it is not inherited across exec)."
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('VmHWM:'): return int(line.split()[1]) / 1024
    except OSError: pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Case:
    "One implementation at one clip size: model, optimizer, fixed batch, and a `step()` returning seconds."
    def __init__(self, impl: str, B: int, T: int, device: str, bf16: bool, compile_: bool, fused: bool):
        torch.manual_seed(0)
        if impl == 'ours':
            from hpe_pretrain.models.factory import create_model
            model = create_model('dstformer-lite')
        else: model = NaiveDSTformer()
        self.impl, self.B, self.T, self.device, self.bf16 = impl, B, T, device, bf16
        self.model = model.to(device)
        self.n_params = sum(p.numel() for p in model.parameters())
        self.fused = fused
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=fused or None)
        self.fwd = torch.compile(self.model) if compile_ else self.model
        self.x = torch.randn(B, T, 17, 3, device=device); self.y = torch.randn(B, T, 17, 3, device=device)
        self.times = []

    def sync(self):
        if self.device.startswith('cuda'): torch.cuda.synchronize()

    def step(self) -> float:
        self.sync(); t0 = time.perf_counter()
        with torch.autocast(self.device.split(':')[0], dtype=torch.bfloat16, enabled=self.bf16):
            loss = (self.fwd(self.x).float() - self.y).norm(dim=-1).mean()
        self.opt.zero_grad(set_to_none=True); loss.backward(); self.opt.step()
        self.sync(); return time.perf_counter() - t0


def memory_case(impl: str, B: int, T: int, device: str, bf16: bool, fused: bool) -> dict:
    "Peak RSS (and CUDA memory) of 2 training steps of one case, measured alone in this (fresh) process."
    base = rss_mb()
    c = Case(impl, B, T, device, bf16, False, fused)
    for _ in range(2): c.step()
    res = dict(peak_rss_mb=rss_mb(), base_rss_mb=base)
    if device.startswith('cuda'): res['peak_cuda_mb'] = torch.cuda.max_memory_allocated() / 2**20
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', default='4x27,2x81', help='comma-separated BxT clip sizes')
    ap.add_argument('--steps', type=int, default=9, help='timed steps per implementation (median reported)')
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--skip-naive', action='store_true', help='only time hpe_pretrain')
    ap.add_argument('--skip-memory', action='store_true', help='do not measure peak RSS')
    ap.add_argument('--threads', type=int, help='torch intra-op threads (default: torch default)')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--bf16', action='store_true', help='bf16 autocast')
    ap.add_argument('--compile', action='store_true', help='torch.compile the model (ours only)')
    ap.add_argument('--same-optimizer', action='store_true', help="ours also uses the default (unfused) AdamW")
    ap.add_argument('--memory-case', help=argparse.SUPPRESS)   # internal: impl,B,T measured in a subprocess
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    fused = lambda impl: impl == 'ours' and not a.same_optimizer
    if a.memory_case:
        impl, B, T = a.memory_case.split(',')
        print('RESULT ' + json.dumps(memory_case(impl, int(B), int(T), a.device, a.bf16, fused(impl))))
        return
    sizes = [tuple(map(int, s.split('x'))) for s in a.sizes.split(',')]
    impls = ['ours'] + ([] if a.skip_naive else ['naive'])
    print(f"{datetime.date.today()}, {machine(a.device)}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}, bf16={a.bf16}, "
          f"compile={a.compile}; per clip size: {a.warmup} warm-up + {a.steps} timed steps per implementation, "
          f"interleaved (ours, naive, ours, ...) so that load from other users hits both alike")
    rows = []
    for B, T in sizes:
        cases = [Case(i, B, T, a.device, a.bf16, a.compile and i == 'ours', fused(i)) for i in impls]
        for _ in range(a.warmup):
            for c in cases: c.step()
        for _ in range(a.steps):
            for c in cases: c.times.append(c.step())
        for c in cases:
            print(f"  {c.impl:5s} B={B:<3d} T={T:<4d} steps: {', '.join(f'{t:.2f}' for t in c.times)} s", flush=True)
            r = dict(impl=c.impl, B=B, T=T, params=c.n_params, median=statistics.median(c.times), min=min(c.times),
                     times=c.times, optimizer='AdamW(fused)' if c.fused else 'AdamW(default)')
            rows.append(r)
        if len(cases) == 2:
            rows[-2]['ratios'] = [o / n for o, n in zip(cases[0].times, cases[1].times)]
        del cases
    for r in rows:   # peak memory: each case alone in a fresh process
        r.update(peak_rss_mb=float('nan'), base_rss_mb=float('nan'))
        if a.skip_memory: continue
        cmd = [sys.executable, __file__, '--memory-case', f"{r['impl']},{r['B']},{r['T']}", '--device', a.device,
               '--threads', str(torch.get_num_threads())] \
              + ['--bf16'] * a.bf16 + ['--same-optimizer'] * a.same_optimizer
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = [l for l in out.stdout.splitlines() if l.startswith('RESULT ')]
        if out.returncode or not line: sys.exit(f"memory case {r['impl']} failed:\n{out.stderr[-3000:]}")
        r.update(json.loads(line[0][7:]))
    hdr = (f"{'clip':>10s} | {'implementation':39s} | {'params':>7s} | {'median s':>8s} | {'min s':>6s} | "
           f"{'clips/s':>7s} | {'peak RSS MB':>11s} | {'(+ over start)':>14s}")
    print('\n' + hdr + '\n' + '-' * len(hdr))
    for r in rows:
        print(f"{'B=%d T=%d' % (r['B'], r['T']):>10s} | {NAMES[r['impl']]:39s} | {r['params']/1e6:6.2f}M | "
              f"{r['median']:8.3f} | {r['min']:6.3f} | {r['B']/r['median']:7.2f} | {r['peak_rss_mb']:11.0f} | "
              f"{r['peak_rss_mb'] - r['base_rss_mb']:14.0f}")
    if not a.skip_naive:
        print()
        for o, n in zip(rows[::2], rows[1::2]):
            print(f"B={o['B']} T={o['T']}: speed-up {n['median']/o['median']:.2f}x by medians, {n['min']/o['min']:.2f}x by "
                  f"minima; median of paired step ratios ours/naive {statistics.median(o['ratios']):.2f}")
    print(f"optimizers: ours {rows[0]['optimizer']}, naive AdamW(default). All figures from this run only "
          "(compare nothing here with a figure from another run, machine or document).")


if __name__ == '__main__':
    main()
