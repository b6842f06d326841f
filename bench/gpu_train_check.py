"""GPU check of the training engine at the paper's CIFAR size: CONV6, batch 500, every rule under E2E and one GLL stage.

Runs on generated CIFAR-shaped data (no download): 2 epochs of 20 batches each (10,000 images), on cuda.
Prints seconds per epoch (the second epoch, after warm-up) as a markdown table. Usage:

    python bench/gpu_train_check.py [--epochs 2] [--batches 20] [--device cuda] [--rules bp rf urf sign dtp]
                                    [--precision fp32|bf16] [--channels-last true|false]   (default: the engine's, per device)
"""
import argparse, json, sys, tempfile, time
import torch
from bioss_nb.train import get_config, Trainer

def main(argv=None):
    P = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    P.add_argument('--epochs', type=int, default=2)
    P.add_argument('--batches', type=int, default=20)
    P.add_argument('--device', default='cuda')
    P.add_argument('--rules', nargs='+', default=['bp', 'rf', 'urf', 'sign', 'dtp'])
    P.add_argument('--precision', choices=['fp32', 'bf16'], default=None)
    P.add_argument('--channels-last', choices=['true', 'false'], default=None)
    a = P.parse_args(argv)
    if a.device.startswith('cuda') and not torch.cuda.is_available(): sys.exit('CUDA is not available: this check needs a GPU')
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (500 * a.batches, 3, 32, 32), dtype=torch.uint8, generator=g)   # CIFAR-shaped images
    rows, used = [], set()
    cl = None if a.channels_last is None else a.channels_last == 'true'
    for schedule in ('e2e', 'gll'):
        for rule in a.rules:
            if schedule == 'gll' and rule == 'dtp': continue
            cfg = get_config('paper-cifar', schedule=schedule, rule=rule, epochs=a.epochs, device=a.device,
                             progress=False, out=tempfile.mkdtemp(), ckpt_every=10**6, channels_last=cl,
                             precision=None if rule == 'dtp' and a.precision == 'bf16' else a.precision)
            times = []
            class Timer:
                def after_epoch(self, tr, rec):
                    if tr.device.type == 'cuda': torch.cuda.synchronize()
                    times.append(time.perf_counter())
                    if schedule == 'gll' and len(times) == a.epochs: raise StopIteration   # one GLL stage (block 0)
            tr = Trainer(cfg, data=x, callbacks=[Timer()])
            used.add(f"{tr.precision}{', channels_last' if tr.channels_last else ''}")
            if tr.device.type == 'cuda': torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            try: tr.fit()
            except StopIteration: pass
            ep = [b - a_ for a_, b in zip([t0] + times[:-1], times)]
            mem = torch.cuda.max_memory_allocated() / 2**30 if tr.device.type == 'cuda' else float('nan')
            loss = json.loads((tr.run_dir / 'metrics.jsonl').read_text().splitlines()[-1])['loss']
            rows.append((schedule.upper() + (' (stage 0)' if schedule == 'gll' else ''), rule, ep[0], ep[-1], mem, loss))
            print(f"{rows[-1][0]} {rule}: epochs {[round(e, 2) for e in ep]} s, peak {mem:.2f} GiB, last loss {loss:.4g}",
                  file=sys.stderr, flush=True)
    dev = torch.cuda.get_device_name() if a.device.startswith('cuda') else a.device
    print(f"\nCONV6, batch 500 (1000 views), {a.batches} batches/epoch, {dev}, torch {torch.__version__}, {' / '.join(sorted(used))}\n")
    print('| schedule | rule | first epoch (s) | s / epoch | s / batch | peak GPU memory (GiB) | last loss |')
    print('|---|---|---|---|---|---|---|')
    for s, r, e0, e, m, l in rows: print(f'| {s} | {r} | {e0:.2f} | {e:.2f} | {e / a.batches:.3f} | {m:.2f} | {l:.4g} |')

if __name__ == '__main__': main()
