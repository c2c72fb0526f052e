"Regenerate the static renders in nbs/images/viz_*.png (needs Chromium). Run from the repo root."
import tempfile
from pathlib import Path
import numpy as np
from PIL import Image
from hpe_pretrain.data.skeleton import convert_joints, get_skeleton
from hpe_pretrain.data.camera import h36m_like_cameras
from hpe_pretrain.data.motion import synth_motion
from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.sequence import PoseSequence
from hpe_pretrain.data.cache_writer import write_cache
from hpe_pretrain.viz.skeleton import plot_skeleton_3d, plot_skeleton_2d, animate_skeleton_3d
from hpe_pretrain.viz.explorer import PoseExplorer
from hpe_pretrain.viz.report import write_report
from hpe_pretrain.viz.screenshot import render_png, screenshot
import plotly.graph_objects as go, plotly.offline

out = Path('nbs/images'); out.mkdir(exist_ok=True)
def shrink(p, w):
    im = Image.open(p).convert('RGB')
    if im.width > w: im = im.resize((w, round(im.height * w / im.width)), Image.LANCZOS)
    im.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(p, optimize=True)

cam = h36m_like_cameras(0)[('S9', '54138969')]
clip = cam.world_to_camera(convert_joints(synth_motion(8, 'walk', 1) / 1000, 'h36m32', 'h36m17'))
pred = clip + np.random.default_rng(0).normal(0, 0.03, clip.shape)
kp2d = cam.project(clip); sk = get_skeleton('h36m17')
render_png(plot_skeleton_3d({'ground truth': clip[0], 'prediction': pred[0]}, sk, camera=cam, title='S9 walking, frame 0', width=640, height=480), out / 'viz_skeleton3d.png'); shrink(out / 'viz_skeleton3d.png', 640)
render_png(plot_skeleton_2d({'ground truth': kp2d[0], 'prediction': cam.project(pred[0])}, sk, cam.width, cam.height, size=400), out / 'viz_skeleton2d.png'); shrink(out / 'viz_skeleton2d.png', 520)
render_png(animate_skeleton_3d({'ground truth': clip, 'prediction': pred}, sk, stride=2, title='walk', width=600, height=420), out / 'viz_animation.png'); shrink(out / 'viz_animation.png', 600)

# explorer: its four figures after driving it, laid out as in the widget
with tempfile.TemporaryDirectory() as d:
    d = Path(d); cams = h36m_like_cameras(0); seqs = []
    X = convert_joints(synth_motion(12, 'walk', 9) / 1000, 'h36m32', 'h36m17')
    c = cams[('S9', '54138969')]; Xc = c.world_to_camera(X).astype(np.float32)
    seqs.append(PoseSequence('S9', 'Walking 1', c.id, 'test', Xc, c.project(Xc).astype(np.float32), 50.0, c.width, c.height, camera_params=c))
    cache = PoseCache(write_cache(d / 'c.h5', seqs, 'synthetic', 'h36m17'))
    ex = PoseExplorer(cache, {0: Xc - Xc[:, :1] + np.random.default_rng(0).normal(0, 0.02, Xc.shape)}, height=340)
    ex.frame.value = 5
    figs = [go.Figure(f) for f in (ex.fig2d, ex.fig3d, ex.fig_joints, ex.fig_time)]
    for f in figs: f.update_layout(width=560)
    divs = ''.join(f'<div style="display:inline-block;width:560px">{f.to_html(full_html=False, include_plotlyjs=False, config=dict(displayModeBar=False))}</div>' for f in figs)
    page = f'<html><head><meta charset="utf-8"><script>{plotly.offline.get_plotlyjs()}</script></head><body style="margin:0;width:1130px;font-family:sans-serif"><p style="margin:6px">{ex.info.value}</p>{divs}</body></html>'
    (d / 'ex.html').write_text(page); screenshot(d / 'ex.html', out / 'viz_explorer.png', (1140, 740)); shrink(out / 'viz_explorer.png', 900)
    cache.close()
    # report: the fake run of tests/test_viz_report.py
    import sys; sys.path.insert(0, 'tests'); from test_viz_report import make_run
    r = write_report(make_run(d)); screenshot(r, out / 'viz_report.png', (1200, 900)); shrink(out / 'viz_report.png', 800)
for p in sorted(out.glob('viz_*.png')): print(p, p.stat().st_size)
