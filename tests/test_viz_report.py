"""Run report: written atomically from a made-up run folder, self-contained (no external scripts), and it renders.

The render test is marked `slow` (run with `pytest -m slow`) and needs headless Chromium (Debian `chromium`)."""
import json, re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from hpe_pretrain.viz.report import write_report
from hpe_pretrain.viz.screenshot import find_chromium, render_png, screenshot
from hpe_pretrain.viz.skeleton import plot_skeleton_3d

HISTORY = ('epoch,train_loss,valid_loss,mpjpe,time\n'
           + ''.join(f'{e},{1 / (e + 1):.4f},{1.2 / (e + 1):.4f},{100 / (e + 1) + 30:.2f},00:0{e}\n' for e in range(6)))


def make_run(root: Path) -> Path:
    "A run folder in the layout the training pipeline writes: config, a CSVLogger history, results JSON/CSV."
    run = root / 'outputs' / 'demo'
    (run / 'logs').mkdir(parents=True)
    (run / 'results' / 'finetune').mkdir(parents=True)
    (run / 'models').mkdir()
    (run / 'config.yaml').write_text('model:\n  name: dstformer-lite\ntrain:\n  epochs: 6\n')
    (run / 'logs' / 'finetune_history.csv').write_text(HISTORY)
    rows = [dict(action=a, sequences=2, frames=100, MPJPE=40.0 + i, **{'P-MPJPE': 30.0 + i})
            for i, a in enumerate(['Directions', 'Eating', 'Walking'])]
    seqs = [dict(sequence=f'S9/{r["action"]} 1/54138969', frames=50, MPJPE=r['MPJPE']) for r in rows]
    (run / 'results' / 'finetune' / 'results.json').write_text(json.dumps(
        dict(dataset='h36m', summary=dict(MPJPE=41.0), settings=dict(aggregation='action-wise'),
             tables=dict(per_action=rows, per_sequence=seqs))))
    (run / 'results' / 'extra.csv').write_text('metric,value\nthroughput,123.4\n')
    rng = np.random.default_rng(0)
    gt = rng.normal(0, 0.3, (2, 4, 17, 3)) + [0, 0, 4]
    np.savez(run / 'results' / 'samples.npz', gt=gt, pred=gt + 0.02, names=np.array(['a', 'b']), skeleton=np.array('h36m17'))
    return run


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(); self.tags, self.srcs = [], []
    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.srcs += [v for k, v in attrs if k in ('src', 'href') and v and re.match(r'https?:|//', v)]


def test_report_written_self_contained(tmp_path):
    run = make_run(tmp_path)
    out = write_report(run)
    assert out == run / 'results' / 'report.html' and out.exists()
    page = out.read_text(encoding='utf-8')
    p = _Parser(); p.feed(page); p.close()
    assert p.srcs == [], f'external resources: {p.srcs}'
    assert not re.search(r'<script[^>]*\bsrc\s*=', page)
    assert page.count('plotly.js v') == 1                  # inlined once
    # history curve, per-action bars, worst sequences, 2 pose animations from samples.npz
    assert page.count('Plotly.newPlot(') == 5
    assert 'dstformer-lite' in page and 'throughput' in page
    assert not list(run.rglob('*.tmp'))


def test_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='run folder not found'):
        write_report(tmp_path / 'missing')
    run = make_run(tmp_path)
    (run / 'results' / 'broken.json').write_text('{not json')
    with pytest.raises(ValueError, match='broken.json: not valid JSON'):
        write_report(run)


def test_report_without_anything(tmp_path):
    out = write_report(tmp_path, out=tmp_path / 'r.html')
    page = out.read_text()
    assert 'No config.yaml' in page and 'No training logs' in page and 'plotly.js v' not in page


def _check_png(png: Path, min_plot_fraction: float):
    from PIL import Image
    a = np.asarray(Image.open(png).convert('RGB')).astype(np.float64)
    assert a.std() > 10, f'{png} looks blank (pixel std {a.std():.2f})'
    # plotly's default plot background (#E5ECF6) only appears if plotly.js ran and drew the figures
    plot_bg = (np.abs(a - [229, 236, 246]).sum(-1) < 4).mean()
    assert plot_bg > min_plot_fraction, f'{png}: no plotly plot drawn (background fraction {plot_bg:.4f})'


@pytest.mark.slow
def test_report_renders_in_chromium(tmp_path):
    if find_chromium() is None:
        pytest.skip('headless Chromium not installed (Debian package `chromium`): cannot render the report')
    out = write_report(make_run(tmp_path))
    png = screenshot(out, tmp_path / 'report.png', (1200, 900))
    _check_png(png, 0.02)


@pytest.mark.slow
def test_figure_png(tmp_path):
    if find_chromium() is None:
        pytest.skip('headless Chromium not installed (Debian package `chromium`): cannot render figures')
    pose = np.random.default_rng(1).normal(0, 0.3, (17, 3)) + [0, 0, 4]
    png = render_png(plot_skeleton_3d(pose, 'h36m17', width=500, height=400), tmp_path / 'fig.png')
    from PIL import Image
    a = np.asarray(Image.open(png).convert('RGB')).astype(np.float64)
    assert a.shape[:2] == (400, 500) and a.std() > 10


def test_charts_plot_the_tables_values():
    """Every results chart shows the numbers of its table: per-action means (never sums of sequences), the worst
    sequences, the joint groups — on the tables a real evaluation writes."""
    import pandas as pd
    from hpe_pretrain.train.eval_protocols import evaluate_3dhp, evaluate_h36m
    from hpe_pretrain.viz.report import _table_figures
    rng = np.random.default_rng(0)
    names = [f'S9/{a} {k}/{c}' for a in ('Eating', 'Walking') for k in (1, 2) for c in ('54138969', '55011271')]
    gts = {n: rng.normal(0, 300, (20 + 5 * i, 17, 3)) for i, n in enumerate(names)}
    preds = {n: g + rng.normal(0, 30 + 10 * i, g.shape) for i, (n, g) in enumerate(gts.items())}
    res = evaluate_h36m(preds, gts)
    per_action, per_seq = pd.DataFrame(res.tables['per_action']), pd.DataFrame(res.tables['per_sequence'])
    fig = _table_figures('per_action', per_action)[0]
    mp = fig.data[[t.name for t in fig.data].index('MPJPE')]
    np.testing.assert_allclose(mp.y, per_action['MPJPE'].to_numpy(), rtol=1e-12)        # the table's values, bar by bar
    assert list(mp.x) == per_action['action'].tolist()
    fig = _table_figures('per_sequence', per_seq)[0]                                        # worst sequences, not summed actions
    worst = per_seq.sort_values('MPJPE', ascending=False).head(10)
    bar = fig.data[0]
    got = dict(zip(bar.y, bar.x)) if isinstance(bar.x[0], (int, float)) else dict(zip(bar.x, bar.y))
    np.testing.assert_allclose(sorted(got.values()), sorted(worst['MPJPE'].to_numpy()), rtol=1e-12)
    r3 = evaluate_3dhp({'TS1': np.zeros((10, 17, 3))}, {'TS1': rng.normal(0, 100, (10, 17, 3))})
    groups = pd.DataFrame(r3.tables['per_joint_group'])
    figs = _table_figures('per_joint_group', groups)
    assert figs == [] or np.allclose(sorted(figs[0].data[0].y), sorted(groups.iloc[:, 2].to_numpy(float)))
