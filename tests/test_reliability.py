"""Fault injection across real processes: run-folder locks, concurrent `prepare`, a full disk (tmpfs), Ctrl-C.

The tmpfs tests mount a small tmpfs and so need root; they skip (saying so) where mounting is not allowed.
"""
import errno, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.files import file_lock

CLI = [str(Path(sys.executable).parent / 'hpe-pretrain')]
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
TINY = ['--quick', 'data.synthetic.frames_per_seq=40', 'data.clip_len=9', 'data.stride=9', 'pretrain.epochs=50',
        'finetune.epochs=1', 'train.tensorboard=false']


def _run(args, **kw):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=ENV, timeout=300, **kw)


def _one_line(stderr: str) -> str:
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    assert lines and 'Traceback' not in stderr, stderr
    return lines[-1]


@pytest.fixture
def tmpfs(tmp_path):
    "A mount point factory for small tmpfs file systems (unmounted at the end)."
    mounts = []
    def make(size: str) -> Path:
        if os.geteuid() != 0: pytest.skip('mounting a tmpfs needs root')
        d = tmp_path / f'tmpfs{len(mounts)}'; d.mkdir()
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(d)], capture_output=True, text=True)
        if r.returncode: pytest.skip(f'cannot mount a tmpfs here: {r.stderr.strip()}')
        mounts.append(d); return d
    yield make
    for d in mounts: subprocess.run(['umount', '-l', str(d)], capture_output=True)


def test_second_fit_in_the_same_run_folder_is_refused(tmp_path):
    "Two `fit` runs in one run folder: the second fails at once naming the first's PID; a SIGKILL frees the lock."
    args = TINY + [f'run.out_dir={tmp_path}', 'run.name=busy']
    first = subprocess.Popen(CLI + ['fit'] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    lock = tmp_path / 'busy' / '.lock'
    try:
        t0 = time.time()
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.time() - t0 < 120, first.stderr.read() if first.poll() is not None else 'no lock'
            time.sleep(0.1)
        t1 = time.time()
        r = _run(['fit'] + args)
        assert r.returncode == 2 and time.time() - t1 < 60
        assert _one_line(r.stderr) == f"hpe-pretrain fit: error: {tmp_path / 'busy'} is in use by process {first.pid}"
    finally:
        first.kill(); first.wait()
    with file_lock(lock, 'after the kill'): pass          # the kernel dropped the dead process's lock


def test_concurrent_prepare_of_one_synthetic_tree(tmp_path):
    "Two `prepare` of the same synthetic raw folder at once: both succeed, one waits for the other, nothing is left over."
    args = ['prepare', '--dataset', 'synthetic', '--src', str(tmp_path / 'raw'), '--out', str(tmp_path / 'syn.h5'), '--frames', '30']
    ps = [subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in ps]
    assert [p.returncode for p in ps] == [0, 0], outs
    with PoseCache(tmp_path / 'syn.h5') as c: assert len(c) == 7 * 30 * 4 - 4
    assert not [p for p in tmp_path.iterdir() if '.tmp' in p.name]
    assert (tmp_path / 'raw' / 'synthetic.json').is_file()


def test_full_disk_while_writing_a_cache(tmp_path, tmpfs):
    "A cache that does not fit: one line naming the cache, no temporary file, no segfault (exit 2, not 139)."
    small = tmpfs('8m')
    r = _run(['prepare', '--dataset', 'synthetic', '--src', str(tmp_path / 'raw'), '--out', str(small / 'syn.h5'), '--frames', '60'])
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr)
    assert line.startswith(f"hpe-pretrain prepare: error: no space left on device while writing {small / 'syn.h5'} ("), line
    assert sorted(p.name for p in small.iterdir() if not p.name.startswith('.')) == []
    assert not [p for p in small.iterdir() if 'tmp' in p.name]


def test_ctrl_c_prints_one_line(tmp_path):
    "Ctrl-C (SIGINT) during training: one line that says how far it got and how to continue; no traceback."
    args = TINY + [f'run.out_dir={tmp_path}', 'run.name=int']
    p = subprocess.Popen(CLI + ['fit'] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    last = tmp_path / 'int' / 'models' / 'pretrain_last.pth'
    t0 = time.time()
    while not last.exists():
        assert p.poll() is None and time.time() - t0 < 180, p.communicate()
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    line = _one_line(err)
    assert line.startswith('hpe-pretrain fit: interrupted (pretrain: ') and 'epoch(s) saved); continue with `hpe-pretrain fit --resume ' in line, line
    assert line.endswith(f" --resume {tmp_path / 'int'}`"), line


def test_full_disk_while_writing_the_report(tmp_path, tmpfs):
    "The run report on a full disk: one line naming report.html, no `.tmp` left behind, earlier results intact."
    from hpe_pretrain.data.files import DiskFullError
    from hpe_pretrain.data.paths import RunDir
    from hpe_pretrain.data.prepare import error_line
    from hpe_pretrain.viz.report import write_report
    disk = tmpfs('1m'); run = RunDir(disk / 'run')
    run.results.mkdir(parents=True)
    run.summary.write_text('{"results": {}}')
    with open(disk / 'filler', 'wb', buffering=0) as f:                 # fill the disk
        try:
            while True: f.write(b'\0' * 4096)
        except OSError as err: assert err.errno == errno.ENOSPC
    with pytest.raises(DiskFullError) as e: write_report(run.path)
    assert error_line(e.value).startswith(f'no space left on device while writing {run.report} ('), error_line(e.value)
    assert sorted(p.name for p in run.results.iterdir()) == ['summary.json']
    assert run.summary.read_text() == '{"results": {}}'
