"""Run chapters top to bottom and store their outputs, as a reader's run in JupyterLab would.

Cells flagged `#| slow` or `#| cuda` keep the outputs they have unless their flag is given with --flags; a cell that
raises stops the run with the chapter's traceback and writes nothing. Run `nbdev-clean` afterwards.

    python tools/run_nb.py nbs/03_losses.ipynb [nbs/04_feedback.ipynb ...] [--flags slow]
"""
import argparse, re, sys
from pathlib import Path
from fastcore.foundation import working_directory
from fastcore.nbio import read_nb, write_nb
from execnb.shell import CaptureShell


def flags_of(cell) -> set:
    "The `#| slow` / `#| cuda` flags at the top of a code cell."
    return {m.group(1) for m in re.finditer(r'^#\|\s*(slow|cuda)\b', cell.source, flags=re.M)}


def run(path:Path, flags:set) -> bool:
    nb = read_nb(path)
    sh = CaptureShell(mpl_format='png')
    sh.set_path(path.parent.resolve())
    skip = lambda c: c.cell_type != 'code' or bool(flags_of(c) - flags)
    with working_directory(path.parent.resolve()):      # as in JupyterLab and nbdev-test: paths like ../bench resolve
        for cell in nb.cells:
            if skip(cell): continue
            sh.cell(cell)
            if sh.exc:
                print(f"{path}: cell failed:\n{cell.source[:400]}\n{sh.prettytb(fname=path)}", file=sys.stderr)
                return False
    write_nb(nb, path)
    return True


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='+', type=Path)
    ap.add_argument('--flags', default='', help="space-separated flags whose cells run too: 'slow', 'cuda'")
    a = ap.parse_args()
    ok = all([run(p, set(a.flags.split())) for p in a.notebooks])
    sys.exit(0 if ok else 1)
