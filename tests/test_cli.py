"The `bioss-nb` command line, end to end in temporary folders (a few batches each)."
import json, os, subprocess, sys
from pathlib import Path
import pytest
from bioss_nb.cli import main, GRID, GRIDS, ROWS, demo_verdict, grid_rows
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
    (['--s', '-1'], 's=-1.0 must be >= 0'),
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
    assert '| Contr. Hinge | all | E2E | BP |' in md and '| Rnd. encoder |' in md and 'over 2 seeds' in md
    assert (out / 'table.png').stat().st_size > 1000
    assert len((out / 'results.jsonl').read_text().splitlines()) == 4
    assert '| Loss | Negatives / head | Learning | Update |' in capsys.readouterr().out

def test_demo_quick(tmp_path, capsys):
    out = tmp_path / 'demo'
    assert main(['demo', '--out', str(out), '--quick', '--device', 'cpu']) == 0
    for f in ('positive_pairs.png', 'table.png', 'table.md'): assert (out / f).exists(), f
    md = (out / 'table.md').read_text()
    for label in ('| Contr. Hinge | all | E2E | BP |', '| Contr. Hinge | all | E2E | RF |', '| Rnd. encoder |'):
        assert label in md, label
    v = json.loads((out / 'verdict.json').read_text())
    assert set(v) >= {'margin', 'over_rf', 'robust', 'bp_beats_rf', 'lines'}
    o = capsys.readouterr().out
    assert 'demo finished' in o and 'its numbers show nothing' in o

def test_demo_verdict_reads_the_rows():
    r = lambda k, s, p: dict(key=k, seed=s, perturbed=p, clean=.9)
    res = [r('hinge-e2e-bp', 0, .66), r('hinge-e2e-rf', 0, .60), r('random', 0, .58),
           r('hinge-e2e-bp', 1, .62), r('hinge-e2e-rf', 1, .63), r('random', 1, .58)]
    v = demo_verdict(res)
    assert v['margin'] == pytest.approx({0: 8., 1: 4.}) and not v['robust'] and not v['bp_beats_rf']
    res[3] = r('hinge-e2e-bp', 1, .64); res[4] = r('hinge-e2e-rf', 1, .60)
    v = demo_verdict(res)
    assert v['robust'] and v['bp_beats_rf'] and v['over_rf'] == pytest.approx({0: 6., 1: 4.})
    assert not demo_verdict([x for x in res if x['key'] != 'random'])['robust']

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
    d = get_config('digits')
    assert (d.data, d.encoder, d.to_rgb32, d.batch_size, d.lr, d.epochs, d.ll_epochs) == ('mnist5k', 'conv6', True, 500, 1e-4, 20, 4)
    assert (d.n_negs, d.grad_block, d.p, d.flip, d.affine_frac, d.s, d.h) == (5, True, .5, .5, .5, 0., 0.)
    assert (d.probe_lr, d.probe_epochs) == (1e-3, 100)
    assert get_config('tiny', s=0.).s == 0.                   # s = 0: no saturation jitter, as `deform` reads it
    assert {r.key for r in GRID} >= {'hinge-e2e-bp', 'hinge-e2e-rf', 'hinge-e2e-dtp', 'hinge-gll-urf', 'hinge-rll-rf',
                                    'simclr-e2e-bp', 'random', 'supervised'}

def test_grids_by_name():
    keys = lambda g: [r.key for r in GRIDS[g]]
    t1 = keys('table1')
    for sched_rule in ('e2e-bp', 'e2e-dtp', 'e2e-rf', 'gll-bp', 'gll-urf', 'gll-rf', 'rll-bp', 'rll-urf', 'rll-rf'):
        assert f'hinge-{sched_rule}' in t1 and f'hinge5gb-{sched_rule}' in t1, sched_rule
    assert 'simclr-e2e-bp' in t1 and 'random' in t1
    assert set(keys('simclr')) >= {'simclr-e2e-bp', 'simclr-e2e-rf', 'simclr-e2e-dtp', 'simclr-gll-bp', 'simclr-gll-urf',
                                   'simclr-gll-rf', 'simclr-rll-bp', 'simclr-rll-urf', 'simclr-rll-rf'}
    assert [ROWS[k].overrides.get('head_dim') for k in keys('heads')] == [64, 512, 1024, 2048]
    assert all(r.paper is None for r in GRIDS['beyond'])      # never run in the paper: no number beside it
    assert len(set(keys('all'))) == len(keys('all')) and set(keys('all')) == set(ROWS)   # every row once
    assert all(k.startswith('hinge5gb') for k in (r.key for r in grid_rows('default', 'digits')) if 'hinge' in k)

def test_unknown_grid_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit): main(['table', '--grid', 'table9', '--out', str(tmp_path)])
    assert "table9" in capsys.readouterr().err

def test_grid_all_on_tiny(tmp_path, capsys):
    "Every row of every grid trains and is probed (a few batches each); the table, plot and per-row times come out."
    out = tmp_path / 'all'
    assert main(['table', '--preset', 'tiny', '--grid', 'all', '--seeds', '0', '--out', str(out), '--n-train', '200',
                 '--batch-size', '100', '--epochs', '1', '--probe-epochs', '1', '--n-probe', '300', '--sup-epochs', '1',
                 '--progress', 'false', '--device', 'cpu']) == 0
    res = json.loads((out / 'results.json').read_text())
    assert len(res['rows']) == len(ROWS) and all(len(r['seconds']) == 1 and not r['errors'] for r in res['rows'])
    md = (out / 'table.md').read_text()
    assert md.count('\n| ') >= len(ROWS) and (out / 'table.png').stat().st_size > 1000
    assert md.count('not in the paper') >= len(GRIDS['beyond'])
