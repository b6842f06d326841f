"""Data-parallel training with torchrun on the CPU (gloo, 2 processes): the same run as one process with the same global
batch, step for step; and a 2-process run killed and resumed ends where an uninterrupted one does."""
import json, os, shutil, socket, subprocess, sys
from pathlib import Path
import pytest
import torch

WORKER = Path(__file__).with_name('ddp_worker.py')
TORCHRUN = Path(sys.executable).parent / 'torchrun'
BASE = dict(n_train=400, batch_size=100, epochs=1, progress=False, device='cpu')


def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def run(tmp, name, procs, cfg, **extra):
    "Train `cfg` in `procs` processes (torchrun for 2); return (report, checkpoint) or the exit status if it failed."
    out, rep = tmp / name, tmp / f'{name}.json'
    arg = json.dumps(dict(cfg={**BASE, **cfg, 'out': str(out)}, report=str(rep), **extra))
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = ([str(TORCHRUN), '--nproc-per-node', str(procs), '--master-addr', '127.0.0.1', '--master-port', str(free_port())]
           if procs > 1 else [sys.executable]) + [str(WORKER), arg]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if r.returncode: return r.returncode, r.stderr[-3000:]
    return json.loads(rep.read_text()), torch.load(out / 'checkpoint.pt', weights_only=True)


def assert_same_run(a, b, rtol=1e-4, atol=1e-5):
    (ra, ca), (rb, cb) = a, b
    assert ra['pos'] == rb['pos'] and ra['layer_seq'] == rb['layer_seq']
    torch.testing.assert_close(torch.tensor(ra['losses']), torch.tensor(rb['losses']), rtol=rtol, atol=atol)
    for part in ('encoder', 'heads'):
        for k in ca[part]: torch.testing.assert_close(ca[part][k], cb[part][k], rtol=rtol, atol=atol, msg=f'{part}.{k}')


@pytest.mark.parametrize('cfg', [dict(loss='hinge'), dict(loss='simclr'), dict(loss='hinge', schedule='gll', rule='urf'),
                                 dict(loss='simclr', schedule='rll', rule='rf')],
                         ids=['e2e-hinge-all', 'e2e-simclr', 'gll-hinge-urf', 'rll-simclr-rf'])
def test_two_processes_equal_one(tmp_path, cfg):
    one, two = run(tmp_path, 'one', 1, cfg), run(tmp_path, 'two', 2, cfg)
    assert isinstance(two[0], dict), two
    assert two[0]['world'] == 2 and one[0]['world'] == 1
    assert_same_run(one, two)


FEW = dict(loss='hinge', n_negs=5, grad_block=True)     # the `digits` and `paper-stl10` presets' loss
CLAPP = dict(loss='clapp', encoder='conv6', to_rgb32=True, clapp_patch=8, batch_size=4, n_train=16)


@pytest.mark.parametrize('cfg, w_atol', [(FEW, 1e-5), (dict(FEW, n_negs=60), 1e-5), (dict(FEW, schedule='gll', rule='rf'), 1e-5),
                                         (dict(FEW, schedule='rll', rule='urf'), 1e-5), (CLAPP, 1e-5),
                                         (dict(CLAPP, schedule='gll', rule='rf'), 5e-3)],
                         ids=['e2e-hinge5gb', 'e2e-hinge60gb', 'gll-hinge5gb-rf', 'rll-hinge5gb-urf', 'e2e-clapp', 'gll-clapp-rf'])
def test_every_loss_sees_the_global_batch(tmp_path, cfg, w_atol):
    """The few-negatives hinge (its pairs cross the ranks' boundary: 50 rows each here) and CLAPP see the global batch under
    torchrun: the losses of every step and those logged are the single-process run's, and so are the weights reached.
    (CLAPP's deep blocks get gradients near 0 in places, where Adam turns float rounding into steps of lr = 1e-3: the
    weights of that run are compared to a few such steps; its 20 per-step losses, to 1e-4.)"""
    one, two = run(tmp_path, 'one', 1, cfg), run(tmp_path, 'two', 2, cfg)
    assert isinstance(two[0], dict), two
    assert two[0]['world'] == 2
    assert_same_run(one, two, atol=w_atol)
    logged = [json.loads(l)['loss'] for l in (tmp_path / 'two' / 'metrics.jsonl').read_text().splitlines()]
    assert logged == pytest.approx([json.loads(l)['loss'] for l in (tmp_path / 'one' / 'metrics.jsonl').read_text().splitlines()], rel=1e-4)


def test_killed_and_resumed_two_processes(tmp_path):
    "Both ranks die at step 6 (after the epoch-1 checkpoint at step 4); the same command resumes to the uninterrupted end."
    cfg = dict(epochs=2, loss='hinge', schedule='rll')
    whole = run(tmp_path, 'whole', 2, cfg)
    rc = run(tmp_path, 'cut', 2, cfg, crash_at=6)
    assert not isinstance(rc[0], dict)                       # torchrun reports the failure
    ck = torch.load(tmp_path / 'cut' / 'checkpoint.pt', weights_only=True)
    assert ck['pos']['step'] == 4
    resumed = run(tmp_path, 'cut', 2, cfg)
    assert isinstance(resumed[0], dict), resumed
    assert resumed[0]['losses'] == pytest.approx(whole[0]['losses'][4:], rel=1e-6)
    for k in whole[1]['encoder']: assert torch.equal(whole[1]['encoder'][k], resumed[1]['encoder'][k]), k
    from bioss_nb.runs import read_metrics
    assert [r['epoch'] for r in read_metrics(tmp_path / 'cut')] == list(range(4))       # the epoch records


def test_batch_must_split_evenly(tmp_path):
    r = run(tmp_path, 'odd', 2, dict(batch_size=101, n_train=404))
    assert r[0] != 0 and 'must be a multiple of the 2 processes' in r[1]
