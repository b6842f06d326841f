"`Config.compile`: torch.compile'd steps compute what the eager steps compute (CPU, inductor; needs a C++ compiler)."
import shutil
import pytest
import torch
from bioss_nb.train import get_config, Trainer, train

pytestmark = pytest.mark.skipif(not (shutil.which('g++') or shutil.which('c++') or shutil.which('clang++')),
                                reason="torch.compile on a CPU needs a C++ compiler")

def run(tmp_path, name, steps=3, **kw):
    cfg = get_config('tiny', n_train=200, batch_size=50, epochs=1, progress=False, device='cpu', out=str(tmp_path / name), **kw)
    tr = Trainer(cfg); tr.fit(stop_after=steps); return tr

@pytest.mark.parametrize('schedule,rule', [('e2e', 'bp'), ('e2e', 'rf'), ('gll', 'urf')])
def test_compiled_steps_match_eager(tmp_path, schedule, rule):
    torch._dynamo.reset()
    eager = run(tmp_path, 'eager', schedule=schedule, rule=rule)
    comp = run(tmp_path, 'comp', schedule=schedule, rule=rule, compile=True)
    assert all(type(n).__name__ == 'OptimizedModule' for n in comp.nets)          # the steps went through torch.compile
    assert eager.pos == comp.pos
    for (k, a), b in zip(eager.encoder.state_dict().items(), comp.encoder.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=lambda m: f"{k}: {m}")
    for (k, a), b in zip(eager.heads.state_dict().items(), comp.heads.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=lambda m: f"{k}: {m}")

def test_compile_can_be_switched_on_when_resuming(tmp_path):
    "compile changes how a step runs, not the run: an eager run's checkpoint resumes under compile=True."
    torch._dynamo.reset()
    cfg = lambda name, **kw: get_config('tiny', n_train=200, batch_size=50, epochs=1, progress=False, device='cpu',
                                        out=str(tmp_path / name), **kw)
    ref = train(cfg('ref'))
    part = train(cfg('run'), stop_after=2)
    assert part.pos['step'] == 2
    res = train(cfg('run', compile=True))                                # the same folder, compile now on: resumes
    assert res.done and res.pos == ref.pos and type(res.nets[0]).__name__ == 'OptimizedModule'
    for (k, a), b in zip(ref.encoder.state_dict().items(), res.encoder.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=lambda m: f"{k}: {m}")
