"""What each shipped model size costs on this CPU: training and inference clips per second, interleaved in one run.

For the README's "CPU expectations": every model of `hpe-pretrain fit --list` (random weights; speed does not depend
on them), one training step (forward + backward + AdamW, the lifting model as finetuning builds it) and one
inference call (`torch.inference_mode`), at T=27 (B=8) and T=243 (B=2; models whose `maxlen` is shorter skip it).
Rounds visit every cell once (A, B, C, A, B, C, ...) so machine load spreads over all cells alike; the median per
cell is reported as clips/s (B / seconds per call).

    python benchmarks/model_sizes.py                  # all models, both clip lengths, 2 threads, 3 rounds
    python benchmarks/model_sizes.py --models stmo-tiny,stmo-small --frames 27 --rounds 1   # a smoke run
"""
import argparse, os, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cells(models: list[str], frames: list[int]) -> dict:
    "(model, T) -> (B, train_step(), infer()) closures over a fresh model and a fixed random batch."
    import torch
    from hpe_pretrain.models.factory import create_model, finetune_model_config, model_config
    out = {}
    for name in models:
        cfg = finetune_model_config(model_config(name))
        for T in frames:
            if T > cfg['maxlen']: continue
            B = 8 if T <= 81 else 2
            torch.manual_seed(0); m = create_model(cfg)
            opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
            x, y = torch.randn(B, T, cfg['num_joints'], 3), torch.randn(B, T, cfg['num_joints'], 3) * 0.1
            def step(m=m, opt=opt, x=x, y=y):
                m.train(); opt.zero_grad(set_to_none=True); loss = (m(x) - y).norm(dim=-1).mean(); loss.backward(); opt.step()
            def infer(m=m, x=x):
                m.eval()
                with torch.inference_mode(): m(x)
            n = sum(p.numel() for p in m.parameters())
            out[(name, T)] = (B, n, step, infer)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default='stmo-tiny,stmo-small,stmo-base,dstformer-tiny,dstformer-small,dstformer-lite,dstformer-base')
    ap.add_argument('--frames', default='27,243', help='comma-separated clip lengths T')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--rounds', type=int, default=3, help='timed rounds (after one warm-up round)')
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    cs = cells(a.models.split(','), [int(v) for v in a.frames.split(',')])
    times = {(k, w): [] for k in cs for w in ('train', 'infer')}
    for r in range(a.rounds + 1):
        for k, (B, n, step, infer) in cs.items():
            for w, fn in (('train', step), ('infer', infer)):
                s = time.perf_counter(); fn(); dt = time.perf_counter() - s
                if r: times[(k, w)].append(dt)
        print(f"round {r}/{a.rounds} done", file=sys.stderr, flush=True)
    rows = [('model', 'params', 'T', 'B', 'train clips/s', 'infer clips/s', 'train s/step')]
    for (name, T), (B, n, _, _) in cs.items():
        tr, inf = statistics.median(times[((name, T), 'train')]), statistics.median(times[((name, T), 'infer')])
        rows.append((name, f"{n / 1e6:.2f}M", str(T), str(B), f"{B / tr:.1f}", f"{B / inf:.1f}", f"{tr:.2f}"))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"# torch {torch.__version__}, {a.threads} threads, {os.cpu_count()} CPUs, median of {a.rounds} interleaved rounds, "
          f"{time.perf_counter() - t0:.0f} s")
    print('\n'.join('  '.join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(r)) for r in rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
