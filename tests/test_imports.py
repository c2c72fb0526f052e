"""Every module of the package imports on its own in a fresh interpreter (an exported cell that uses a name
imported only in a test cell fails here), and none prints anything or changes global state when imported."""
import subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1] / 'hpe_pretrain'
MODULES = sorted('hpe_pretrain.' + '.'.join(p.relative_to(PKG).with_suffix('').parts)
                 for p in PKG.rglob('*.py') if p.name not in ('__init__.py', '_modidx.py'))


def _import(mod: str) -> tuple[str, int, str]:
    r = subprocess.run([sys.executable, '-c', f'import {mod}'], capture_output=True, text=True, timeout=300)
    return mod, r.returncode, r.stdout + r.stderr


def test_every_module_imports_alone():
    assert len(MODULES) > 25, MODULES
    with ThreadPoolExecutor(4) as ex: results = list(ex.map(_import, MODULES))
    bad = [f"{m}: exit {rc}\n{out[-2000:]}" for m, rc, out in results if rc != 0]
    assert not bad, '\n\n'.join(bad)
    noisy = [f"{m}: {out.strip()[:300]}" for m, rc, out in results if out.strip()]
    assert not noisy, 'modules print on import:\n' + '\n'.join(noisy)


@pytest.mark.parametrize('mod', ['hpe_pretrain.cli', 'hpe_pretrain.train.config', 'hpe_pretrain.data.files'])
def test_light_modules_do_not_import_torch(mod):
    "The command line answers `--help` and `fit --list` without loading torch."
    r = subprocess.run([sys.executable, '-c', f'import sys, {mod}; print("torch" in sys.modules)'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == 'False', r.stdout + r.stderr
