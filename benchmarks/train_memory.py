"""Training memory of each shipped model at T=243: activations saved for the backward pass, measured on the CPU.

Every tensor that autograd saves during one training forward pass (model + loss) is recorded with
`torch.autograd.graph.saved_tensors_hooks`, counted once per storage (views share one) and never for parameters.
The CPU stands in for a GPU: oneDNN is off (so `Linear` is `F.linear`, as on CUDA), fused attention saves its
output and log-sum-exp only (as flash attention does on CUDA), and bf16 is CPU autocast (CUDA's autocast casts the
same layers). Run at B=1 and B=2; the difference is the memory per clip, the rest is per step (weight casts). Measured
at T=27 and 54 and extrapolated linearly to T (fused attention saves O(T) per sequence; `--check` compares the
extrapolation with a direct measurement at T=81), so that dstformer-base fits in a few GB of host memory.

The estimated peak of a step at batch size `bs` is `bs × per clip + per step + 16 B × parameters` (fp32 weights,
gradients and AdamW's two moments) — what `torch.cuda.max_memory_allocated` should show within the allocator's
slack and the backward pass's short-lived gradients (`tools/gpu_check.sh` measures it on a GPU). With
`train.checkpoint_activations` each block keeps only its input and one block at a time is recomputed.

    python benchmarks/train_memory.py                       # every model at T=243, fp32 and bf16 (~1 min)
    python benchmarks/train_memory.py --models stmo-small --frames 27   # a smoke run
"""
import argparse, contextlib, sys, warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
GiB = 1024 ** 3


def saved_bytes(model, x, loss_fn, dtype=None) -> tuple[int, list[int], list[int]]:
    "Bytes autograd saves in one forward pass: (total, per Block saved, per Block input), parameters excluded."
    import torch
    from hpe_pretrain.models.layers import Block
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    seen, tag, per_block, inputs = {}, [None], [0] * len(blocks), [0] * len(blocks)
    def pack(t):
        s = t.untyped_storage(); key = s.data_ptr()
        if key not in params and key not in seen and s.device.type != 'meta':
            seen[key] = s.nbytes()
            if tag[0] is not None: per_block[tag[0]] += s.nbytes()
        return t
    hooks = []
    for i, m in enumerate(blocks):
        def pre(mod, args, i=i): tag[0] = i; inputs[i] = args[0].numel() * args[0].element_size()
        hooks += [m.register_forward_pre_hook(pre), m.register_forward_hook(lambda *a: tag.__setitem__(0, None))]
    ac = torch.autocast('cpu', dtype=dtype) if dtype is not None else contextlib.nullcontext()
    warnings.filterwarnings('ignore', message='TF32 acceleration')
    try:
        with warnings.catch_warnings(), torch.backends.mkldnn.flags(enabled=False), ac, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss_fn(model, x)
    finally:
        for h in hooks: h.remove()
    return sum(seen.values()), per_block, inputs


def measure_at(name: str, T: int, dtype=None, mpm: bool = False) -> dict:
    "Per clip and per step saved bytes of model `name` (lifting model, or the pretraining MPM model) at T frames."
    import torch
    from hpe_pretrain.models.factory import create_model, finetune_model_config, model_config
    from hpe_pretrain.models.layers import n_params
    cfg = model_config(name) if mpm else finetune_model_config(model_config(name))
    torch.manual_seed(0); m = create_model(cfg).train()
    J = cfg['num_joints']
    def lift(m, x): return (m(x) - x).norm(dim=-1).mean()
    def mpm_loss(m, x):
        mask = torch.zeros(x.shape[:2], dtype=torch.bool); mask[:, ::2] = True   # half the frames masked
        return m.forward_mpm(x, mask).float().square().mean()
    fn = mpm_loss if mpm else lift
    r1, r2 = (saved_bytes(m, torch.randn(B, T, J, 3), fn, dtype) for B in (1, 2))
    clip = r2[0] - r1[0]
    blocks, inputs = [b2 - b1 for b1, b2 in zip(r1[1], r2[1])], [i2 - i1 for i1, i2 in zip(r1[2], r2[2])]
    ckpt_clip = clip - sum(blocks) + sum(inputs) + max(blocks, default=0)   # block inputs kept, one block recomputed
    return dict(model=name + (' (MPM)' if mpm else ''), params=n_params(m), clip=clip, step=r1[0] - clip, ckpt_clip=ckpt_clip)


def measure(name: str, T: int, dtype=None, mpm: bool = False, at: tuple[int, int] = (27, 54)) -> dict:
    "`measure_at` at the two clip lengths `at`, extrapolated linearly to T (saved tensors grow linearly with T: fused attention)."
    a, b = (measure_at(name, t, dtype, mpm) for t in at)
    lin = lambda k: round(a[k] + (b[k] - a[k]) * (T - at[0]) / (at[1] - at[0]))
    return dict(a, clip=lin('clip'), ckpt_clip=lin('ckpt_clip'), step=lin('step'))

def fit_bs(r: dict, per_clip: int, budget_gib: float) -> int:
    "Largest batch size (a multiple of 8) whose estimated peak fits `budget_gib` (90 % of it: allocator slack)."
    free = budget_gib * 0.9 * GiB - r['step'] - 16 * r['params']
    return max(0, int(free // per_clip) // 8 * 8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default='stmo-small,stmo-base,dstformer-small,dstformer-lite,dstformer-base')
    ap.add_argument('--frames', type=int, default=243)
    ap.add_argument('--bs', type=int, default=64, help='batch size of the "peak at bs" columns')
    ap.add_argument('--check', action='store_true', help='only compare the extrapolation to T=81 with a measurement at T=81')
    a = ap.parse_args()
    import torch
    if a.check:
        for name in a.models.split(','):
            for dt in (None, torch.bfloat16):
                e, m = measure(name, 81, dt)['clip'], measure_at(name, 81, dt)['clip']
                print(f"{name} {dt or 'fp32'}: T=81 per clip extrapolated {e / 2**20:.2f} MiB, measured {m / 2**20:.2f} MiB ({e / m - 1:+.1%})")
        return
    rows = []
    for name in a.models.split(','):
        for mpm in ((False, True) if name.startswith('stmo') else (False,)):
            f32, b16 = measure(name, a.frames, None, mpm), measure(name, a.frames, torch.bfloat16, mpm)
            rows.append((f32, b16))
    print(f"Saved activations per clip at T={a.frames} (GiB), estimated peak of a training step at bs={a.bs} (GiB), and the largest "
          f"batch size (multiple of 8) whose estimate fits 40 / 80 GB; ckpt = train.checkpoint_activations=true\n")
    hdr = ('model', 'params', 'fp32/clip', 'bf16/clip', 'bf16 ckpt/clip', f'fp32 peak@{a.bs}', f'bf16 peak@{a.bs}',
           'bs fp32 40 / 80 GB', 'bs bf16 40 / 80 GB', 'bs bf16 ckpt 40 / 80 GB')
    lines = [hdr]
    for f32, b16 in rows:
        peak = lambda r, c: (a.bs * c + r['step'] + 16 * r['params']) / GiB
        lines.append((f32['model'], f"{f32['params'] / 1e6:.2f}M", f"{f32['clip'] / GiB:.3f}", f"{b16['clip'] / GiB:.3f}",
                      f"{b16['ckpt_clip'] / GiB:.3f}", f"{peak(f32, f32['clip']):.1f}", f"{peak(b16, b16['clip']):.1f}",
                      f"{fit_bs(f32, f32['clip'], 40)} / {fit_bs(f32, f32['clip'], 80)}",
                      f"{fit_bs(b16, b16['clip'], 40)} / {fit_bs(b16, b16['clip'], 80)}",
                      f"{fit_bs(b16, b16['ckpt_clip'], 40)} / {fit_bs(b16, b16['ckpt_clip'], 80)}"))
    w = [max(len(str(l[i])) for l in lines) for i in range(len(hdr))]
    print('| ' + ' | '.join(str(c).ljust(w[i]) for i, c in enumerate(lines[0])) + ' |')
    print('|' + '|'.join('-' * (x + 2) for x in w) + '|')
    for l in lines[1:]: print('| ' + ' | '.join(str(c).ljust(w[i]) for i, c in enumerate(l)) + ' |')


if __name__ == '__main__': main()
