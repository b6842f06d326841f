"""What users of `bioss-nb` notice first: every `eval` option explains itself, `download` names the folder it filled or
says in one line why it could not (no network needed: torchvision's downloads are made to fail here)."""
import urllib.error, urllib.request
import pytest
import torch
from bioss_nb.cli import build_parser, main


def _help(cmd):
    top = build_parser()
    sub = next(a for a in top._actions if a.dest == 'cmd')
    return sub.choices[cmd]


def test_every_eval_option_has_help():
    p = _help('eval')
    opts = [a for a in p._actions if a.option_strings and a.dest not in ('help',)]
    assert {a.dest for a in opts} >= {'layers', 'probe_epochs', 'probe_lr', 'perturb_rot', 'probe_data', 'device'}
    missing = [a.dest for a in opts if not (a.help and a.help.strip() and not a.help.startswith('('))]
    assert not missing, missing


def test_eval_help_text(capsys):
    assert main(['eval', '--help']) == 0
    out = capsys.readouterr().out
    assert 'epochs of the linear probe' in out and 'perturbed test set: rotation' in out


def _offline(monkeypatch):
    def refuse(*a, **k): raise urllib.error.URLError(ConnectionRefusedError(111, 'Connection refused'))
    monkeypatch.setattr(urllib.request, 'urlopen', refuse)


@pytest.mark.parametrize('name', ['mnist', 'cifar10', 'stl10'])
def test_download_failure_is_one_line(tmp_path, monkeypatch, capsys, name):
    _offline(monkeypatch)
    assert main(['download', name, '--root', str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith(f'bioss-nb download: error: could not download {name} into {tmp_path} (Connection refused)'), line
    assert '--root' in line and 'network' in line
    for api in ('load_dataset', 'RuntimeError', 'URLError', 'Traceback', 'download=True'): assert api not in line, (api, line)


def test_download_names_the_folder(tmp_path, monkeypatch, capsys):
    import bioss_nb.data
    sizes = dict(train=7, test=3)
    monkeypatch.setattr(bioss_nb.data, 'load_dataset',
                        lambda name, split, root=None, download=True: (torch.zeros(sizes[split], 3, 32, 32, dtype=torch.uint8),
                                                                       torch.zeros(sizes[split], dtype=torch.int64)))
    assert main(['download', 'cifar10', '--root', str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f'cifar10: 7 training and 3 test images in {tmp_path / "cifar-10-batches-py"}'


@pytest.mark.parametrize('name', ['mnist5k', 'shapes'])
def test_download_of_a_built_in_set_writes_nothing(tmp_path, capsys, name):
    root = tmp_path / 'data'
    assert main(['download', name, '--root', str(root)]) == 0
    assert 'nothing to download' in capsys.readouterr().out and not root.exists()


@pytest.mark.parametrize('n', [1, 2, 3])
def test_table_png_title_fits_with_few_rows(tmp_path, n):
    "The title `table` gives table.png lies inside the figure, however few rows there are."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from bioss_nb.experiments import plot_table
    keys = ['hinge-e2e-bp', 'hinge-e2e-rf', 'random'][:n]
    res = [dict(key=k, clean=0.9 - 0.05 * i, perturbed=0.6, seed=s) for i, k in enumerate(keys) for s in (0, 1)]
    fig = plot_table(res, title='cifar10-fast: linear probe, clean (solid) and perturbed (hatched)')
    fig.savefig(tmp_path / 'table.png')                       # lays the figure out as the file has it
    box, title = fig.bbox, fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
    plt.close(fig)
    assert box.x0 <= title.x0 and title.x1 <= box.x1 and title.y1 <= box.y1, (title, box)


def test_download_failure_with_debug_raises_with_its_cause(tmp_path, monkeypatch):
    from bioss_nb.cli import DownloadFailed
    _offline(monkeypatch)
    with pytest.raises(DownloadFailed, match='could not download mnist') as info:
        main(['download', 'mnist', '--root', str(tmp_path), '--debug'])
    assert isinstance(info.value.__cause__, RuntimeError)      # the loader's error, and below it the network's, stay attached
