#!/usr/bin/env python3
"""Render nbs/index.ipynb to README.md without Quarto (which `nbdev-readme` needs).

    python tools/readme.py          # write README.md
    python tools/readme.py --check  # exit 1 if README.md is out of date

Markdown cells are copied, code cells not marked `#| hide` are shown with their (re-computed) text output.
"""
import sys
from pathlib import Path
from fastcore.nbio import read_nb
from execnb.shell import CaptureShell

ROOT = Path(__file__).resolve().parent.parent

def _text(outputs) -> str:
    parts = []
    for o in outputs:
        if o.get('output_type') == 'stream': parts.append(''.join(o.get('text', '')))
        elif 'data' in o and 'text/plain' in o['data']: parts.append(''.join(o['data']['text/plain']) + '\n')
    return ''.join(parts).rstrip('\n')

def render(nb_path: Path = ROOT/'nbs'/'index.ipynb') -> str:
    nb = read_nb(nb_path)
    CaptureShell().run_all(nb, exc_stop=True)
    out = ['<!-- WARNING: generated from nbs/index.ipynb by tools/readme.py; edit the notebook instead. -->\n']
    for c in nb.cells:
        src = ''.join(c.source)
        if c.cell_type == 'markdown': out.append(src.strip() + '\n')
        elif c.cell_type == 'code':
            if src.lstrip().startswith('#| hide'): continue
            code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
            out.append(f'```python\n{code}\n```\n')
            txt = _text(c.get('outputs', []))
            if txt: out.append(f'```\n{txt}\n```\n')
    return '\n'.join(out)

if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit('README.md is out of date with nbs/index.ipynb: run `python tools/readme.py`')
    else: readme.write_text(text)
