"The `bioss-nb` command line, end to end in temporary folders (a few batches each)."
import json, os, subprocess, sys
from pathlib import Path
import pytest
from bioss_nb.cli import main, GRID, GRIDS, ROWS, demo_verdict, grid_rows
import torch
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
    from bioss_nb.runs import read_metrics
    assert [r['epoch'] for r in read_metrics(out)] == [0, 1]

@pytest.mark.parametrize('args,msg', [
    (['--schedule', 'rll', '--rule', 'dtp'], "rule='dtp' needs schedule='e2e'"),
    (['--rule', 'fa'], "--rule=fa: not allowed; choose from bp, rf"),
    (['--epochs', '0'], 'epochs=0 must be a positive integer'),
    (['--encoder', 'conv6'], "encoder='conv6' does not fit data='mnist5k'"),
    (['--s', '-1'], 's=-1.0 must be >= 0'),
])
def test_bad_config_is_a_clear_error(tmp_path, capsys, args, msg):
    assert main(['train', '--preset', 'tiny', '--out', str(tmp_path), *args]) == 2
    assert msg in capsys.readouterr().err

def test_unknown_option_is_one_line(capsys):
    assert main(['train', '--no-such-option', '1']) == 2
    assert capsys.readouterr().err.strip().splitlines() == ['bioss-nb train: error: unrecognized arguments: --no-such-option 1']

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
    assert (d.data, d.encoder, d.to_rgb32, d.batch_size, d.lr, d.epochs, d.ll_epochs) == ('mnist5k', 'conv6', True, 500, 1e-4, 20, None)
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
    assert main(['table', '--grid', 'table9', '--out', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "table9" in err and len(err.strip().splitlines()) == 1

def test_run_repeated_from_its_own_config(tmp_path, capsys):
    "A run's config.json is a config file: `--config` repeats the run (here into another folder), bit for bit."
    a, b = tmp_path / 'a', tmp_path / 'b'
    assert main(['train', '--preset', 'tiny', '--epochs', '1', '--rule', 'urf', '--seed', '3', '--out', str(a), *SMALL]) == 0
    assert main(['train', '--config', str(a / 'config.json'), '--out', str(b)]) == 0
    assert json.loads((a / 'config.json').read_text()) == {**json.loads((b / 'config.json').read_text()), 'out': str(a)}
    sa, sb = (torch.load(d / 'checkpoint.pt', weights_only=True)['encoder'] for d in (a, b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    y = tmp_path / 'c.yaml'; y.write_text('rule: rf\nepochs: 1\nn_train: 400\nbatch_size: 100\nprogress: false\n')
    assert main(['train', '--preset', 'tiny', '--config', str(y), '--out', str(tmp_path / 'c'), '--device', 'cpu']) == 0
    assert json.loads((tmp_path / 'c' / 'config.json').read_text())['rule'] == 'rf'

def test_print_config_help_and_version(capsys):
    assert main(['train', '--preset', 'digits', '--rule', 'rf', '--print_config']) == 0
    import yaml
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed['rule'] == 'rf' and printed['encoder'] == 'conv6' and printed['n_negs'] == 5   # the preset's values
    assert main(['train', '--preset', 'digits', '--help']) == 0
    h = ' '.join(capsys.readouterr().out.split())
    from bioss_nb.feedback import RULES
    from bioss_nb.losses import LOSSES
    assert 'default: conv6' in h and '{' + ','.join(RULES) + '}' in h and '{' + ','.join(LOSSES) + '}' in h   # the registered names
    assert main(['--help']) == 0 and 'BIOSS_DATA' in capsys.readouterr().out
    assert main(['--version']) == 0
    from bioss_nb import __version__
    assert capsys.readouterr().out.strip() == f'bioss-nb {__version__}'

def test_csv_and_tensorboard_loggers(tmp_path):
    "Step and epoch records, the hyper-parameters and the probe reach metrics.csv (a plain CSV), hparams.yaml and TensorBoard."
    import csv, yaml
    out = tmp_path / 'r'
    assert main(['train', '--preset', 'tiny', '--epochs', '2', '--log-every', '3', '--loggers', 'jsonl,csv,tensorboard',
                 '--out', str(out), *SMALL]) == 0
    assert main(['eval', str(out), '--probe-epochs', '2', '--n-probe', '300', '--device', 'cpu']) == 0
    rows = list(csv.DictReader((out / 'metrics.csv').open()))
    jl = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines()]
    assert [(r['kind'], int(r['step'])) for r in rows] == [(r['kind'], r['step']) for r in jl]
    assert [r['kind'] for r in jl] == ['step', 'epoch', 'step', 'epoch', 'probe']     # 4 steps an epoch: step records at 3 and 6
    assert [float(r['loss']) for r in rows if r['loss']] == pytest.approx([r['loss'] for r in jl if 'loss' in r])
    steps = [r for r in jl if r['kind'] == 'step']
    assert all(r['lr'] == 1e-3 and r['step_time_s'] > 0 for r in steps)
    epochs = [r for r in jl if r['kind'] == 'epoch']
    assert all(0 <= r['knn_clean'] <= 1 and 0 <= r['knn_perturbed'] <= 1 for r in epochs)       # the tiny preset's monitor
    probe = jl[-1]
    assert probe['step'] == 8 and probe['clean'] == json.loads((out / 'eval.json').read_text())['clean']
    hp = yaml.safe_load((out / 'hparams.yaml').read_text())
    assert hp == json.loads((out / 'config.json').read_text())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(str(out / 'tb')); ea.Reload()
    assert [e.value for e in ea.Scalars('loss/epoch')] == pytest.approx([r['loss'] for r in epochs], rel=1e-6)
    assert [e.step for e in ea.Scalars('loss/step')] == [3, 6] and [e.value for e in ea.Scalars('lr')] == pytest.approx([1e-3] * 2)
    assert [e.value for e in ea.Scalars('knn/clean')] == pytest.approx([r['knn_clean'] for r in epochs], rel=1e-6)
    assert [e.value for e in ea.Scalars('probe/clean')] == pytest.approx([probe['clean']], rel=1e-6)
    from tensorboard.plugins.hparams import plugin_data_pb2
    hp_tags = ea.PluginTagToContent('hparams')
    start = plugin_data_pb2.HParamsPluginData.FromString(hp_tags['_hparams_/session_start_info']).session_start_info
    assert start.hparams['lr'].number_value == 1e-3 and start.hparams['schedule'].string_value == 'e2e'

def test_grid_all_on_tiny(tmp_path, capsys):
    "Every row of every grid trains and is probed (a few batches each); the table, plot and per-row times come out."
    out = tmp_path / 'all'
    assert main(['table', '--preset', 'tiny', '--grid', 'all', '--seeds', '0', '--out', str(out), '--n-train', '200',
                 '--batch-size', '100', '--epochs', '1', '--probe-epochs', '1', '--n-probe', '300', '--sup-epochs', '1',
                 '--progress', 'false', '--device', 'cpu']) == 0
    res = json.loads((out / 'results.json').read_text())
    ran = len(ROWS) - len(res['left_out'])                  # CLAPP needs CONV6 or VGG6: not the digits' mnist_net
    assert set(res['left_out']) == {k for k in ROWS if 'clapp' in k}, res['left_out']
    assert len(res['rows']) == ran and all(len(r['seconds']) == 1 and not r['errors'] for r in res['rows'])
    md = (out / 'table.md').read_text()
    assert md.count('\n| ') >= ran and (out / 'table.png').stat().st_size > 1000 and 'Left out, since they do not fit' in md
    assert md.count('not in the paper') >= len(GRIDS['beyond'])

def test_table_jobs_runs_rows_in_worker_processes(tmp_path, capsys):
    "--jobs 2: rows run in two spawned workers; the table is assembled in grid order; a finished grid is read back."
    out = tmp_path / 'grid'
    args = ['table', '--preset', 'tiny', '--rows', 'hinge-e2e-bp', 'random', '--seeds', '0', '--out', str(out), '--epochs', '1',
            '--probe-epochs', '2', '--n-probe', '500', *SMALL]
    assert main([*args, '--jobs', '2']) == 0
    res = [json.loads(l) for l in (out / 'results.jsonl').read_text().splitlines()]
    assert [r['key'] for r in res] == ['hinge-e2e-bp', 'random'] and not any('error' in r for r in res)
    assert 'One seed: no spread shown.' in (out / 'table.md').read_text()
    assert main([*args, '--jobs', '0']) == 2 and '--jobs=0' in capsys.readouterr().err
