"""GPU check of the engine's epoch at the paper's CIFAR size (CONV6, batch 500, E2E BP, the engine's CUDA defaults):
the loss read on the host at every step (`log_every=1`) against only at the epoch's end (`log_every=0`), and the same
with `torch.compile` (default mode) and with `torch.compile(mode='reduce-overhead')` (CUDA graphs) around each step's
network call. Generated CIFAR-shaped data (no download). Prints a markdown table of seconds per epoch (after warm-up).

    python bench/gpu_epoch_sync.py [--epochs 3] [--batches 20] [--device cuda] [--out FILE]
"""
import argparse, statistics, sys, tempfile, time, traceback
import torch
from bioss_nb.train import get_config, Trainer

VARIANTS = (('loss read every step (log_every=1)', dict(log_every=1), None),
            ('loss read at epoch ends (log_every=0)', dict(log_every=0), None),
            ('log_every=0, torch.compile', dict(log_every=0, compile=True), None),
            ("log_every=0, torch.compile(mode='reduce-overhead')", dict(log_every=0), 'reduce-overhead'))

def epoch_times(x, device, epochs, kw, mode):
    "Seconds of each epoch of one run (the device synchronised at each epoch's end)."
    cfg = get_config('paper-cifar', epochs=epochs, device=device, progress=False, out=tempfile.mkdtemp(), ckpt_every=10**6,
                     monitor_every=0, **kw)
    times = []
    class Timer:
        def after_epoch(self, tr, rec):
            if tr.device.type == 'cuda': torch.cuda.synchronize()
            times.append(time.perf_counter())
    tr = Trainer(cfg, data=x, callbacks=[Timer()])
    if mode is not None: tr.nets = [torch.compile(n, mode=mode) for n in tr.nets]
    t0 = time.perf_counter()
    tr.fit()
    return [b - a for a, b in zip([t0] + times[:-1], times)], tr

def main(argv=None):
    P = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    P.add_argument('--epochs', type=int, default=3); P.add_argument('--batches', type=int, default=20)
    P.add_argument('--device', default='cuda'); P.add_argument('--out', default=None)
    a = P.parse_args(argv)
    if a.device.startswith('cuda') and not torch.cuda.is_available(): sys.exit('CUDA is not available: this check needs a GPU')
    x = torch.randint(0, 256, (500 * a.batches, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    dev = torch.cuda.get_device_name() if a.device.startswith('cuda') else a.device
    lines = [f"CONV6, E2E BP, batch 500 (1000 views), {a.batches} batches per epoch, {dev}, torch {torch.__version__}; "
             f"seconds per epoch: median of epochs 2..{a.epochs} (the first, with warm-up and compilation, apart)", '',
             '| variant | first epoch (s) | s / epoch | s / step | last loss |', '|---|---|---|---|---|']
    for name, kw, mode in VARIANTS:
        try:
            ep, tr = epoch_times(x, a.device, a.epochs, kw, mode)
            from bioss_nb.runs import read_metrics
            loss = read_metrics(tr.run_dir)[-1]['loss']
            s = statistics.median(ep[1:]) if len(ep) > 1 else ep[0]
            lines.append(f"| {name} | {ep[0]:.2f} | {s:.3f} | {s / a.batches:.4f} | {loss:.4g} |")
        except Exception as e:                       # one variant failing (e.g. CUDA graphs here) leaves the others
            traceback.print_exc(limit=3)
            lines.append(f"| {name} | failed: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''} | - | - | - |")
        print(lines[-1], file=sys.stderr, flush=True)
        if torch.cuda.is_available(): torch.cuda.empty_cache()
    text = '\n'.join(lines) + '\n'
    print(text)
    if a.out: open(a.out, 'w').write(text)

if __name__ == '__main__': main()
