"Exact resume: a run interrupted and resumed ends with the same weights, bit for bit, as an uninterrupted one (CPU)."
import json
import pytest
import torch
from bioss_nb.train import get_config, train, Trainer, NonFiniteLossError

def cfg_for(out, **kw):
    base = dict(n_train=200, batch_size=50, epochs=2, progress=False, device='cpu', probe_epochs=1)
    return get_config('tiny', **{**base, **kw}, out=str(out))

def assert_same(a, b):
    for part in ('encoder', 'heads'):
        sa, sb = getattr(a, part).state_dict(), getattr(b, part).state_dict()
        assert sa.keys() == sb.keys()
        for k in sa: assert torch.equal(sa[k], sb[k]), f"{part}.{k} differs after resume"
    for oa, ob in zip(a.opts, b.opts):
        for (ka, va), (kb, vb) in zip(oa.state_dict()['state'].items(), ob.state_dict()['state'].items()):
            for n in va: assert torch.equal(torch.as_tensor(va[n]), torch.as_tensor(vb[n])), f"optimizer state {ka}.{n}"
    assert a.layer_seq == b.layer_seq and a.pos == b.pos and a.done and b.done

class Crash(Exception): pass

class CrashAt:
    "Callback that raises after `n` steps, like a killed process: nothing is saved at that point."
    def __init__(self, n): self.n, self.k = n, 0
    def after_step(self, tr, info):
        self.k += 1
        if self.k == self.n: raise Crash()

@pytest.mark.parametrize('schedule,rule,stop', [('e2e', 'bp', 3), ('e2e', 'urf', 6), ('rll', 'rf', 11), ('gll', 'bp', 10),
                                                ('e2e', 'dtp', 5)])
def test_stop_and_resume_is_exact(tmp_path, schedule, rule, stop):
    if rule == 'dtp': pytest.importorskip('bioss_nb.dtp')
    ref = train(cfg_for(tmp_path / 'ref', schedule=schedule, rule=rule))
    part = train(cfg_for(tmp_path / 'run', schedule=schedule, rule=rule), stop_after=stop)
    assert not part.done and part.pos['step'] == stop
    sd = torch.load(tmp_path / 'run' / 'checkpoint.pt', weights_only=True)   # only safe types inside
    assert sd['pos']['step'] == stop
    res = train(cfg_for(tmp_path / 'run', schedule=schedule, rule=rule))
    assert_same(ref, res)
    lines = [json.loads(l) for l in (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
    ref_lines = [json.loads(l) for l in (tmp_path / 'ref' / 'metrics.jsonl').read_text().splitlines()]
    assert [(r['stage'], r['epoch'], r['step']) for r in lines] == [(r['stage'], r['epoch'], r['step']) for r in ref_lines]
    assert [r['loss'] for r in lines] == [r['loss'] for r in ref_lines]

@pytest.mark.parametrize('schedule', ['rll', 'gll'])
def test_crash_resumes_from_last_checkpoint(tmp_path, schedule):
    ref = train(cfg_for(tmp_path / 'ref', schedule=schedule))
    with pytest.raises(Crash): train(cfg_for(tmp_path / 'run', schedule=schedule), callbacks=[CrashAt(6)])
    sd = torch.load(tmp_path / 'run' / 'checkpoint.pt', weights_only=True)
    assert sd['pos']['step'] == 4            # the end of epoch 0 (4 batches), not the crash point
    res = train(cfg_for(tmp_path / 'run', schedule=schedule))
    assert_same(ref, res)

def test_nan_keeps_last_good_checkpoint(tmp_path):
    tr = train(cfg_for(tmp_path, schedule='rll'), stop_after=2)
    good = (tmp_path / 'checkpoint.pt').read_bytes()
    tr.loss_fn = lambda z1, z2: (z1 - z2).sum() * float('inf')
    with pytest.raises(NonFiniteLossError, match='loss is'): tr.fit()
    assert (tmp_path / 'checkpoint.pt').read_bytes() == good
    assert all(torch.isfinite(p).all() for p in tr.encoder.parameters())

def test_resume_refuses_other_settings(tmp_path):
    train(cfg_for(tmp_path, schedule='gll'), stop_after=2)
    with pytest.raises(ValueError, match="different settings .*schedule='gll'"): train(cfg_for(tmp_path, schedule='rll'))
    with pytest.raises(ValueError, match='no checkpoint'): train(cfg_for(tmp_path / 'new'), resume=True)
