"""Frames per second of `hpe-pretrain infer` end to end on a long single-person video: a COCO keypoint *results* JSON
as a detector writes it (one detection per frame, no track ids, 1920x1080 images), flip TTA on.

    python benchmarks/infer_end_to_end.py                          # 10,000 frames, stmo-small, 3 timed rounds
    python benchmarks/infer_end_to_end.py --frames 1000 --rounds 1 # smoke run
    python benchmarks/infer_end_to_end.py --threads 2              # torch and onnxruntime threads (default 1)

The keypoints are synthetic: a walking H36M-format motion (`hpe_pretrain.data.synthetic`) seen by one of its cameras,
mapped to COCO-17 and written with the package's own `write_coco_results`, `track_id` removed. The model is a freshly
initialised `stmo-small` (speed does not depend on the weights) in a run folder, exported to ONNX with
`hpe_pretrain.train.lifting.export_lifting_model` and run through onnxruntime via `load_lifting_model('<...>.onnx')`; the PyTorch
checkpoint of the same run (`load_lifting_model('<run>')`) is timed in the same process, the two interleaved (A, B, B, A,
...) after one untimed warm-up round each.

Headline: `infer_keypoints` + `write_inference` timed as one call, i.e. parse + link + gaps + lift + write (npz and
JSON), without the animation page and without loading the model (both reported on their own). The steps are then
timed one by one, the way `infer_keypoints` chains them, for their shares:
  parse   `read_keypoints` less the linking inside it (JSON, fields, grouping)
  link    `link_detections` on the same detections (the file has no track ids)
  pick    `pick_track`
  gaps    `fill_gaps` + `KeypointTrack.to_joints` (COCO-17 -> H36M-17)
  encode  `PoseCodec.encode` (pixels -> the model's input)
  lift    `predict_sequence` with flip TTA (the model)
  write   `write_inference` (poses_3d.npz + poses_3d.json)
  anim    the animation page (`_animation`: animation.html; not in the headline)
"""
from __future__ import annotations
import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
STEPS = ('parse', 'link', 'pick', 'gaps', 'encode', 'lift', 'write')


def coco_video(n: int, path: Path, seed: int = 0) -> Path:
    "A COCO results JSON of one person walking for `n` frames in 1920x1080 images, without track ids."
    import numpy as np
    from hpe_pretrain.data.keypoint_tracks import KeypointTrack
    from hpe_pretrain.data.keypoint_files import write_coco_results
    from hpe_pretrain.data.skeleton import convert_joints, get_skeleton
    from hpe_pretrain.data.synthetic import synthetic_h36m_cameras, synthetic_h36m_sequence
    _, X = synthetic_h36m_sequence('S1', 14, 1, frames_per_seq=n, seed=seed, length_jitter=0.0)   # 14: Walking, world mm
    cam = synthetic_h36m_cameras(seed)[('S1', '54138969')]
    h17 = convert_joints(cam.project_world(X / 1000.), 'h36m32', 'h36m17') * 1.08 + np.array([420., 0.])   # ~1000 px -> 1920x1080
    H, C = get_skeleton('h36m17'), get_skeleton('coco17')
    kp = np.zeros((len(h17), 17, 2), np.float32)
    for j, name in enumerate(C.joints):
        if name in H.joints: kp[:, j] = h17[:, H.index(name)]
    nose, head = h17[:, H.index('neck')], h17[:, H.index('head')]   # H36M's 'neck' is the nose
    for name, base, off in (('nose', nose, (0, 0)), ('l_eye', head, (6, -4)), ('r_eye', head, (-6, -4)),
                            ('l_ear', head, (12, 0)), ('r_ear', head, (-12, 0))):
        kp[:, C.index(name)] = base + np.array(off)
    conf = np.random.default_rng(seed).uniform(0.4, 1.0, (len(kp), 17)).astype(np.float32)
    write_coco_results([KeypointTrack(0, np.arange(len(kp)), kp, conf, 'coco17', 1920, 1080)], path)
    dets = json.loads(path.read_text())
    for d in dets: del d['track_id']                                 # as a detector writes it
    path.write_text(json.dumps(dets))
    return path


def run_steps(pred, path: Path, out: Path, size=(1920, 1080)) -> tuple[dict, dict]:
    "Each step of `infer_keypoints` + `write_inference` + the animation page, timed alone; (seconds per step, result)."
    import numpy as np
    from hpe_pretrain.data.keypoints import read_keypoints
    from hpe_pretrain.data.keypoint_tracks import fill_gaps, link_detections, pick_track
    from hpe_pretrain.train.evaluate import predict_sequence
    from hpe_pretrain.infer import _animation, write_inference
    t, clock = {}, time.perf_counter
    t0 = clock(); tracks = read_keypoints(path, image_size=size); t['parse'] = clock() - t0
    tr = tracks[0] if len(tracks) == 1 else None
    assert tr is not None and len(tr) > 0, f"expected one track, got {len(tracks)}"
    t0 = clock(); link_detections(tr.frames, tr.keypoints, tr.confidence); t['link'] = clock() - t0
    t['parse'] -= t['link']                                          # read_keypoints linked these same detections
    t0 = clock(); tr = pick_track(tracks); t['pick'] = clock() - t0
    t0 = clock(); pieces = [p.to_joints(pred.joints) for p in fill_gaps(tr)]; t['gaps'] = clock() - t0
    t0 = clock(); xs = [pred.codec.encode(p.keypoints, np.asarray(size, np.float32), p.confidence) for p in pieces]; t['encode'] = clock() - t0
    t0 = clock()
    poses = [pred.codec.decode(predict_sequence(pred.window_fn(True), x, pred.clip_len), None) for x in xs]
    t['lift'] = clock() - t0
    cat = lambda k: np.concatenate([getattr(p, k) for p in pieces])
    r = dict(frames=cat('frames'), poses_3d=np.concatenate(poses), keypoints_2d=cat('keypoints'), confidence=cat('confidence'),
             track_id=tr.track_id, joint_names=list(pred.skeleton.joints), pieces=len(pieces), image_size=size,
             source=str(path), model=pred.source, units=pred.units, encoding=pred.codec.name, video_fps=None, model_fps=pred.fps, resampled=False)
    t0 = clock(); write_inference(out, r, animation=False); t['write'] = clock() - t0
    t0 = clock(); _animation(r, pred.joints, pred.fps or 50., 300); t['anim'] = clock() - t0
    return t, r


def run_whole(pred, path: Path, out: Path, size=(1920, 1080)) -> tuple[float, dict]:
    "The headline: `infer_keypoints` + `write_inference` in one timed call (what `infer` runs, less the animation)."
    from hpe_pretrain.infer import infer_keypoints, write_inference
    t0 = time.perf_counter(); r = infer_keypoints(pred, path, image_size=size, flip_tta=True); write_inference(out, r, animation=False)
    return time.perf_counter() - t0, r


def benchmark(frames: int, rounds: int, model: str, threads: int) -> dict:
    "Per backend: load time, headline seconds per round, step seconds per round; checks both backends agree."
    import numpy as np, torch
    from inference import _make_run
    from hpe_pretrain.train.lifting import export_lifting_model, load_lifting_model
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        t0 = time.perf_counter(); path = coco_video(frames, d/'video.json'); gen = time.perf_counter() - t0
        run, _ = _make_run(d, model)
        onnx = export_lifting_model(run.path, 'onnx', verbose=False)
        res, preds = {}, {}
        for name, src in (('onnxruntime', onnx), ('pytorch', run.path)):
            t0 = time.perf_counter(); preds[name] = load_lifting_model(src, device='cpu')
            res[name] = dict(load=time.perf_counter() - t0, whole=[], steps={k: [] for k in (*STEPS, 'anim')})
        outs = {}
        for r in range(rounds + 1):                                   # round 0: warm-up, not timed
            for name in (list(preds) if r % 2 == 0 else list(preds)[::-1]):
                w, outs[name] = run_whole(preds[name], path, d/f'out_{name}')
                s, _ = run_steps(preds[name], path, d/f'steps_{name}')
                if r:
                    res[name]['whole'].append(w)
                    for k, v in s.items(): res[name]['steps'][k].append(v)
            print(f"round {r}/{rounds} done", file=sys.stderr, flush=True)
        a, b = (outs[k]['poses_3d'] for k in preds)
        diff = float(np.abs(a - b).max())
        assert diff < 1e-3, f"onnxruntime and PyTorch disagree by {diff:.3g} m"
        return dict(results=res, frames=len(outs['onnxruntime']['frames']), json_mb=path.stat().st_size / 2**20,
                    gen_s=gen, max_diff=diff)


def table(b: dict) -> str:
    "One block per backend: headline frames/s, then each step's median seconds and share of the steps' sum."
    n, lines = b['frames'], []
    for name, r in b['results'].items():
        whole = statistics.median(r['whole']); med = {k: statistics.median(v) for k, v in r['steps'].items()}
        tot = sum(med[k] for k in STEPS)
        lines += [f"{name}: {n / whole:,.0f} frames/s headline (parse + lift + write: {whole:.3f} s, median of {len(r['whole'])}; "
                  f"best {n / min(r['whole']):,.0f} frames/s); model load {r['load']:.2f} s (not included)",
                  f"  {'step':<7} {'s':>7} {'share':>6} {'frames/s':>10}"]
        lines += [f"  {k:<7} {med[k]:7.3f} {100 * med[k] / tot:5.1f}% {n / med[k]:10,.0f}" for k in STEPS]
        lines += [f"  {'sum':<7} {tot:7.3f} {100.0:5.1f}% {n / tot:10,.0f}",
                  f"  {'anim':<7} {med['anim']:7.3f}    (not in the headline; with it: {n / (whole + med['anim']):,.0f} frames/s)"]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--frames', type=int, default=10_000, help='frames of the video (one detection each)')
    p.add_argument('--rounds', type=int, default=3, help='timed rounds per backend (after one warm-up round)')
    p.add_argument('--model', default='stmo-small', help='shipped model config name')
    p.add_argument('--threads', type=int, default=1, help='torch threads; onnxruntime uses as many (load_lifting_model)')
    a = p.parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', str(a.threads))
    t0 = time.perf_counter()
    b = benchmark(a.frames, a.rounds, a.model, a.threads)
    import torch, onnxruntime
    print(f"# {a.model}, {b['frames']:,} frames (COCO results JSON, {b['json_mb']:.1f} MiB, no track ids, 1920x1080), flip TTA on; "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {a.threads} thread(s), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; backends agree to {b['max_diff']:.1g} m; {time.perf_counter() - t0:.0f} s in all")
    print(table(b))
    return 0


if __name__ == '__main__':
    sys.exit(main())
