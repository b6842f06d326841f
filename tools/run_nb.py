"""Run chapters top to bottom and store their outputs, as a reader's run in JupyterLab would.

Cells flagged `#| slow` or `#| cuda` (and `#| eval: false` cells) keep the outputs they have unless their flag is given with --flags; a cell that
raises stops the run with the chapter's traceback and writes nothing. Run `nbdev-clean` afterwards.

    python tools/run_nb.py nbs/03_losses.ipynb [nbs/04_feedback.ipynb ...] [--flags slow]
"""
import argparse, os, re, sys
from pathlib import Path
from fastcore.nbio import read_nb, write_nb
from execnb.shell import CaptureShell


def flags_of(cell) -> set:
    "The `#| slow` / `#| cuda` flags at the top of a code cell."
    return {m.group(1) for m in re.finditer(r'^#\|\s*(slow|cuda)\b', cell.source, flags=re.M)}


def run(path:Path, flags:set) -> bool:
    nb, cwd = read_nb(path), os.getcwd()
    path = path.resolve(); os.chdir(path.parent)          # as in JupyterLab and nbdev-test: relative paths from nbs/
    sh = CaptureShell(mpl_format='png')
    sh.set_path(path.parent.resolve())
    skip = lambda c: c.cell_type != 'code' or bool(flags_of(c) - flags) or re.search(r'^#\|\s*eval:\s*false', c.source, flags=re.M)
    for cell in nb.cells:
        if skip(cell): continue
        sh.cell(cell)
        if sh.exc:
            print(f"{path}: cell failed:\n{cell.source[:400]}\n{sh.prettytb(fname=path)}", file=sys.stderr)
            os.chdir(cwd); return False
    os.chdir(cwd)
    write_nb(nb, path)
    return True


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='+', type=Path)
    ap.add_argument('--flags', default='', help="space-separated flags whose cells run too: 'slow', 'cuda'")
    a = ap.parse_args()
    ok = all([run(p, set(a.flags.split())) for p in a.notebooks])
    sys.exit(0 if ok else 1)
