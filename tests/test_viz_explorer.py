"""Pose explorer: `from_run` finds a run's cache and predicts through the package's model loader; the figure holds
the first frame before it is displayed; every panel follows a frame or camera change (in the Python figure, in
the update message a displayed view receives, and in the widget state a new view starts from); wrong types and
units are refused; notebooks are never saved with megabytes of widget state.

`test_voila_every_panel_updates` is marked `slow` (run with `pytest -m slow`): it serves a notebook with Voila and
drives it in headless Chromium (needs `voila`, `playwright` and Debian's `chromium`; skipped without them)."""
import json, os, shutil, socket, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest

from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.cache_writer import write_cache
from hpe_pretrain.data.sequence import PoseSequence
from hpe_pretrain.data.camera import h36m_like_cameras
from hpe_pretrain.data.skeleton import convert_joints
from hpe_pretrain.data.motion import synth_motion
from hpe_pretrain.testing import make_run
from hpe_pretrain.viz.explorer import PANELS, PoseExplorer, run_cache

ROOT = Path(__file__).resolve().parents[1]


def demo_sequences(n: int = 16):
    "S9 and S11 (test) and S1 (train), walking and sitting, two cameras each."
    cams = h36m_like_cameras(0)
    for s in ('S9', 'S11', 'S1'):
        for act, fam in (('Walking 1', 'walk'), ('Sitting 1', 'sit')):
            X = convert_joints(synth_motion(n, fam, int(s[1:])) / 1000, 'h36m32', 'h36m17')
            for cid in ('54138969', '55011271'):
                c = cams[(s, cid)]; Xc = c.world_to_camera(X).astype(np.float32)
                yield PoseSequence(s, act, cid, 'train' if s == 'S1' else 'test', Xc, c.project(Xc).astype(np.float32), 50.0,
                                   c.width, c.height, camera_params=c)


def demo_run(root: Path, summary: bool = True) -> tuple[Path, Path]:
    "A pose cache and a run folder (untrained stmo-tiny) whose summary.json records the cache as an absolute path."
    cache = write_cache(root / 'data' / 'demo.h5', demo_sequences(), 'synthetic', 'h36m17')
    run, _ = make_run(root / 'outputs' / 'main')
    if summary:
        run.results.mkdir(exist_ok=True)
        run.summary.write_text(json.dumps(dict(run=str(run), cache=str(cache.resolve()))))
    return cache, run.path


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    return demo_run(tmp_path_factory.mktemp('explorer'))


def traces_json(ex: PoseExplorer, panel: str) -> str:
    "The coordinates of a panel's traces, as text (for before/after comparisons)."
    return json.dumps([{k: np.asarray(getattr(t, k), dtype=object).tolist() for k in ('x', 'y', 'z') if getattr(t, k, None) is not None}
                       for t in ex.panel(panel)], default=float)


def test_from_run_predicts_through_the_model_loader(demo, tmp_path, monkeypatch):
    cache, run = demo
    monkeypatch.chdir(tmp_path)                                     # the cache resolves from any working directory
    assert run_cache(run) == cache.resolve()
    ex = PoseExplorer.from_run(run)
    t = ex.src.table
    assert set(t['split'][ex.shown]) == {'test'} and list(ex.subject.options) == ['S9', 'S11']
    assert ex.src.names[ex.index] == 'S9/Sitting 1/54138969' and sorted(ex.predictions) == [ex.index]   # opened on a test sequence, predicted
    # the reference: the same model scored by `evaluate_lifting` (evaluate_cache's windows and decode, in mm)
    from hpe_pretrain.train.lifting import evaluate_lifting, load_lifting_model
    lm = load_lifting_model(run, 'cpu')
    ref = evaluate_lifting(lm, cache, flip_tta=lm.conv.flip, stride=lm.conv.stride, progress=False).predictions
    for cam in ('55011271', '54138969'):
        ex.camera.value = cam
        np.testing.assert_allclose(ex.predictions[ex.index] * 1000, ref[ex.src.names[ex.index]], atol=1e-3)
    p = ex.predictions[ex.index]
    assert np.abs(p[:, 0]).max() < 1e-6 and np.ptp(p, axis=1).max() < 5      # root-relative metres
    assert sorted(ex.predictions) == sorted(ex.src.find('S9', 'Sitting 1', c) for c in ('54138969', '55011271'))  # only what was shown
    ex.src._cache.close()


def test_from_run_cache_fallbacks(tmp_path):
    cache, run = demo_run(tmp_path, summary=False)
    with pytest.raises(FileNotFoundError) as e: run_cache(run)
    msg = str(e.value)
    assert '\n' not in msg and 'summary.json' in msg and 'data.cache is null' in msg and 'pass cache=PATH' in msg
    cfg = (run / 'config.yaml').read_text()
    (run / 'config.yaml').write_text(cfg.replace('cache: null', f'cache: {cache}'))
    assert run_cache(run) == cache                                   # config.yaml's data.cache
    (run / 'results').mkdir(); (run / 'results' / 'summary.json').write_text(json.dumps(dict(cache=str(tmp_path / 'gone.h5'))))
    assert run_cache(run) == cache                                   # a stale summary falls back to the config
    (run / 'config.yaml').write_text(cfg)
    with pytest.raises(FileNotFoundError, match=r"records cache '.*gone.h5', missing; .*data.cache is null"): run_cache(run)
    ex = PoseExplorer.from_run(run, cache=cache, split='train')
    assert list(ex.subject.options) == ['S1'] and ex.index in ex.predictions
    ex.src._cache.close()


def test_first_display_holds_the_first_frame(demo):
    cache, _ = demo
    with PoseCache(cache) as c:
        gt, kp = (np.array(c.read(k, 0, 16), np.float64) for k in ('joints_3d', 'joints_2d'))
        pred = gt - gt[:, :1] + np.random.default_rng(0).normal(0, 0.02, gt.shape)
        ex = PoseExplorer(c, {0: pred}, split='test')
        assert ex.index == 0 and ex.frame.value == 0
        # the widget state a view is built from (sent when the figure is first shown) holds frame 0, not zeros
        wd = ex.fig._widget_data
        np.testing.assert_allclose(wd[PANELS['2d'].start + 3]['x'], kp[0, :, 0])
        np.testing.assert_allclose(wd[PANELS['3d'].start + 3]['customdata'], gt[0])
        aligned = pred[0] - pred[0, :1] + gt[0, :1]
        np.testing.assert_allclose(wd[PANELS['3d'].start + 7]['customdata'], aligned)
        np.testing.assert_allclose(wd[PANELS['joints'].start]['y'], np.linalg.norm(aligned - gt[0], axis=-1) * 1000)
        np.testing.assert_allclose(wd[PANELS['time'].start]['y'], np.linalg.norm(pred - pred[:, :1] + gt[:, :1] - gt, axis=-1).mean(1) * 1000)
        assert ex.fig._widget_layout['xaxis']['range'] == [0, 1000] and ex.fig._widget_layout['annotations'][2]['text'].startswith('per-joint error, frame 0')
        # a change made before display reaches the first view too (the state is synced on every change)
        ex.frame.value = 9
        np.testing.assert_allclose(ex.fig._widget_data[3]['x'], kp[9, :, 0])
        bundle = ex._repr_mimebundle_()
        assert 'application/vnd.jupyter.widget-view+json' in bundle


def test_every_panel_follows_frame_and_camera(demo):
    cache, _ = demo
    with PoseCache(cache) as c:
        rng = np.random.default_rng(1)
        preds = {i: np.array(c.read('joints_3d', s, s + n)) + rng.normal(0, 0.03, (n, 17, 3)) for i, (s, n) in enumerate(zip(c.seqs.start, c.seqs.length))}
        ex = PoseExplorer(c, preds)
        msgs = []
        ex.fig.observe(lambda ch: msgs.append(ch['new']) if ch['new'] else None, '_py2js_update')
        before = {k: traces_json(ex, k) for k in PANELS}
        ex.frame.value = 7
        after_frame = {k: traces_json(ex, k) for k in PANELS}
        assert all(before[k] != after_frame[k] for k in PANELS), [k for k in PANELS if before[k] == after_frame[k]]
        # one update message per change, touching every panel's traces (what a displayed view applies)
        assert len(msgs) == 1 and set(range(15)) - set(msgs[0]['style_traces']) <= {13}   # the time line is per sequence
        assert msgs[0]['layout_data'] == {'annotations.2.text': ex.fig.layout.annotations[2].text}
        assert json.dumps(ex.fig._widget_data[14]['x']) == '[7]'                           # the state a new view starts from
        cam = [o for o in ex.camera.options if o != ex.camera.value][0]
        msgs.clear(); ex.camera.value = cam
        after_cam = {k: traces_json(ex, k) for k in PANELS}
        assert all(after_frame[k] != after_cam[k] for k in PANELS), [k for k in PANELS if after_frame[k] == after_cam[k]]
        assert len(msgs) == 1 and set(msgs[0]['style_traces']) == set(range(15))
        assert ex.frame.value == 7 and ex.src.names[ex.index].endswith(cam)
        gt, kp = ex.src.arrays(ex.index)
        np.testing.assert_allclose(ex.panel('2d')[3].x, kp[7, :, 0])
        np.testing.assert_allclose(ex.panel('3d')[3].customdata, gt[7])
        np.testing.assert_allclose(ex.panel('time')[0].y, np.linalg.norm(ex.pred - gt, axis=-1).mean(1) * 1000)
        np.testing.assert_allclose(ex.fig._widget_data[7]['customdata'], gt[7])


def test_refusals(demo):
    cache, run = demo
    with pytest.raises(TypeError) as e: PoseExplorer(str(run))
    assert str(e.value) == (f"PoseExplorer: got the path {str(run)!r}; open a run folder with PoseExplorer.from_run({str(run)!r}), "
                            f"a pose cache with PoseExplorer(PoseCache({str(run)!r}))")
    with pytest.raises(TypeError, match='expected a PoseCache or a list of PoseSequence, got dict'): PoseExplorer({'a': 1})
    with PoseCache(cache) as c:
        mm = np.array(c.read('joints_3d', 0, 16)) * 1000
        with pytest.raises(ValueError) as e: PoseExplorer(c, {'S9/Walking 1/54138969': mm})
        msg = str(e.value)
        assert '\n' not in msg and "predictions['S9/Walking 1/54138969']" in msg and 'expected camera metres' in msg and 'millimetres? divide by 1000' in msg
        with pytest.raises(ValueError, match=r"predict\(10\) \(sequence .S1/Sitting 1/54138969.\) spans .* expected camera metres"): PoseExplorer(c, predict=lambda i: mm)
        with pytest.raises(ValueError, match="non-finite"): PoseExplorer(c, {0: mm * np.nan})
        with pytest.raises(ValueError, match=r"no 'valid' sequences \(splits: test, train\)"): PoseExplorer(c, split='valid')


def test_notebooks_hold_no_megabytes():
    "No notebook is saved with megabytes of outputs or widget state; the explorer's page never holds a live explorer."
    nbs = sorted((ROOT / 'nbs').rglob('*.ipynb'))
    assert len(nbs) > 30
    big = {p.name: p.stat().st_size for p in nbs if p.stat().st_size > 1_000_000}
    assert not big, f'notebooks over 1 MB: {big}'
    for p in nbs:
        nb = json.loads(p.read_text(encoding='utf-8'))
        state = json.dumps(nb.get('metadata', {}).get('widgets', {}))
        assert len(state) < 5000, f'{p.name}: {len(state)} characters of saved widget state'
    ex_nb = json.loads((ROOT / 'nbs' / '04b_viz.explorer.ipynb').read_text())
    views = [c for c in ex_nb['cells'] for o in c.get('outputs', []) if 'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
    assert not views, 'nbs/04b_viz.explorer.ipynb is saved with a live explorer'


# --- Voila, in a real browser -------------------------------------------------------------------------------

VOILA_NB_CELLS = ["from hpe_pretrain.viz.explorer import PoseExplorer",
                  "ex = PoseExplorer.from_run({run!r})\nex.frame.value = 3   # a change before display reaches the first view",
                  "ex"]

BROWSER_JS = """() => { const el = document.querySelector('.js-plotly-plot'); return {
  annotations: (el.layout.annotations || []).map(a => a.text),
  traces: el.data.map(t => ({x: Array.from(t.x || []), y: Array.from(t.y || []), z: Array.from(t.z || [])}))}; }"""


def _free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _browser_panels(fig: dict) -> dict:
    return {k: json.dumps(fig['traces'][s]) for k, s in PANELS.items()}


@pytest.mark.slow
def test_voila_every_panel_updates(tmp_path):
    "Voila serves a notebook showing `PoseExplorer.from_run`; in Chromium every panel is drawn at first display and follows the slider and the camera."
    voila = pytest.importorskip('voila'); pytest.importorskip('playwright'); pytest.importorskip('ipykernel')
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    if chromium is None: pytest.skip('headless Chromium not installed (Debian package `chromium`)')
    import nbformat
    from playwright.sync_api import sync_playwright
    cache, run = demo_run(tmp_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.format(run=str(run))) for c in VOILA_NB_CELLS])
    nb.metadata['kernelspec'] = dict(name='python3', display_name='Python 3', language='python')
    nbformat.write(nb, tmp_path / 'explorer.ipynb')
    share = Path(voila.__file__).resolve().parents[1] / 'share' / 'jupyter'    # voila installed with pip --target
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *sys.path[1:]]), OMP_NUM_THREADS='1',
               JUPYTER_PATH=os.pathsep.join(filter(None, [str(share) if share.exists() else '', os.environ.get('JUPYTER_PATH', '')])))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, '-m', 'voila', str(tmp_path / 'explorer.ipynb'), '--no-browser', f'--port={port}', '--Voila.ip=127.0.0.1'],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=chromium, args=['--no-sandbox'])
            page = b.new_page(viewport={'width': 1100, 'height': 1000})
            errors = []; page.on('pageerror', lambda e: errors.append(str(e)))
            for _ in range(60):                                       # the server takes a few seconds to start
                try: page.goto(f'http://127.0.0.1:{port}/', timeout=240_000); break
                except Exception: time.sleep(1)
            page.wait_for_function("(el => el && el.data && el.data.length == 15)(document.querySelector('.js-plotly-plot'))", timeout=240_000)
            page.wait_for_timeout(3000)
            first = page.evaluate(BROWSER_JS); info1 = page.inner_text('.widget-html-content')
            handle = page.query_selector('.widget-slider .noUi-handle'); handle.focus()
            for _ in range(6): page.keyboard.press('ArrowRight'); page.wait_for_timeout(100)
            page.wait_for_timeout(2500)
            mid = page.evaluate(BROWSER_JS); info2 = page.inner_text('.widget-html-content')
            sel = [d for d in page.query_selector_all('.widget-dropdown') if d.inner_text().strip().startswith('camera')][0].query_selector('select')
            sel.select_option(label='55011271'); page.wait_for_timeout(3000)
            last = page.evaluate(BROWSER_JS); info3 = page.inner_text('.widget-html-content')
            b.close()
    finally:
        proc.terminate(); proc.wait(30)
    assert 'frame 3 / 15' in info1 and 'frame 9 / 15' in info2 and '55011271 · frame 9' in info3, (info1, info2, info3)
    ex = PoseExplorer.from_run(run)                                   # what the page must show at first display
    ex.frame.value = 3
    np.testing.assert_allclose(first['traces'][3]['x'], ex.panel('2d')[3].x, rtol=1e-6)
    assert first['annotations'][2] == ex.fig.layout.annotations[2].text
    p1, p2, p3 = _browser_panels(first), _browser_panels(mid), _browser_panels(last)
    assert [k for k in PANELS if p1[k] == p2[k]] == [], 'panels that did not follow the frame slider'
    assert [k for k in PANELS if p2[k] == p3[k]] == [], 'panels that did not follow the camera'
    assert not errors, errors
    ex.src._cache.close()
