"""Write README.md from nbs/index.ipynb, the single source of both (where Quarto exists, `nbdev-readme` does the same).

Usage: python tools/make_readme.py [--check]   (--check: exit 1 if README.md differs from what the index page gives)
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n"


def readme_text() -> str:
    nb = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown': parts.append(src)
        elif c['cell_type'] == 'code' and '#| hide' not in src:
            for o in c.get('outputs', []):  # displayed markdown (for example the results table) becomes README text
                md = o.get('data', {}).get('text/markdown')
                if md: parts.append(''.join(md))
    text = '\n\n'.join(p.strip('\n') for p in parts if p.strip()) + '\n'
    text = re.sub(r'\]\((\d\d\w*\.ipynb)\)', r'](nbs/\1)', text)  # chapter links point into nbs/ from the repo root
    return HEADER + text


if __name__ == '__main__':
    new, path = readme_text(), ROOT / 'README.md'
    if '--check' in sys.argv:
        if not path.exists() or path.read_text() != new:
            sys.exit('README.md differs from nbs/index.ipynb: run `python tools/make_readme.py` (or `make docs`)')
        print('README.md matches nbs/index.ipynb')
    else:
        path.write_text(new); print(f'wrote {path.relative_to(ROOT)}')
