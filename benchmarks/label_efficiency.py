"""Benchmark: does masked-pose pretraining help when 3D labels are scarce? (issue 7, "Pretraining must help")

On the embedded synthetic H36M-format data, one run of the training pipeline (`load_config` + `fit_from_config`):

1. **pretrain** — P-STMO-style masked pose modelling (masked 2D → 2D) on the 2D of *all* training-subject clips
   (S1, S5, S6, S7, S8); no 3D label is used;
2. **finetune** — a fresh lifting model, the pretrained encoder loaded, 2D → 3D on `--fraction` (10%) of the
   3D-labelled training clips;
3. **scratch** — the same lifting model from random weights on the *same* clips (`fraction` subsets are drawn from
   `run.seed`, so finetune and scratch see identical clips) with the *same* budget (epochs, lr, schedule, batch);
4. **eval** — both lifting models on the held-out synthetic subjects S9/S11 (H36M protocols, action-wise).

It prints a table of held-out MPJPE / P-MPJPE of both, the relative improvement, and the wall time of each stage,
and warns (exit status 1) when a lifting model did not learn at all, which makes the comparison meaningless.

    python benchmarks/label_efficiency.py                        # the documented setting (6-15 min, 2 threads)
    python benchmarks/label_efficiency.py --md /tmp/label_eff.md # also write the setting + table as markdown
    python benchmarks/label_efficiency.py --epochs 20            # a longer finetune budget (the gap shrinks)
    python benchmarks/label_efficiency.py --pretrain-epochs 0    # no pretraining: finetune starts from random weights too
    python benchmarks/label_efficiency.py --model dstformer-small train.wd=0.05  # trailing key=value: any config override

Outputs go to `--out` (default: a temporary folder, deleted at the end; the synthetic data are regenerated there,
a few seconds). Pass `--out outputs/bench` to keep the run folder (checkpoints, logs, results, summary.json).
Measured: ~5 min on an idle 2-core CPU, up to ~15 min while the shared machine is loaded. MPJPE is reproducible
for a fixed seed (repeated runs gave identical validation curves).
"""
import argparse, json, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The documented setting (see benchmarks/label_efficiency.md for why these values).
DEFAULTS = dict(model='stmo-small', clip_len=27, stride=9, pretrain_epochs=30, epochs=10, lr=1e-3, pretrain_lr=1e-3,
                mask_ratio=0.8, mask_joints=2, fraction=0.1, bs=64, seed=0, threads=2)
STUCK_MM = 200.0   # a lifting model above this held-out MPJPE has not learned (predicting the root for every joint: ~440)


def overrides(a: argparse.Namespace, out_dir: str) -> list[str]:
    "The config overrides of one benchmark run."
    stages = (['pretrain'] if a.pretrain_epochs > 0 else []) + ['finetune', 'scratch', 'eval']
    ov = [f"stages=[{','.join(stages)}]", f'model={a.model}', f'data.clip_len={a.clip_len}', f'data.stride={a.stride}',
          'pretrain.objective=mpm', f'pretrain.epochs={max(a.pretrain_epochs, 1)}', f'pretrain.lr={a.pretrain_lr}',
          f'corrupt.mpm.mask_frame_ratio={a.mask_ratio}', f'corrupt.mpm.mask_joints={a.mask_joints}',
          # finetune and scratch: the same clips and the same budget
          f'finetune.fraction={a.fraction}', f'scratch.fraction={a.fraction}',
          f'finetune.epochs={a.epochs}', f'scratch.epochs={a.epochs}', f'finetune.lr={a.lr}', f'scratch.lr={a.lr}',
          f'train.bs={a.bs}', 'train.tensorboard=false', f'run.seed={a.seed}', f'run.num_threads={a.threads}',
          'run.device=cpu', f'run.out_dir={out_dir}', 'run.name=label_efficiency']
    return ov + list(a.extra)


def table(summary: dict, prep_s: float) -> tuple[str, dict]:
    "The result table (markdown) and the headline numbers."
    recs = {r['stage']: r for r in summary['stages']}
    res = summary['results']
    train_s = sum(r['seconds'] for r in summary['stages'])
    eval_s = max(summary['seconds'] - train_s - prep_s, 0.0)
    rows = [('stage', 'labels used', 'train clips', 'epochs', 'wall time s', 'MPJPE mm', 'P-MPJPE mm')]
    if 'pretrain' in recs:
        r = recs['pretrain']
        rows.append(('pretrain (masked 2D→2D)', '2D only', str(r['train_clips']), str(r['epochs']), f"{r['seconds']:.0f}",
                     f"(mask err {r['best']:.1f} px)", '-'))
    for st, label in (('scratch', 'scratch (no pretraining)'), ('finetune', 'pretrained + finetune')):
        r = recs[st]
        rows.append((label, f"3D, {r['fraction']:.0%} of clips", str(r['train_clips']), str(r['epochs']), f"{r['seconds']:.0f}",
                     f"{res[st]['MPJPE']:.1f}", f"{res[st]['P-MPJPE']:.1f}"))
    rows.append(('eval (S9, S11; both models)', '-', '-', '-', f'{eval_s:.0f}', '-', '-'))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = lambda r: '| ' + ' | '.join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(r)) + ' |'
    md = '\n'.join([line(rows[0]), '|' + '|'.join('-' * (x + 2) if i < 2 else '-' * (x + 1) + ':' for i, x in enumerate(w)) + '|']
                   + [line(r) for r in rows[1:]])
    s, f = res['scratch'], res['finetune']
    head = dict(mpjpe_scratch=s['MPJPE'], mpjpe_pretrained=f['MPJPE'], pmpjpe_scratch=s['P-MPJPE'], pmpjpe_pretrained=f['P-MPJPE'],
                improvement_pct=100 * (s['MPJPE'] - f['MPJPE']) / s['MPJPE'],
                p_improvement_pct=100 * (s['P-MPJPE'] - f['P-MPJPE']) / s['P-MPJPE'],
                total_s=summary['seconds'] + prep_s, encoder=recs['finetune'].get('encoder'))
    return md, head


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in DEFAULTS.items(): p.add_argument('--' + k.replace('_', '-'), type=type(v), default=v)
    p.add_argument('--out', default=None, help='output folder (default: a temporary one, deleted)')
    p.add_argument('--md', default=None, help='also write the table (markdown) to this file')
    p.add_argument('--target', type=float, default=15.0, help='required MPJPE improvement in %% (exit 1 below it)')
    p.add_argument('extra', nargs='*', help='extra key=value config overrides')
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    from hpe_pretrain.train.config import load_config
    from hpe_pretrain.train.pipeline import ensure_cache, fit_from_config
    from hpe_pretrain.cli import tune_malloc
    tune_malloc()                                                 # like `hpe-pretrain fit` (run.malloc_tuning)

    tmp = None if a.out else tempfile.TemporaryDirectory(prefix='label_eff_')
    out = a.out or tmp.name
    cfg = load_config(overrides(a, out))
    t0 = time.perf_counter()
    ensure_cache(cfg.data, cfg.run.out_dir, progress=False)      # data generation + prepare, timed apart
    prep_s = time.perf_counter() - t0
    summary = fit_from_config(cfg, progress=False)
    md, h = table(summary, prep_s)
    enc = h['encoder']
    setting = (f"model `{a.model}`, clip {a.clip_len} frames (stride {a.stride}), batch {a.bs}, seed {a.seed}, "
               f"{a.threads} torch threads; pretrain: mpm, {a.pretrain_epochs} epochs, lr {a.pretrain_lr}, mask ratio "
               f"{a.mask_ratio} + {a.mask_joints} joints/frame; finetune = scratch: {a.epochs} epochs, lr {a.lr}, "
               f"{cfg.train.schedule} schedule, {a.fraction:.0%} of the labelled clips"
               + (f"; extra: {' '.join(a.extra)}" if a.extra else ''))
    verdict = (f"MPJPE: scratch {h['mpjpe_scratch']:.1f} mm → pretrained {h['mpjpe_pretrained']:.1f} mm "
               f"(**{h['improvement_pct']:.1f}%** lower; P-MPJPE {h['p_improvement_pct']:.1f}% lower); "
               f"target ≥ {a.target:.0f}%: {'met' if h['improvement_pct'] >= a.target else 'NOT met'}. "
               f"Total wall time {h['total_s']:.0f} s (data {prep_s:.0f} s).")
    enc_line = (f"Encoder transfer: {enc['loaded']} tensors loaded, {enc['missing']} missing, {enc['mismatched']} mismatched."
                if enc else '')
    stuck = [st for st, k in (('scratch', 'mpjpe_scratch'), ('finetune', 'mpjpe_pretrained')) if h[k] > STUCK_MM]
    warn = (f"WARNING: {' and '.join(stuck)} did not learn (held-out MPJPE > {STUCK_MM:.0f} mm): the comparison is not valid.\n"
            if stuck else '')
    text = f"{setting}\n\n{md}\n\n{verdict}\n{enc_line}\n{warn}"
    print('\n' + text)
    print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in h.items()}))
    if a.md:
        cmd = 'python benchmarks/label_efficiency.py' + ''.join(f' {x}' for x in (argv if argv is not None else sys.argv[1:]))
        Path(a.md).write_text(f"```\n{cmd}\n```\n\n{text}")
    if tmp is not None: tmp.cleanup()
    return 0 if h['improvement_pct'] >= a.target and not stuck else 1


if __name__ == '__main__':
    sys.exit(main())
