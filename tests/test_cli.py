"The `bioss-nb` command line, end to end in temporary folders (a few batches each)."
import json, os, subprocess, sys
from pathlib import Path
import pytest
from bioss_nb.cli import main, GRID
from bioss_nb.train import get_config

SMALL = ['--n-train', '400', '--batch-size', '100', '--progress', 'false', '--device', 'cpu']

def test_train_then_eval(tmp_path, capsys):
    out = tmp_path / 'run'
    assert main(['train', '--preset', 'tiny', '--epochs', '1', '--loss', 'hinge', '--rule', 'urf', '--schedule', 'gll',
                 '--out', str(out), *SMALL]) == 0
    for f in ('config.json', 'metrics.jsonl', 'checkpoint.pt'): assert (out / f).exists(), f
    cfg = json.loads((out / 'config.json').read_text())
    assert (cfg['schedule'], cfg['rule'], cfg['epochs'], cfg['batch_size']) == ('gll', 'urf', 1, 100)
    assert main(['eval', str(out), '--probe-epochs', '3', '--n-probe', '500', '--device', 'cpu']) == 0
    ev = json.loads((out / 'eval.json').read_text())
    assert sorted(ev['layers']) == ['0', '1'] and 0.1 < ev['clean'] <= 1 and 0 < ev['perturbed'] <= 1
    assert '| block | dim | clean acc. (%) | perturbed acc. (%) |' in capsys.readouterr().out
    # a second call finds the finished run and does not train again
    mtime = (out / 'checkpoint.pt').stat().st_mtime_ns
    assert main(['train', '--preset', 'tiny', '--epochs', '1', '--rule', 'urf', '--schedule', 'gll', '--out', str(out), *SMALL]) == 0
    assert (out / 'checkpoint.pt').stat().st_mtime_ns == mtime

def test_train_stop_and_resume_flag(tmp_path):
    out = str(tmp_path / 'run')
    assert main(['train', '--preset', 'tiny', '--epochs', '2', '--stop-after', '3', '--out', out, *SMALL]) == 0
    assert main(['train', '--preset', 'tiny', '--epochs', '2', '--resume', '--out', out, *SMALL]) == 0
    lines = (Path(out) / 'metrics.jsonl').read_text().splitlines()
    assert [json.loads(l)['epoch'] for l in lines] == [0, 1]

@pytest.mark.parametrize('args,msg', [
    (['--schedule', 'rll', '--rule', 'dtp'], "rule='dtp' needs schedule='e2e'"),
    (['--rule', 'fa'], "rule='fa' is not one of"),
    (['--epochs', '0'], 'epochs=0 must be a positive integer'),
    (['--encoder', 'conv6'], "encoder='conv6' does not fit data='mnist5k'"),
])
def test_bad_config_is_a_clear_error(tmp_path, capsys, args, msg):
    assert main(['train', '--preset', 'tiny', '--out', str(tmp_path), *args]) == 2
    assert msg in capsys.readouterr().err

def test_unknown_option_exits():
    with pytest.raises(SystemExit): main(['train', '--no-such-option', '1'])

def test_table_small(tmp_path, capsys):
    out = tmp_path / 'grid'
    assert main(['table', '--preset', 'tiny', '--seeds', '0', '1', '--rows', 'hinge-e2e-bp', 'random', '--out', str(out),
                 '--epochs', '1', '--probe-epochs', '2', '--n-probe', '500', *SMALL]) == 0
    md = (out / 'table.md').read_text()
    assert md.startswith('Command: `bioss-nb table --preset tiny --seeds 0 1 --out')
    assert '| Contr. Hinge | E2E | BP |' in md and '| Rnd. encoder |' in md and 'over 2 seeds' in md
    assert (out / 'table.png').stat().st_size > 1000
    assert len((out / 'results.jsonl').read_text().splitlines()) == 4
    assert '| Loss | Learning | Update |' in capsys.readouterr().out

def test_demo_quick(tmp_path, capsys):
    out = tmp_path / 'demo'
    assert main(['demo', '--out', str(out), '--quick', '--device', 'cpu']) == 0
    for f in ('positive_pairs.png', 'table.png', 'table.md'): assert (out / f).exists(), f
    md = (out / 'table.md').read_text()
    for label in ('| Contr. Hinge | E2E | BP |', '| Contr. Hinge | E2E | RF |', '| Contr. Hinge | GLL | BP |',
                  '| Rnd. encoder |', '| Supervised (labels) |'): assert label in md, label
    assert 'demo finished' in capsys.readouterr().out

def test_console_script():
    exe = Path(sys.executable).parent / 'bioss-nb'
    if not exe.exists(): pytest.skip('bioss-nb console script not installed')
    r = subprocess.run([str(exe), 'train', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '--schedule' in r.stdout and '--preset' in r.stdout

def test_presets_are_valid():
    c = get_config('paper-cifar')
    assert (c.data, c.probe_data, c.encoder, c.batch_size, c.lr, c.epochs, c.tau, c.delta) == ('cifar100', 'cifar10', 'conv6', 500, 1e-4, 400, 2., 1.)
    assert (c.p, c.s, c.h, c.affine_frac, c.probe_lr, c.probe_epochs) == (0.5, 4., 0.2, 0.5, 1e-3, 200)
    assert get_config('paper-emnist').probe_data == 'mnist'
    assert {r[0] for r in GRID} >= {'hinge-e2e-bp', 'hinge-e2e-rf', 'hinge-e2e-dtp', 'hinge-gll-urf', 'hinge-rll-rf',
                                    'simclr-e2e-bp', 'random', 'supervised'}
