"""CONV6 on the GPU: seconds per CIFAR-sized epoch (50,000 images, batch 500 -> 1000 views per step) on generated data,
for bp, rf and a GLL stage, each plain and with channels_last, bf16 autocast and torch.compile (alone and together).

    python bench/gpu_conv6.py [--steps 20] [--out bench/results/gpu_conv6.md]

The time of `--steps` steps after a warm-up is scaled to the 100 steps of a CIFAR epoch.
"""
from __future__ import annotations
import argparse, statistics, sys, time
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bioss_nb.models import conv6, projection_head
from bioss_nb.losses import ContrastiveHinge
from bioss_nb.deform import two_views


def make_step(rule, schedule, cl, bf16, comp, B=500, dev=torch.device('cuda')):
    torch.manual_seed(0)
    enc = conv6(rule).to(dev)
    L = len(enc) - 1 if schedule == 'gll' else None
    head = projection_head(enc.out_features[-1], rule=rule).to(dev)
    mf = torch.channels_last if cl else torch.contiguous_format
    enc = enc.to(memory_format=mf)
    params = list(head.parameters()) + (list(enc[L].parameters()) if L is not None else list(enc.parameters()))
    opt = torch.optim.Adam(params, 1e-4)
    loss_fn = ContrastiveHinge()
    x = torch.rand(B, 3, 32, 32, device=dev)
    gen = torch.Generator(device=dev).manual_seed(0)

    def fwd(v):
        if L is None: return head(enc(v))
        with torch.no_grad(): h = enc.forward_to(v, L - 1)
        return head(enc[L](h))
    f = torch.compile(fwd) if comp else fwd

    def step():
        v1, v2 = two_views(x, generator=gen)
        v = torch.cat([v1, v2]).contiguous(memory_format=mf)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            z = f(v)
        loss = loss_fn(z[:B].float(), z[B:].float())
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        return loss
    return step


def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'results' / 'gpu_conv6.md'))
    ap.add_argument('--no-compile', action='store_true'); ap.add_argument('--device', default='cuda'); ap.add_argument('--batch', type=int, default=500)
    a = ap.parse_args(argv)
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    variants = [('plain', False, False, False), ('channels_last', True, False, False), ('bf16', False, True, False),
                ('channels_last+bf16', True, True, False)]
    if not a.no_compile: variants += [('compile', False, False, True), ('all three', True, True, True)]
    rows, base = [], {}
    # compiled variants last: compiling takes a while, and the first configuration shows what it brings
    plan = [(r, sc, v) for r, sc in (('bp', 'e2e'), ('rf', 'e2e'), ('bp', 'gll')) for v in variants if not v[3]]
    plan += [('bp', 'e2e', v) for v in variants if v[3]]
    for rule, sched, (name, cl, bf, comp) in plan:
        try:
            step = make_step(rule, sched, cl, bf, comp, B=a.batch, dev=dev)
            for _ in range(3): step()
            sync(); ts = []
            for _ in range(3):
                t = time.perf_counter()
                for _ in range(a.steps): loss = step()
                sync(); ts.append((time.perf_counter() - t) / a.steps * 100)
            s = statistics.median(ts); base.setdefault((rule, sched), s)
            rows.append(f"| {sched} {rule} | {name} | {s:.2f} | {base[(rule, sched)] / s:.2f}x | {float(loss):.1f} |")
        except Exception as e:
            rows.append(f"| {sched} {rule} | {name} | failed: {type(e).__name__}: {str(e)[:80]} | - | - |")
        print(rows[-1], flush=True)
        Path(a.out).with_suffix('.partial').write_text('\n'.join(rows) + '\n')
    md = [f"Device: {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}, torch {torch.__version__}. Command: `python bench/gpu_conv6.py --steps {a.steps}`.", '',
          '| schedule, rule | variant | s / CIFAR epoch (100 steps of 2x500) | speed-up vs plain | last loss |', '|---|---|---|---|---|', *rows]
    Path(a.out).write_text('\n'.join(md) + '\n'); print('\n'.join(md))


if __name__ == '__main__':
    main()
