"Watching a run: step records, the losses read only at log points, the kNN monitor, plain progress lines in log files, rank 0's output."
import json, os, subprocess, sys
from pathlib import Path
import pytest
import torch
from bioss_nb.train import get_config, train, Trainer, read_metrics, NonFiniteLossError

ROOT = Path(__file__).resolve().parents[1]

def cfg_for(out, **kw):
    return get_config('tiny', **{**dict(n_train=400, batch_size=50, epochs=2, progress=False, device='cpu'), **kw}, out=str(out))

def same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.encoder.state_dict().values(), b.encoder.state_dict().values()))

def test_step_records_every_log_every_steps(tmp_path):
    tr = train(cfg_for(tmp_path, log_every=3, monitor_every=0))
    steps = read_metrics(tmp_path, kind='step')
    assert [r['step'] for r in steps] == list(range(3, 17, 3))           # 8 steps an epoch, 2 epochs
    assert all(r['lr'] == 1e-3 and r['step_time_s'] > 0 and r['layer'] == 1 for r in steps)
    assert [r['epoch'] for r in read_metrics(tmp_path)] == [0, 1]         # epoch records by default
    assert len(read_metrics(tmp_path, kind=None)) == len(steps) + 2

class Reads:
    "Count the host reads of tensor values (`item`, `tolist`) during `fit`, by who asked."
    def __init__(self): self.n = {'item': 0, 'tolist': 0}
    def __enter__(self):
        self.orig = {m: getattr(torch.Tensor, m) for m in self.n}
        def wrap(m):
            def f(t, *a, **k):
                import traceback
                if any('bioss_nb' in fr.filename for fr in traceback.extract_stack(limit=4)[:-1]): self.n[m] += 1
                return self.orig[m](t, *a, **k)
            return f
        for m in self.n: setattr(torch.Tensor, m, wrap(m))
        return self
    def __exit__(self, *exc):
        for m, f in self.orig.items(): setattr(torch.Tensor, m, f)

@pytest.mark.parametrize('log_every,reads', [(4, 4), (0, 2), (1, 16)])
def test_the_loss_is_read_only_at_log_points(tmp_path, log_every, reads):
    "16 steps in 2 epochs: the engine reads the losses once per log point and once per epoch end, never the loss alone per step."
    tr = Trainer(cfg_for(tmp_path, log_every=log_every, monitor_every=0))
    with Reads() as r: tr.fit()
    assert r.n == {'item': 0, 'tolist': reads}, r.n

def test_deferred_reads_train_the_same_weights_and_losses(tmp_path):
    a = train(cfg_for(tmp_path / 'a', log_every=1, schedule='rll'))
    b = train(cfg_for(tmp_path / 'b', log_every=0, schedule='rll'))
    assert same_weights(a, b) and a.layer_seq == b.layer_seq
    assert [r['loss'] for r in read_metrics(tmp_path / 'a')] == [r['loss'] for r in read_metrics(tmp_path / 'b')]

def test_nan_between_log_points_names_its_step(tmp_path):
    "A NaN at step 6 is found at the read at step 8 and named as step 6; the trainer goes back to the last good checkpoint."
    tr = train(cfg_for(tmp_path, log_every=4, monitor_every=0), stop_after=2)
    good = (tmp_path / 'checkpoint.pt').read_bytes()
    calls, loss_fn = [0], tr.loss_fn
    def nan_from_step_6(z1, z2):
        calls[0] += 1
        return loss_fn(z1, z2) * (float('nan') if calls[0] >= 5 else 1.)   # the 5th step of this call is step 6
    tr.loss_fn = nan_from_step_6
    with pytest.raises(NonFiniteLossError, match=r'loss is nan at stage 0, epoch 0, batch 6 \(step 6\)'): tr.fit()
    assert (tmp_path / 'checkpoint.pt').read_bytes() == good
    assert tr.pos['step'] == 2 and all(torch.isfinite(p).all() for p in tr.encoder.parameters())

@pytest.mark.parametrize('schedule', ['e2e', 'rll'])
def test_monitor_changes_no_weight(tmp_path, schedule):
    on = train(cfg_for(tmp_path / 'on', schedule=schedule, monitor_every=1, monitor_n=100))
    off = train(cfg_for(tmp_path / 'off', schedule=schedule, monitor_every=0))
    assert same_weights(on, off) and on.layer_seq == off.layer_seq
    recs = read_metrics(tmp_path / 'on')
    blocks = ['1'] if schedule == 'e2e' else ['0', '1']
    assert all(sorted(r['knn']) == blocks and r['knn_clean'] == r['knn']['1']['clean'] for r in recs)
    assert not any('knn' in r for r in read_metrics(tmp_path / 'off'))

def test_monitor_survives_resume(tmp_path):
    "A run stopped and resumed logs the same kNN accuracies as one that ran through."
    ref = train(cfg_for(tmp_path / 'ref', monitor_every=1, monitor_n=100))
    train(cfg_for(tmp_path / 'run', monitor_every=1, monitor_n=100), stop_after=5)
    res = train(cfg_for(tmp_path / 'run', monitor_every=1, monitor_n=100))
    assert same_weights(ref, res)
    assert [r['knn'] for r in read_metrics(tmp_path / 'run')] == [r['knn'] for r in read_metrics(tmp_path / 'ref')]

def cli(args, env=None, stderr_file=None):
    e = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT), **(env or {})}
    with open(stderr_file, 'w') as err:
        p = subprocess.run([sys.executable, '-m', 'bioss_nb', *map(str, args)], env=e, stdout=subprocess.PIPE, stderr=err, text=True)
    return p.returncode, p.stdout, Path(stderr_file).read_text()

def test_log_file_gets_plain_lines(tmp_path):
    "stderr to a file, progress on: no bar redraws (carriage returns, cursor moves), one plain line per epoch; a sentence at the end."
    rc, out, err = cli(['train', '--preset', 'tiny', '--n-train', '400', '--batch-size', '100', '--epochs', '2', '--schedule', 'gll',
                        '--device', 'cpu', '--out', tmp_path / 'run', '--eval', '--probe-epochs', '2', '--n-probe', '300'],
                       stderr_file=tmp_path / 'err.log')
    assert rc == 0, err
    assert '\r' not in err and '\x1b[' not in err, repr(err[:300])
    lines = err.splitlines()
    assert len(lines) == 4 and lines[0].startswith('gll/bp: epoch 1/2 of block 0, step 4/16: loss') and 'kNN accuracy' in lines[0], err
    first = out.splitlines()[0]
    assert first.startswith('Trained GLL bp with the hinge loss on mnist5k for 16 steps in ') and first.endswith(f"The run is in {tmp_path / 'run'}.")
    assert '{' not in first

def test_only_rank_0_prints(tmp_path):
    "Under torchrun a process of rank 1 prints nothing (rank 0 reports): here RANK=1 without a process group."
    rc, out, err = cli(['train', '--preset', 'tiny', '--n-train', '200', '--batch-size', '100', '--epochs', '1', '--device', 'cpu',
                        '--out', tmp_path / 'run', '--n-negs', '5', '--loss', 'simclr'], env={'RANK': '1'}, stderr_file=tmp_path / 'err.log')
    assert rc == 0 and out == '' and err == '', (out, err)
    rc, out, err = cli(['train', '--preset', 'tiny', '--n-train', '200', '--batch-size', '100', '--epochs', '1', '--device', 'cpu',
                        '--out', tmp_path / 'run0', '--n-negs', '5', '--loss', 'simclr'], stderr_file=tmp_path / 'err0.log')
    assert rc == 0 and out.startswith('Trained E2E bp') and 'does nothing with --loss=simclr' in err

def test_csv_of_an_older_run_is_rewritten_then_appended(tmp_path):
    "A metrics.csv with other columns (an older version's) is rebuilt from metrics.jsonl, then rows are appended to it."
    import csv
    from bioss_nb.runs import MetricsLog
    (tmp_path / 'metrics.jsonl').write_text(json.dumps(dict(stage=0, epoch=0, step=4, loss=3.0)) + '\n')   # no 'kind': an epoch
    (tmp_path / 'metrics.csv').write_text('stage,epoch,step,layer,loss,time_s,event\n0,0,4,,3.0,,\n')
    m = MetricsLog(tmp_path, 'jsonl,csv')
    m.write(dict(kind='step', stage=0, epoch=1, step=6, layer=1, loss=2.5, lr=1e-3, step_time_s=0.01))
    m.write(dict(kind='epoch', stage=0, epoch=1, step=8, loss=2.0, time_s=1.5))
    rows = list(csv.DictReader((tmp_path / 'metrics.csv').open()))
    assert [(r['kind'], r['step'], r['loss'], r['lr']) for r in rows] == [('', '4', '3.0', ''), ('step', '6', '2.5', '0.001'),
                                                                         ('epoch', '8', '2.0', '')]
    assert [r['step'] for r in read_metrics(tmp_path)] == [4, 8] and [r['step'] for r in read_metrics(tmp_path, kind='step')] == [6]

def test_bar_shows_loss_and_knn(tmp_path, monkeypatch, capsys):
    "On a terminal the bar's postfix carries the block, the last loss read and the monitor's kNN accuracy (per block for RLL)."
    import bioss_nb.train as T
    monkeypatch.setattr(T, 'live_bars', lambda: True)
    train(cfg_for(tmp_path, schedule='rll', progress=True, monitor_every=1, monitor_n=100))
    err = capsys.readouterr().err
    last = err.replace('\r', '\n').strip().splitlines()[-1]
    assert 'rll/bp' in last and 'loss=' in last and 'knn0=' in last and 'knn1=' in last, last

def test_grid_in_a_log_file_draws_no_bar(tmp_path, monkeypatch, capsys):
    "A grid whose stderr is not a terminal draws no bar (no carriage returns): each row's result is its plain line; on a terminal the bar shows."
    import bioss_nb.train as T
    from bioss_nb.experiments import run_grid
    kw = dict(rows=['random'], seeds=[0], n_train=400, batch_size=100, probe_epochs=2, n_probe=500, device='cpu', progress=True)
    run_grid('tiny', out=tmp_path / 'file', **kw)
    out, err = capsys.readouterr()
    assert '\r' not in err and 'grid:' not in err, repr(err[:300])
    assert any(l.strip().startswith('random') and 'seed 0: clean' in l for l in out.splitlines()), out
    monkeypatch.setattr(T, 'live_bars', lambda: True)
    run_grid('tiny', out=tmp_path / 'terminal', **kw)
    assert 'grid:' in capsys.readouterr().err


def test_tensorboard_holds_step_loss_lr_hparams_knn_and_probe(tmp_path):
    "One run's TensorBoard: the step loss, lr and step time, the epoch loss, the kNN monitor, the final probe, and the HPARAMS tab."
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from bioss_nb.evaluate import evaluate_run
    cfg = cfg_for(tmp_path / 'r', loggers='jsonl,csv,tensorboard', log_every=2, monitor_every=1)
    train(cfg)
    evaluate_run(tmp_path / 'r', probe_epochs=1, n_probe=300)
    tags, plugins = set(), set()
    for f in (tmp_path / 'r' / 'tb').rglob('events*'):
        ea = EventAccumulator(str(f.parent)); ea.Reload()
        tags |= set(ea.Tags()['scalars'])
        from tensorboard.backend.event_processing import event_file_loader
        for ev in event_file_loader.EventFileLoader(str(f)).Load():
            for v in ev.summary.value: plugins.add(v.metadata.plugin_data.plugin_name)
    assert {'loss/step', 'lr', 'time/step_s', 'loss/epoch', 'knn/clean', 'knn/perturbed', 'probe/clean', 'probe/perturbed'} <= tags, tags
    assert 'hparams' in plugins, plugins
    steps = [r for r in read_metrics(tmp_path / 'r', kind='step')]
    assert [r['step'] for r in steps] == list(range(2, 17, 2)) and all(r['lr'] == cfg.lr for r in steps)


def test_value_checks_move_to_where_the_data_enters(tmp_path):
    "A step reads no image values (`two_views` under `deferred_checks` lets out-of-range floats through); the Trainer checks float data once, at the start."
    from bioss_nb.core import deferred_checks
    from bioss_nb.deform import two_views
    x = torch.rand(4, 1, 28, 28)
    with pytest.raises(ValueError, match=r'images must be floats in \[0, 1\]'): two_views(255 * x)
    with deferred_checks(): two_views(255 * x)                       # no read of the values, so no error here
    with pytest.raises(ValueError, match=r'data has values in \[.*\]; training images must be uint8 or floats in \[0, 1\]'):
        Trainer(cfg_for(tmp_path / 'r'), data=255 * torch.rand(400, 1, 28, 28))
    with pytest.raises(ValueError, match='data contains NaN'):
        Trainer(cfg_for(tmp_path / 'r'), data=torch.full((400, 1, 28, 28), float('nan')))
