"""A user's own rule and loss, in a module the package has never seen, through the command line: `--import` it, train,
resume bit for bit, evaluate and name it in a grid's rows; a module that cannot be imported is one line."""
import json, sys
import torch
from bioss_nb.cli import main

SMALL = ['--n-train', '400', '--batch-size', '100', '--progress', 'false', '--device', 'cpu']

MY_MODULE = '''"A rule and a loss the package has never seen, registered through its public contract."
import torch
from torch import nn
from bioss_nb.feedback import FeedbackRule, register_rule
from bioss_nb.losses import SSLLoss, register_loss

class HalfRF(FeedbackRule):
    "Random feedback through half of RF's B."
    name, B = 'half_rf', 'fixed'
    def init_B(self, mod): return super().init_B(mod) / 2

class L2Pull(nn.Module):
    "Positives pulled together, the batch's other images pushed apart (up to a distance of 10)."
    def forward(self, z1, z2):
        d = torch.cdist(z1, z2)
        return d.diagonal().mean() - d.mean().clamp(max=10.)

class L2PullLoss(SSLLoss):
    name, module = 'l2pull', L2Pull

register_rule(HalfRF()); register_loss(L2PullLoss())
'''

def test_a_users_module_trains_resumes_evaluates_and_joins_a_grid(tmp_path, monkeypatch, capsys):
    "--import MODULE: its rule and loss train, resume bit for bit (config.json repeats the import), evaluate and name grid rows."
    (tmp_path / 'my_rules.py').write_text(MY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import bioss_nb.experiments as ex
    monkeypatch.setattr(ex, 'ROWS', dict(ex.ROWS))                  # the rows made for the user's names stay in this test
    try: _run(tmp_path, capsys)
    finally:                                                          # and so do the user's names
        from bioss_nb.feedback import RULES
        from bioss_nb.losses import LOSSES
        RULES.pop('half_rf', None); LOSSES.pop('l2pull', None); sys.modules.pop('my_rules', None)


def _run(tmp_path, capsys):
    base = ['train', '--preset', 'tiny', '--import', 'my_rules', '--rule', 'half_rf', '--loss', 'l2pull', '--epochs', '2', *SMALL]
    a, b = tmp_path / 'a', tmp_path / 'b'
    assert main([*base, '--out', str(a)]) == 0
    assert json.loads((a / 'config.json').read_text())['imports'] == 'my_rules'
    assert main([*base, '--out', str(b), '--stop-after', '3']) == 0
    assert main(['train', '--config', str(b / 'config.json')]) == 0        # the recorded import comes back with the config
    ca, cb = (torch.load(d / 'checkpoint.pt', weights_only=True) for d in (a, b))
    assert cb['done'] and cb['pos'] == ca['pos']
    for part in ('encoder', 'heads'):
        for k in ca[part]: assert torch.equal(ca[part][k], cb[part][k]), k
    assert any(k.endswith('.B') for k in ca['heads'])                          # the head follows the user's rule
    assert main(['eval', str(a), '--probe-epochs', '1', '--n-probe', '300', '--device', 'cpu']) == 0
    assert 'half_rf/l2pull' in capsys.readouterr().out
    out = tmp_path / 'grid'
    assert main(['table', '--preset', 'tiny', '--import', 'my_rules', '--rows', 'hinge-e2e-half_rf', 'l2pull-gll-half_rf',
                 '--seeds', '0', '--out', str(out), '--epochs', '1', '--probe-epochs', '1', '--n-probe', '300', '--sup-epochs', '1',
                 *SMALL]) == 0
    md = (out / 'table.md').read_text()
    assert 'half_rf' in md and 'l2pull' in md
    capsys.readouterr()
    assert main(['train', '--preset', 'tiny', '--import', 'no_such_module_xyz', '--out', str(tmp_path / 'c')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'no_such_module_xyz' in err[0], err
    assert main(['train', '--preset', 'tiny', '--rule', 'half_rf_typo', '--import', 'my_rules', '--out', str(tmp_path / 'd')]) == 2
    assert 'half_rf' in capsys.readouterr().err                                 # the registered names, the user's included


MY_ENCODER = '''"An encoder the package has never seen: three blocks on the digits, registered through its public contract."
from bioss_nb.models import Block, Encoder, register_encoder, _apply_rule

def three_blocks(rule='bp', in_shape=(1, 28, 28)):
    blocks = [Block(in_shape[0], 4, k=3, act='hardtanh', pool=True),   # 4x14x14
              Block(4, 8, k=3, act='relu', pool=True),                 # 8x7x7
              Block(8, 16, k=3, act='hardtanh')]                       # 16x7x7
    return _apply_rule(Encoder(blocks, in_shape, 'three_blocks'), rule)

register_encoder('three_blocks', three_blocks)
'''

def test_a_users_encoder_trains_layer_wise_resumes_and_evaluates(tmp_path, monkeypatch, capsys):
    "--import MODULE --encoder NAME: a user's three-block encoder trains under GLL with RF, resumes bit for bit, and every block is probed."
    (tmp_path / 'my_encoders.py').write_text(MY_ENCODER)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        base = ['train', '--preset', 'tiny', '--import', 'my_encoders', '--encoder', 'three_blocks', '--schedule', 'gll',
                '--rule', 'rf', '--epochs', '1', *SMALL]
        a, b = tmp_path / 'a', tmp_path / 'b'
        assert main([*base, '--out', str(a)]) == 0
        cfg = json.loads((a / 'config.json').read_text())
        assert (cfg['imports'], cfg['encoder']) == ('my_encoders', 'three_blocks')
        assert main([*base, '--out', str(b), '--stop-after', '5']) == 0
        assert main(['train', '--config', str(b / 'config.json')]) == 0
        ca, cb = (torch.load(d / 'checkpoint.pt', weights_only=True) for d in (a, b))
        assert cb['done'] and cb['pos'] == ca['pos']
        assert sorted({k.split('.')[1] for k in ca['encoder'] if k.startswith('layers.')}) == ['0', '1', '2']
        for part in ('encoder', 'heads'):
            for k in ca[part]: assert torch.equal(ca[part][k], cb[part][k]), k
        assert sorted(k for k in ca['heads'] if k.endswith('.B')) == ['0.1.B', '1.1.B', '2.1.B']   # a head per block, each under RF
        capsys.readouterr()
        assert main(['eval', str(a), '--probe-epochs', '1', '--n-probe', '300', '--device', 'cpu', '--layers', 'all']) == 0
        out = capsys.readouterr().out
        assert 'gll/rf/hinge' in out and all(f'| {l} |' in out for l in range(3)), out
        assert main(['train', '--preset', 'tiny', '--encoder', 'three_blocks_typo', '--import', 'my_encoders',
                     '--out', str(tmp_path / 'c')]) == 2
        assert 'three_blocks' in capsys.readouterr().err                    # the registered names, the user's included
    finally:
        from bioss_nb.models import ENCODERS
        ENCODERS.pop('three_blocks', None); sys.modules.pop('my_encoders', None)
