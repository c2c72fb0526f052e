"""Benchmark: does pretraining on several 2D sources beat pretraining on the H36M-format 2D alone? (issue 19)

On the embedded synthetic data, two runs of the pipeline (`load_config` + `fit_from_config`) that differ only in the
pretraining data, both finetuned on the same 10 % of the H36M-format labelled clips with the same budget:

* **A, H36M alone** — masked pose modelling on the 2D of the H36M-format training subjects;
* **B, mixture** — the same plus the 2D of the 3DHP-format training set (other bodies, motions and cameras, mpi17
  joints permuted to h36m17) and a 2D-only COCO-format set (a third synthetic "subject pool", H36M-format data of
  another seed whose 2D is written as COCO keypoint results, one JSON per sequence, read by the package's reader);
  weights 0.5 / 0.25 / 0.25.

Both pretrain for the same number of steps (`pretrain.clips_per_epoch` = the H36M clips, so B sees other data, not
more updates; `--same-steps false`: B draws as many clips as all its sources hold). Finetuning on 10 % of the labels
and a scratch baseline (run A) use identical clips and budgets; evaluation on held-out S9/S11 (H36M protocols,
action-wise, flip test-time augmentation) and on the synthetic 3DHP test sequences.

    python benchmarks/mixture.py                   # the documented setting (~10-20 min on a 2-core CPU)
    python benchmarks/mixture.py --pretrain-epochs 2 --epochs 2 --quick   # a smoke run (~1 min)
    python benchmarks/mixture.py --md /tmp/mixture.md

The COCO-format pool's coco17 points come from h36m17 2D (limbs as they are, the nose at the neck/head midpoint,
eyes and ears offset from it), so COCO → h36m17 re-derives the pelvis, spine, thorax and head from them: a
detector-like joint definition, not a copy of the H36M one.
"""
import argparse, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULTS = dict(model='stmo-small', clip_len=27, stride=9, pretrain_epochs=20, epochs=10, lr=1e-3, mask_ratio=0.8,
                fraction=0.1, bs=64, seed=0, threads=2)


def coco_pool(out: Path, seed: int = 2, frames: int = 240) -> tuple[Path, int]:
    "A folder of COCO keypoint-results JSON files (one per training sequence of a new synthetic H36M-format pool)."
    import numpy as np
    from hpe_pretrain.data.prepare import prepare
    from hpe_pretrain.data.cache import PoseCache
    from hpe_pretrain.data.skeleton import get_skeleton
    from hpe_pretrain.data.keypoint_tracks import KeypointTrack
    from hpe_pretrain.data.keypoint_files import write_coco_results
    cache = prepare('synthetic', src=out/'pool_raw', out=out/'pool.h5', fmt='h36m', progress=False, seed=seed, frames_per_seq=frames)
    H, C = get_skeleton('h36m17'), get_skeleton('coco17')
    n = 0
    with PoseCache(cache) as c:
        t = c.seqs
        for i in np.flatnonzero((t.split == 'train') & (t.width == 1000) & (t.height == 1000)):
            kp = c.read('joints_2d', int(t.start[i]), int(t.start[i] + t.length[i]))
            xy = np.stack([kp[:, H.index(j) if j in H.joints else H.index('head')] for j in C.joints], 1)
            nose = (kp[:, H.index('neck')] + kp[:, H.index('head')]) / 2
            xy[:, C.index('nose')] = nose
            for j, dx, dy in (('l_eye', 6, -4), ('r_eye', -6, -4), ('l_ear', 12, 0), ('r_ear', -12, 0)):
                xy[:, C.index(j)] = nose + np.array([dx, dy], np.float32)
            write_coco_results([KeypointTrack(1, np.arange(len(xy)), xy, np.full(xy.shape[:2], .9, np.float32), 'coco17')],
                               out/'coco'/f'seq{i:04d}.json'); n += 1
    return out/'coco', n


def overrides(a, out: str, name: str, mixture: list | None, clips: int | None) -> list[str]:
    stages = ['pretrain', 'finetune', 'eval'] + (['scratch'] if mixture is None else [])
    ov = [f"stages=[{','.join(stages)}]", f'model={a.model}', f'data.clip_len={a.clip_len}', f'data.stride={a.stride}',
          'pretrain.objective=mpm', f'pretrain.epochs={a.pretrain_epochs}', f'corrupt.mpm.mask_frame_ratio={a.mask_ratio}',
          f'finetune.fraction={a.fraction}', f'scratch.fraction={a.fraction}', f'finetune.epochs={a.epochs}',
          f'scratch.epochs={a.epochs}', f'finetune.lr={a.lr}', f'scratch.lr={a.lr}', f'train.bs={a.bs}',
          'train.tensorboard=false', f'run.seed={a.seed}', f'run.num_threads={a.threads}', 'run.device=cpu',
          f'run.out_dir={out}', f'run.name={name}', 'eval.also=[synthetic_3dhp]']
    if mixture is not None:
        ov.append('pretrain.data=[' + ', '.join('{' + ', '.join(f'{k}: {v}' for k, v in m.items()) + '}' for m in mixture) + ']')
        if clips: ov.append(f'pretrain.clips_per_epoch={clips}')
    return ov


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in DEFAULTS.items(): p.add_argument('--' + k.replace('_', '-'), type=type(v), default=v)
    p.add_argument('--same-steps', default='true', choices=['true', 'false'], help='mixture: as many pretraining clips per epoch as H36M alone')
    p.add_argument('--quick', action='store_true', help='short synthetic sequences (a smoke run)')
    p.add_argument('--out', default=None, help='output folder (default: a temporary one, deleted)')
    p.add_argument('--md', default=None, help='also write the result (markdown) to this file')
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    from hpe_pretrain.train.config import load_config
    from hpe_pretrain.train.pipeline import fit_from_config
    from hpe_pretrain.cli import tune_malloc
    tune_malloc()
    tmp = None if a.out else tempfile.TemporaryDirectory(prefix='mixture_')
    out = Path(a.out or tmp.name); out.mkdir(parents=True, exist_ok=True)
    quick = ['data.synthetic.frames_per_seq=60'] if a.quick else []
    t0 = time.perf_counter()
    coco, n_files = coco_pool(out, frames=60 if a.quick else 240)
    runs = {}
    sa = fit_from_config(load_config(overrides(a, str(out), 'h36m_alone', None, None) + quick), progress=False)
    clips = sa['stages'][0]['train_clips'] if a.same_steps == 'true' else None
    mixture = [dict(data='synthetic', weight=0.5), dict(data='synthetic_3dhp', weight=0.25),
               dict(path=str(coco), weight=0.25, name='coco_pool', image_size='[1000, 1000]')]
    sb = fit_from_config(load_config(overrides(a, str(out), 'mixture', mixture, clips) + quick), progress=False)
    runs = {'A: H36M-format 2D alone': sa, 'B: mixture (H36M + 3DHP + COCO 2D)': sb}
    rows = [('run', 'pretrain clips/epoch', 'pretrain s', 'H36M MPJPE', 'H36M P-MPJPE', '3DHP MPJPE', '3DHP PCK', '3DHP AUC')]
    for name, s in runs.items():
        pre, res = s['stages'][0], s['results']
        h, m = res['finetune'], res['finetune on synthetic_3dhp']
        rows.append((name, str(pre['train_clips']), f"{pre['seconds']:.0f}", f"{h['MPJPE']:.1f}", f"{h['P-MPJPE']:.1f}",
                     f"{m['MPJPE']:.1f}", f"{m['PCK']:.1f}", f"{m['AUC']:.1f}"))
    sc = sa['results'].get('scratch')
    if sc: rows.append(('scratch (no pretraining)', '-', '-', f"{sc['MPJPE']:.1f}", f"{sc['P-MPJPE']:.1f}", '-', '-', '-'))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = lambda r: '| ' + ' | '.join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) + ' |'
    md = '\n'.join([line(rows[0]), '|' + '|'.join('-' * (x + 2) if i == 0 else '-' * (x + 1) + ':' for i, x in enumerate(w)) + '|']
                   + [line(r) for r in rows[1:]])
    ha, hb = sa['results']['finetune']['MPJPE'], sb['results']['finetune']['MPJPE']
    mix = sb['stages'][0].get('mixture', [])
    setting = (f"model `{a.model}`, clip {a.clip_len} (stride {a.stride}), batch {a.bs}, seed {a.seed}, {a.threads} threads; "
               f"pretrain: mpm, {a.pretrain_epochs} epochs, mask ratio {a.mask_ratio}; finetune: {a.epochs} epochs, lr {a.lr}, "
               f"{a.fraction:.0%} of the H36M-format labelled clips; mixture sources: "
               + ', '.join(f"{m['name']} ({m['kind']}, {m['joints']}, p={m['probability']:.2f}, {m['clips']} clips)" for m in mix)
               + f"; COCO pool: {n_files} files" + ('; --quick' if a.quick else ''))
    verdict = (f"H36M-format held-out MPJPE after finetuning on {a.fraction:.0%} of the labels: A {ha:.1f} mm, B {hb:.1f} mm "
               f"({100 * (ha - hb) / ha:+.1f}% for the mixture). Total {time.perf_counter() - t0:.0f} s.")
    text = f"{setting}\n\n{md}\n\n{verdict}\n"
    print('\n' + text)
    if a.md:
        cmd = 'python benchmarks/mixture.py' + ''.join(f' {x}' for x in (argv if argv is not None else sys.argv[1:]))
        Path(a.md).write_text(f"```\n{cmd}\n```\n\n{text}")
    if tmp is not None: tmp.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
