"""Run by tests/test_ddp.py, under `torchrun` or alone: train a small run and report its per-step losses (rank 0).

argv[1] is JSON: {"cfg": Config fields over the 'tiny' preset, "report": path, "stop_after": n, "crash_at": step}."""
import json, os, sys
from bioss_nb.train import get_config, train

a = json.loads(sys.argv[1])
steps = []

class Record:
    def after_step(self, tr, info):
        steps.append(info['loss'])
        if a.get('crash_at') and tr.pos['step'] == a['crash_at']: os._exit(3)   # a kill: nothing saved at this point

tr = train(get_config('tiny', **a['cfg']), stop_after=a.get('stop_after'), callbacks=[Record()])
if tr.rank == 0:
    with open(a['report'], 'w') as f: json.dump(dict(losses=steps, pos=tr.pos, world=tr.world, layer_seq=tr.layer_seq), f)
