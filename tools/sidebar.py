#!/usr/bin/env python3
"""Write nbs/sidebar.yml: the docs sidebar, one section per pipeline stage (00 data ... 05 command line, 06 testing).

    python tools/sidebar.py          # write
    python tools/sidebar.py --check  # exit 1 if a notebook is missing from the sidebar (or listed but gone)
"""
import sys
from pathlib import Path

NBS = Path(__file__).resolve().parent.parent/'nbs'
SECTIONS = (('00', 'Data'), ('01', 'Transforms'), ('02', 'Models'), ('03', 'Training & evaluation'), ('04', 'Visualisation'),
            ('05', 'Command line & inference'), ('06', 'Testing helpers'))

def render() -> str:
    nbs = sorted(p.name for p in NBS.glob('[0-9]*.ipynb'))
    lines = ['website:', '  sidebar:', '    contents:', '      - index.ipynb']
    tut = sorted(p.name for p in (NBS/'tutorials').glob('*.ipynb'))
    if tut: lines += ['      - section: "Tutorials"', '        contents:'] + [f'          - tutorials/{n}' for n in tut]
    for prefix, title in SECTIONS:
        items = [n for n in nbs if n.startswith(prefix)]
        if not items: continue
        lines += [f'      - section: "{title}"', '        contents:'] + [f'          - {n}' for n in items]
    return '\n'.join(lines) + '\n'

if __name__ == '__main__':
    text, path = render(), NBS/'sidebar.yml'
    if '--check' in sys.argv:
        if not path.exists() or path.read_text() != text: sys.exit('nbs/sidebar.yml is out of date: run `python tools/sidebar.py`')
    else: path.write_text(text)
