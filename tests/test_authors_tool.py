"tools/authors_gll.py, which runs the authors' code on the digits protocol: its GLL loop and probe wiring (on a stand-in for their code) and its one-line errors."
import json, os, subprocess, sys, textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools' / 'authors_gll.py'

# A stand-in for their repository: the same file names, the lines the tool checks for, and the calls it makes.
FAKE = {
    'pars.py': '''
        class PARS:
            def __init__(self, device, datapath, savepath): self.device, self.datapath, self.savepath = device, datapath, savepath
        ''',
    'models.py': '''
        import torch
        from torch import nn
        def setup_net(pars):
            pars.NUM_LAYER = 2
            net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.Sequential(nn.Conv2d(4, 2, 3, stride=4), nn.Hardtanh()))
            head = nn.ModuleList([nn.Linear(4 * 8 * 8, 3), nn.Linear(2 * 2 * 2, 3)])
            return net, None, head
        ''',
    'utils.py': '''
        import json, os, torch
        CALLS = []
        def train_model(loader, test_loader, fix, model, pars, ep_loss, ep_acc, expdir, current_layer=None):
            x, _ = next(iter(loader))
            CALLS.append(dict(layer=current_layer, frozen=len(fix), n=len(x), lo=float(x.min()), hi=float(x.max()),
                              epochs=pars.epochs, lr=pars.LR, process=pars.process, loss=pars.loss, n_negs=pars.n_negs))
            with torch.no_grad():
                for p in model[0].parameters(): p.add_(1.)        # "training": only the block being trained moves
            ep_loss.append(float(current_layer))
            with open(os.environ['FAKE_CALLS'], 'w') as f: json.dump(CALLS, f)
        ''',
    'loss.py': 'class HingeNNFewerNegs: pass\n',
    'layers.py': 'class FAConv2d: pass\n',
}


def run_tool(*args, env_extra=None, cwd=ROOT):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', **(env_extra or {})}
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env)


def test_gll_loop_and_probe_on_a_stand_in(tmp_path):
    "Block i and its head train over the frozen blocks below it, with the preset's batch and lr, on digits in [0, 1]; both networks are probed."
    code = tmp_path / 'code'; code.mkdir()
    for f, s in FAKE.items(): (code / f).write_text(textwrap.dedent(s))
    calls, out = tmp_path / 'calls.json', tmp_path / 'res' / 'seed0.json'
    r = run_tool('--code', code, '--seed', 0, '--epochs', 2, '--threads', 1, '--out', out, env_extra=dict(FAKE_CALLS=str(calls)))
    assert r.returncode == 0, r.stderr
    seen = json.loads(calls.read_text())
    assert [(c['layer'], c['frozen']) for c in seen] == [(0, 0), (1, 1)]
    for c in seen:
        assert (c['n'], c['epochs'], c['lr'], c['process'], c['loss'], c['n_negs']) == (500, 2, 1e-4, 'GLL', 'HingeNNFewerNegs', 5)
        assert 0. <= c['lo'] < c['hi'] <= 1.
    res = json.loads(out.read_text())
    assert res['n_train'] == 4000 and res['batches_per_epoch'] == 8 and res['stage_losses'] == [[0.], [1.]]
    for k in ('trained', 'untrained'):
        assert res[k]['dim'] == 8 and 0. <= res[k]['perturbed'] <= 1. and 0. <= res[k]['clean'] <= 1.
    assert res['trained'] != res['untrained']         # the stand-in's "training" moved the weights the probe reads


def test_bad_input_one_line(tmp_path):
    "A missing folder, a folder that is not their code, and a bad number each get one line naming the argument, no traceback."
    wrong = tmp_path / 'wrong'; wrong.mkdir(); (wrong / 'pars.py').write_text('x = 1\n')
    for args, words in [(['--code', tmp_path / 'none'], ['--code', 'not a folder']),
                        (['--code', wrong], ['--code', 'not a clone']),
                        (['--code', wrong, '--epochs', 0], ['--epochs 0', '>= 1'])]:
        r = run_tool(*args, '--out', tmp_path / 'o.json')
        assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and all(w in r.stderr for w in words), r.stderr
