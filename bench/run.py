"""bioss_nb benchmark: speed and memory against the usual alternatives, measured side by side.

    python bench/run.py [--device cpu|cuda] [--reps 7] [--only hinge,deform,...] [--out bench/results]

Every speed figure is a ratio against a baseline timed in the same process, steps alternated (baseline, ours, baseline,
ours, ...) after a warm-up; we report the median ratio with its min and max over the repetitions. Peak memory on the
CPU is measured for each case in its own subprocess as the growth of peak RSS (VmHWM, reset through
/proc/self/clear_refs) over the process's RSS after the inputs are built; on CUDA it is `torch.cuda.max_memory_allocated` above the same level.
"""
from __future__ import annotations
import argparse, json, os, platform, resource, statistics, subprocess, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# ---------------------------------------------------------------------------------------------------------------------
# Baselines, re-implemented here as the alternatives users would otherwise reach for.

def hinge_repeat(z1, z2, tau=2., delta=1., n_negs=None):
    "The authors' `repeat` formulation: the full (B*B, D) difference tensor, then the pair matrix (or F of its diagonals)."
    B = z1.shape[0]
    a = z1.repeat(B, 1)                     # row i*B + j holds z1[j]
    b = z2.repeat_interleave(B, dim=0)      # row i*B + j holds z2[i]
    diff = a - b
    OUT = (torch.relu(diff) + torch.relu(-diff)).sum(1).reshape(B, B).t()   # OUT[j, i] = |z1_j - z2_i|_1
    pos = torch.relu(torch.diagonal(OUT) - (tau - delta)).sum()
    if n_negs is None:
        off = ~torch.eye(B, dtype=torch.bool, device=z1.device)
        return pos + torch.relu((tau + delta) - OUT[off]).sum()
    return pos + sum(torch.relu((tau + delta) - torch.diagonal(OUT, m)).sum() for m in range(1, n_negs)) / n_negs


def tv_pipeline(p=0.5, s=4., h=0.2):
    "A torchvision.transforms.v2 per-image pipeline comparable to the paper's deformation."
    from torchvision.transforms import v2
    return v2.Compose([v2.RandomAffine(degrees=15, translate=(p / 2, p / 2), scale=(1 - p / 2, 1 + p / 2), shear=10),
                       v2.ColorJitter(saturation=(2 ** (-s / 2), 2 ** (s / 2)), hue=h / 2),
                       v2.RandomHorizontalFlip(0.5)])


def tv_deform(x, pipe):
    return torch.stack([pipe(img) for img in x])   # image by image, as a Dataset's transform runs


def kornia_deform_pipeline(p=0.5, s=4., h=0.2, flip=0.5, affine_frac=0.5):
    """kornia.augmentation's batched counterpart of `deform` with its parameters: the affine map on a random part of the
    batch (kornia: each image with probability affine_frac; ours: exactly that fraction), the same shift range (a
    quarter of the size at p = 0.5) and torchvision's rotation, scale and shear ranges above for the linear part (kornia
    composes those; ours draws the four entries); HSV saturation over [2^(-s/2), 2^(s/2)] (kornia: uniform; ours:
    log-uniform) and hue over U(-h/2, h/2) turns, both on every image; a flip with probability flip."""
    import kornia.augmentation as K
    return torch.nn.Sequential(
        K.RandomAffine(degrees=15, translate=(p / 2, p / 2), scale=(1 - p / 2, 1 + p / 2), shear=10, align_corners=True, p=affine_frac),
        K.RandomSaturation((2 ** (-s / 2), 2 ** (s / 2)), p=1.), K.RandomHue((-h / 2, h / 2), p=1.),
        K.RandomHorizontalFlip(p=flip))


def kornia_crops_pipeline(size=64, scale=(0.08, 1.), flip=0.5, jitter=(0.8, 0.8, 0.8, 0.2), p_jitter=0.8, p_gray=0.2):
    "kornia.augmentation's batched counterpart of `crop_views`, parameter for parameter (torchvision's ColorJitter conventions)."
    import kornia.augmentation as K
    return torch.nn.Sequential(K.RandomResizedCrop((size, size), scale=scale, ratio=(3 / 4, 4 / 3)),
                               K.RandomHorizontalFlip(p=flip), K.ColorJitter(*jitter, p=p_jitter), K.RandomGrayscale(p=p_gray))


def theta_to_pixels(theta, H, W):
    "kornia's matrix M (input pixel -> output pixel) of `warp`'s theta (output -> input, normalised, align_corners=True)."
    N = theta.new_tensor([[2 / (W - 1), 0, -1], [0, 2 / (H - 1), -1], [0, 0, 1.]])
    T = torch.cat([theta, theta.new_tensor([0, 0, 1.]).expand(len(theta), 1, 3)], 1)
    return torch.linalg.inv(torch.linalg.inv(N) @ T @ N)[:, :2]

# ---------------------------------------------------------------------------------------------------------------------
# Timing

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def timeit(fn, dev):
    sync(dev); t = time.perf_counter(); fn(); sync(dev); return time.perf_counter() - t


def compare(base, ours, dev, reps=7, warmup=2):
    "Alternate baseline and ours; return per-rep times and the speed-up (baseline/ours) median, min, max."
    for _ in range(warmup): base(); ours()
    tb, to = [], []
    for _ in range(reps): tb.append(timeit(base, dev)); to.append(timeit(ours, dev))
    r = [b / o for b, o in zip(tb, to)]
    return dict(base_s=statistics.median(tb), ours_s=statistics.median(to),
                ratio=statistics.median(r), ratio_min=min(r), ratio_max=max(r))

# ---------------------------------------------------------------------------------------------------------------------
# Cases. Each `setup_*` returns {variant: zero-argument callable}; the same callables serve timing and memory.

def setup_hinge(dev, B, D=64, n_negs=None):
    from bioss_nb.losses import ContrastiveHinge
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(B, D, generator=g).mul(0.1).to(dev).requires_grad_()
    z2 = torch.randn(B, D, generator=g).mul(0.1).to(dev).requires_grad_()
    ours = ContrastiveHinge(n_negs=n_negs)
    def run(f):
        def step():
            z1.grad = z2.grad = None
            f(z1, z2).backward()
        return step
    return dict(baseline=run(lambda a, b: hinge_repeat(a, b, n_negs=n_negs)), ours=run(ours))


def _gen(dev): return torch.Generator(device=dev).manual_seed(0) if dev.type == 'cuda' else torch.Generator().manual_seed(0)


def setup_deform(dev, B=500):
    from bioss_nb.deform import deform
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, 3, 32, 32, generator=g).to(dev)
    pipe, gen = tv_pipeline(), _gen(dev)
    return dict(baseline=lambda: tv_deform(x, pipe), ours=lambda: deform(x, generator=gen))


def setup_kornia_deform(dev, B=500):
    "The paper's deformation, batched: kornia.augmentation against `deform`, 500 colour images of 32x32."
    from bioss_nb.deform import deform
    x = torch.rand(B, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(dev)
    torch.manual_seed(0)
    pipe, gen = kornia_deform_pipeline().to(dev), _gen(dev)
    return dict(baseline=lambda: pipe(x), ours=lambda: deform(x, generator=gen))


def setup_kornia_warp(dev, B=500):
    "The bilinear warp alone, the same 500 affine maps for both: kornia.geometry.warp_affine against `warp`."
    from kornia.geometry.transform import warp_affine
    from bioss_nb.deform import warp, random_theta
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, 3, 32, 32, generator=g).to(dev)
    th = random_theta(B, 0.5, generator=g).to(dev)
    M = theta_to_pixels(th, 32, 32)
    return dict(baseline=lambda: warp_affine(x, M, (32, 32), align_corners=True), ours=lambda: warp(x, th))


def setup_kornia_crops(dev, B=250):
    "The STL10 views, batched: kornia.augmentation against `crop_views`, 250 images of 96x96 to 64x64 (paper-stl10's batch)."
    from bioss_nb.crops import crop_views
    x = torch.rand(B, 3, 96, 96, generator=torch.Generator().manual_seed(0)).to(dev)
    torch.manual_seed(0)
    pipe, gen = kornia_crops_pipeline().to(dev), _gen(dev)
    return dict(baseline=lambda: pipe(x), ours=lambda: crop_views(x, generator=gen))


def _conv6_step(rule, dev, B, state=None):
    from bioss_nb.models import conv6, projection_head
    from bioss_nb.losses import ContrastiveHinge
    from bioss_nb.feedback import param_groups
    torch.manual_seed(0)
    enc = conv6(rule).to(dev); head = projection_head(enc.out_features[-1], rule=rule).to(dev)
    opt = torch.optim.Adam(param_groups(enc, head), 1e-4)        # Kolen-Pollack's W and B in a decayed group
    loss_fn = ContrastiveHinge()
    g = torch.Generator().manual_seed(1)
    v1, v2 = torch.rand(2, B, 3, 32, 32, generator=g).to(dev)
    def step():
        opt.zero_grad(set_to_none=True)
        z = head(enc(torch.cat([v1, v2])))
        loss_fn(z[:B], z[B:]).backward()
        opt.step()
    return step


def _conv6_dfa_step(dev, B):
    "One DFA step of CONV6 and its head: the top error sent to every block through its own fixed matrix."
    from bioss_nb.models import conv6, projection_head
    from bioss_nb.losses import ContrastiveHinge
    from bioss_nb.feedback import DFA
    torch.manual_seed(0)
    enc = conv6().to(dev); head = projection_head(enc.out_features[-1]).to(dev)
    dfa = DFA(enc, head, ContrastiveHinge())
    g = torch.Generator().manual_seed(1)
    v1, v2 = torch.rand(2, B, 3, 32, 32, generator=g).to(dev)
    return lambda: dfa.step(v1, v2)


RULE_CASES = ('rf', 'urf', 'sign', 'kp', 'dfa')       # each timed against BP's step, in turn

def setup_rules(dev, B=64):
    return {**{r: _conv6_step(r, dev, B) for r in ('bp', 'rf', 'urf', 'sign', 'kp')}, 'dfa': _conv6_dfa_step(dev, B)}


def setup_dtp(dev, B=64):
    from bioss_nb.models import conv6, projection_head
    from bioss_nb.losses import ContrastiveHinge
    from bioss_nb.dtp import DTP
    torch.manual_seed(0)
    enc = conv6().to(dev); head = projection_head(enc.out_features[-1]).to(dev)
    dtp = DTP(enc, head, ContrastiveHinge())
    g = torch.Generator().manual_seed(1)
    v1, v2 = torch.rand(2, B, 3, 32, 32, generator=g).to(dev)
    return dict(bp=_conv6_step('bp', dev, B), dtp=lambda: dtp.step(v1, v2))


def setup_data(dev, N=50_000):
    from bioss_nb.loader import DeviceLoader
    from torch.utils.data import DataLoader, TensorDataset
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (N, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (N,), generator=g)
    ours_loader = DeviceLoader(x, y, batch_size=500, device=dev)
    dl = DataLoader(TensorDataset(x, y), batch_size=500, shuffle=True, drop_last=True)
    def ours():
        for xb, yb in ours_loader: pass
    def base():
        for xb, yb in dl: xb = xb.to(dev, non_blocking=True).float().div_(255); yb = yb.to(dev)
    return dict(baseline=base, ours=ours)


def ssl_epoch_seconds(dev, n=4000, B=500, reps=3, channels_last=False, bf16=False, compile=False):
    "One SSL epoch of CONV6 on digits (2 x B views per step) with deformations, the hinge loss and Adam."
    from bioss_nb.data import load_dataset
    from bioss_nb.loader import DeviceLoader
    from bioss_nb.deform import two_views
    from bioss_nb.models import conv6, projection_head
    from bioss_nb.losses import ContrastiveHinge
    x, _ = load_dataset('mnist5k', 'train')
    x = x[:n]
    torch.manual_seed(0)
    enc = conv6(in_shape=tuple(x.shape[1:])).to(dev); head = projection_head(enc.out_features[-1]).to(dev)
    mf = torch.channels_last if channels_last else torch.contiguous_format
    enc = enc.to(memory_format=mf)
    opt = torch.optim.Adam(list(enc.parameters()) + list(head.parameters()), 1e-4)
    net = torch.nn.Sequential(enc, head)
    if compile: net = torch.compile(net)
    loss_fn, loader = ContrastiveHinge(n_negs=5, grad_block=True), DeviceLoader(x, batch_size=B, device=dev)
    gen = torch.Generator(device=dev).manual_seed(0) if dev.type == 'cuda' else torch.Generator().manual_seed(0)
    def epoch():
        for xb, _ in loader:
            v1, v2 = two_views(xb, generator=gen)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                z = net(torch.cat([v1, v2]).contiguous(memory_format=mf)).float()
            opt.zero_grad(set_to_none=True); loss_fn(z[:len(xb)], z[len(xb):]).backward(); opt.step()
    t0 = time.perf_counter(); epoch(); first = time.perf_counter() - t0   # warm-up (and compilation)
    ts = [timeit(epoch, dev) for _ in range(reps)]
    return dict(median_s=statistics.median(ts), min_s=min(ts), max_s=max(ts), steps=len(loader), first_s=first)


SETUPS = {
    'hinge_all_500': lambda dev: setup_hinge(dev, 500), 'hinge_all_1000': lambda dev: setup_hinge(dev, 1000),
    'hinge_few_500': lambda dev: setup_hinge(dev, 500, n_negs=5), 'hinge_few_1000': lambda dev: setup_hinge(dev, 1000, n_negs=5),
    'deform': setup_deform, 'rules': setup_rules, 'dtp': setup_dtp, 'data': setup_data,
    'kornia_deform': setup_kornia_deform, 'kornia_warp': setup_kornia_warp, 'kornia_crops': setup_kornia_crops,
}

# ---------------------------------------------------------------------------------------------------------------------
# Memory: one subprocess per (case, variant).

def _status_mb(key):
    "VmRSS or VmHWM (peak RSS) of this process, in MB, from /proc/self/status."
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'): return int(line.split()[1]) / 1024


def _reset_peak():
    "Reset this process's peak RSS to its current RSS (Linux clear_refs). A forked child inherits its parent's peak otherwise."
    with open('/proc/self/clear_refs', 'w') as f: f.write('5')


def mem_child(case, variant, device):
    dev = torch.device(device)
    fns = SETUPS[case](dev)
    fn = fns[variant]
    if dev.type == 'cuda':
        torch.cuda.synchronize(); base = torch.cuda.memory_allocated(); torch.cuda.reset_peak_memory_stats()
        fn(); torch.cuda.synchronize(); peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        _reset_peak(); base = _status_mb('VmRSS'); fn(); peak = _status_mb('VmHWM') - base
    print(json.dumps(dict(peak_mb=peak)))


def mem(case, variant, device):
    r = subprocess.run([sys.executable, __file__, '--mem-child', case, variant, '--device', device],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode: raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])['peak_mb']

# ---------------------------------------------------------------------------------------------------------------------

def machine(dev):
    cpu = platform.processor() or platform.machine()
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except Exception: pass
    s = f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    if dev.type == 'cuda': s += f", {torch.cuda.get_device_name()}"
    return s


def fmt_ratio(r, nd=1): return f"{r['ratio']:.{nd}f}x ({r['ratio_min']:.{nd}f}-{r['ratio_max']:.{nd}f})"


SSL_VARIANTS = (('fp32', {}), ('fp32, channels_last', dict(channels_last=True)), ('bf16 autocast', dict(bf16=True)),
                ('bf16 autocast, channels_last', dict(channels_last=True, bf16=True)),
                ('fp32, channels_last, torch.compile', dict(channels_last=True, compile=True)))
KORNIA_CASES = ('kornia_deform', 'kornia_warp', 'kornia_crops')     # baseline: kornia (the `bench` extra)
CASES = ('hinge_all_500', 'hinge_all_1000', 'hinge_few_500', 'hinge_few_1000', 'deform', 'data', *KORNIA_CASES)


def table_rows(res) -> list:
    "The markdown rows of every measured case in `res`, in a fixed order."
    rows = []
    for case in CASES:
        if case not in res: continue
        r = res[case]
        memtxt = f"{r['base_mb']:.1f} MB / {max(r['ours_mb'], 0):.1f} MB" if 'base_mb' in r else '-'
        rows.append(f"| {case} | {r['base_s']*1e3:.1f} ms | {r['ours_s']*1e3:.1f} ms | {fmt_ratio(r)} | {memtxt} |")
    for k in RULE_CASES:
        if f'rule_{k}' in res:
            r = res[f'rule_{k}']
            rows.append(f"| conv6 step, {k} vs bp (cost) | {r['bp_s']*1e3:.1f} ms | {r['rule_s']*1e3:.1f} ms | {fmt_ratio(r, 2)} | - |")
    if 'dtp' in res:
        r = res['dtp']
        rows.append(f"| conv6 step, dtp vs bp (cost) | {r['ours_s']*1e3:.1f} ms | {r['base_s']*1e3:.1f} ms | {fmt_ratio(r, 2)} | - |")
    base = res.get('ssl_epoch fp32', {}).get('median_s')
    for name, _ in SSL_VARIANTS:
        r = res.get(f'ssl_epoch {name}')
        if r is None or base is None: continue
        first = f"; first epoch {r['first_s']:.1f} s" if 'compile' in name and 'first_s' in r else ''
        rows.append(f"| SSL epoch, conv6 on 4000 digits ({r['steps']} steps of 2x500 views, hinge with 5 negatives), {name} | "
                    f"{base:.2f} s | {r['median_s']:.2f} s ({r['min_s']:.2f}-{r['max_s']:.2f}){first} | {base / r['median_s']:.2f}x | - |")
    if 'ddp' in res:
        r = res['ddp']
        rows.append(f"| one run in 1 process (2 threads) vs 2 gloo processes (1 thread each), `{r['what']}` | "
                    f"{r['one_s']:.2f} s / epoch | {r['two_s']:.2f} s / epoch | {r['one_s'] / r['two_s']:.2f}x | - |")
    if 'jobs' in res:
        r = res['jobs']
        rows.append(f"| `table --jobs 2` vs `--jobs 1`, `{r['what']}` | {r['one_s']:.1f} s | {r['two_s']:.1f} s | "
                    f"{r['one_s'] / r['two_s']:.2f}x | - |")
    if 'accuracy' in res:
        r = res['accuracy']; f, b = r['fp32'], r['bf16']
        rows.append(f"| digits preset, `{r['row']}` seed {r['seed']}: clean / perturbed probe accuracy, fp32 vs bf16 autocast | "
                    f"{100 * f['clean']:.2f}% / {100 * f['perturbed']:.2f}% ({f['seconds']:.0f} s) | "
                    f"{100 * b['clean']:.2f}% / {100 * b['perturbed']:.2f}% ({b['seconds']:.0f} s) | {f['seconds'] / b['seconds']:.2f}x | - |")
    if 'syncs' in res:
        r = res['syncs']; every = r[f"ms_per_step_log_every_{r['log_every']}"]
        free = r.get('cpu_only', {})
        def reads(per):
            wait = {k: v for k, v in per.items() if k not in free}
            return (f"{sum(per.values()):.2f}, of which " + '; '.join(f"{v:g} {k}" for k, v in per.items())
                    + (f"; on a GPU {sum(wait.values()):g} would wait for the device ("
                       + ('; '.join(f"{v:g} {k}" for k, v in wait.items()) or 'none') + ")" if free else ''))
        why = '; '.join(sorted({f"{k.split(' at ')[0]} in {k.split('(')[-1].rstrip(')')}: {w}" for k, w in free.items()}))
        rows.append(f"| host reads of tensor values per training step (batch 8, log_every={r['log_every']}; on a GPU only reads "
                    f"of device tensors are counted, each a wait for the device): tiny preset {reads(r['per_step'])}"
                    + (f"; stl10-tiny preset (crops) {reads(r['per_step_stl10'])}" if 'per_step_stl10' in r else '')
                    + (f". Counted on the CPU but no wait on a GPU: {why}" if free else '') + " | "
                    f"{r['ms_per_step_log_every_1']:.2f} ms / step (loss read every step) | {every:.2f} ms / step "
                    f"(every {r['log_every']}) | - | - |")
    if 'tiny' in res:
        r = res['tiny']
        rows.append(f"| tiny preset end to end (`bioss-nb train --preset tiny`) | - | {r['wall_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB | - | - |")
    return rows


def _cli(*args, env=None, cwd=None):
    "Run the command line in its own process; its wall time in seconds."
    t = time.perf_counter()
    p = subprocess.run([*args], capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd)
    if p.returncode: raise RuntimeError(' '.join(map(str, args)) + ' failed:\n' + p.stderr[-2000:])
    return time.perf_counter() - t


def _epoch_s(run_dir) -> float:
    "Median seconds per epoch of a run, from its metrics.jsonl (the first epoch, with its warm-up, left out)."
    from bioss_nb.train import read_metrics
    return statistics.median([r['time_s'] for r in read_metrics(run_dir) if 'time_s' in r][1:])


def ddp_epoch(dev):
    "Seconds per epoch of one digits run (CONV6, 2000 images, 4 epochs) in 1 process and in 2 gloo processes under torchrun."
    import tempfile
    bin_ = Path(sys.executable).parent
    args = ['train', '--preset', 'digits', '--n_train', '2000', '--epochs', '4', '--progress', 'false', '--device', dev.type]
    with tempfile.TemporaryDirectory() as d:
        _cli(bin_ / 'bioss-nb', *args, '--out', f'{d}/one')
        _cli(bin_ / 'torchrun', '--standalone', '--nproc-per-node', '2', bin_ / 'bioss-nb', *args, '--out', f'{d}/two',
             env=dict(OMP_NUM_THREADS='1'))
        return dict(one_s=_epoch_s(f'{d}/one'), two_s=_epoch_s(f'{d}/two'),
                    what='digits preset, 2000 images, global batch 500, E2E BP')


JOB_ROWS = ('hinge-e2e-bp', 'hinge-e2e-rf', 'hinge-gll-bp', 'random')

def jobs_wall(dev):
    "Wall time of a four-row tiny grid run by `table` with --jobs 1 and with --jobs 2."
    import tempfile
    cli = Path(sys.executable).parent / 'bioss-nb'
    args = ['table', '--preset', 'tiny', '--rows', *JOB_ROWS, '--seeds', '0', '--progress', 'false', '--device', dev.type]
    with tempfile.TemporaryDirectory() as d:
        one = _cli(cli, *args, '--jobs', '1', '--out', f'{d}/one')
        two = _cli(cli, *args, '--jobs', '2', '--out', f'{d}/two')
    return dict(one_s=one, two_s=two, what=f"--preset tiny --rows {' '.join(JOB_ROWS)} --seeds 0")


def precision_accuracy(dev, row='hinge5gb-e2e-bp', seed=0):
    "Clean and perturbed probe accuracy of one digits row trained in fp32 and in bf16, same seed, and each run's wall time."
    import tempfile
    cli, out = Path(sys.executable).parent / 'bioss-nb', {}
    with tempfile.TemporaryDirectory() as d:
        for prec in ('fp32', 'bf16'):
            wall = _cli(cli, 'table', '--preset', 'digits', '--rows', row, '--seeds', str(seed), '--precision', prec,
                        '--progress', 'false', '--device', dev.type, '--out', f'{d}/{prec}')
            r = json.loads((Path(d) / prec / 'results.jsonl').read_text().splitlines()[0])
            out[prec] = dict(clean=r['clean'], perturbed=r['perturbed'], seconds=r['seconds'], wall_s=wall)
    return dict(row=row, seed=seed, **out)


_SYNC_METHODS = ('item', 'tolist', '__bool__', '__float__', '__int__', '__index__', 'numpy', 'cpu')
# Reads counted on the CPU (where every read is) that make no GPU wait: by the function that asks, why
_CPU_ONLY_READS = {'_get_value': "Adam's step counters, CPU tensors on a GPU too",
                   '_l1_path': "the hinge's count of active pairs, made on the CPU only (a GPU takes the chunked path)",
                   'color_jitter': "the images per jitter, counted on the CPU only (a GPU jitters the whole batch)"}

def host_syncs(dev, steps=40, log_every=10, batch=8):
    """Reads of tensor values on the host (each a device sync on a GPU) per training step, by call site, and the wall time
    per step of a tiny model (mnist_net, `batch` images: Python and dispatch, not arithmetic), reading the loss every step
    (`log_every=1`) and every `log_every` steps. On a CPU the reads cost nothing: the counts say where a GPU would wait."""
    import collections, tempfile, traceback
    from bioss_nb.train import Trainer, get_config
    def trainer(le, d, preset='tiny'):
        cfg = get_config(preset, n_train=steps * batch, batch_size=batch, epochs=3, log_every=le, monitor_every=0,
                         progress=False, device=dev.type, out=d)
        return Trainer(cfg)
    def count(preset, d):
        "Reads per step over `steps` steps of the second epoch, by call site."
        tr = trainer(log_every, d, preset)
        tr.fit(stop_after=steps)                              # epoch 0: warm-up
        sites, orig = collections.Counter(), {m: getattr(torch.Tensor, m) for m in _SYNC_METHODS}
        def wrap(m):
            def f(self, *a, **k):
                if dev.type == 'cpu' or self.device.type != 'cpu':      # on a GPU, only reads of device tensors wait
                    st = traceback.extract_stack(limit=8)[:-1]
                    ours = [x for x in st if 'bioss_nb' in x.filename]
                    at = ours[-1] if ours and ours[-1] is st[-1] else st[-1]
                    where = f"{Path(at.filename).parent.name}/{Path(at.filename).name}:{at.lineno} ({at.name})"
                    sites[f"{m} at {where}" + (f" from {Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours and at is not ours[-1] else '')] += 1
                return orig[m](self, *a, **k)
            return f
        for m in _SYNC_METHODS: setattr(torch.Tensor, m, wrap(m))
        try: tr.fit(stop_after=steps)                         # epoch 1, counted (its end and checkpoint included)
        finally:
            for m, f in orig.items(): setattr(torch.Tensor, m, f)
        return {k: round(v / steps, 3) for k, v in sorted(sites.items(), key=lambda kv: -kv[1])}
    out = {}
    with tempfile.TemporaryDirectory() as d:
        out['per_step'] = count('tiny', f'{d}/count')                         # the affine views
        out['per_step_stl10'] = count('stl10-tiny', f'{d}/count-stl10')       # the crops and the few-negatives hinge (STL10 path)
        out['steps'], out['log_every'] = steps, log_every
        if dev.type == 'cpu':                                  # which of them a GPU would not wait for
            out['cpu_only'] = {k: why for r in (out['per_step'], out['per_step_stl10']) for k in r
                               for f, why in _CPU_ONLY_READS.items() if f'({f})' in k}
        for le in (1, log_every):
            tr = trainer(le, f'{d}/time{le}')
            tr.fit(stop_after=steps)
            t = time.perf_counter(); tr.fit(stop_after=steps); sync(dev)
            out[f'ms_per_step_log_every_{le}'] = (time.perf_counter() - t) / steps * 1e3
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', default='cpu'); ap.add_argument('--reps', type=int, default=7)
    ap.add_argument('--only', default='', help='comma-separated cases or groups; their results replace those already in --out')
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'results'))
    ap.add_argument('--no-mem', action='store_true'); ap.add_argument('--no-tiny', action='store_true')
    ap.add_argument('--mem-child', nargs=2)
    ap.add_argument('--md-only', action='store_true', help='rewrite the markdown table from the stored json')
    a = ap.parse_args(argv)
    if a.mem_child: return mem_child(*a.mem_child, a.device)
    if a.md_only: return write_md(json.loads((Path(a.out) / f'{a.device}.json').read_text()), Path(a.out), a.device)
    dev = torch.device(a.device)
    only = set(a.only.split(',')) - {''}
    want = lambda k: not only or k in only or k.split('_')[0] in only
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    command = 'python bench/run.py ' + ' '.join(argv if argv is not None else sys.argv[1:])
    res = dict(machine=machine(dev), device=a.device, commands=[])
    if only and (out / f'{a.device}.json').exists():            # a partial run updates the stored results
        res = {**json.loads((out / f'{a.device}.json').read_text()), 'machine': machine(dev)}
    t0 = time.time()
    say = lambda key: print(table_rows({**({'ssl_epoch fp32': res['ssl_epoch fp32']} if key.startswith('ssl') else {}), key: res[key]})[-1], flush=True)

    for case in CASES:
        if not want(case): continue
        if case in KORNIA_CASES:
            try: import kornia
            except ImportError: print(f'{case} skipped: kornia is not installed (pip install -e ".[bench]")'); continue
        f = SETUPS[case](dev)
        r = compare(f['baseline'], f['ours'], dev, reps=a.reps)
        if not a.no_mem and case != 'data':
            r['base_mb'], r['ours_mb'] = mem(case, 'baseline', a.device), mem(case, 'ours', a.device)
        if case in KORNIA_CASES: r['kornia'] = kornia.__version__
        res[case] = r; say(case)

    if want('rules'):
        f = SETUPS['rules'](dev)
        for _ in range(2): [fn() for fn in f.values()]
        ts = {k: [] for k in f}
        for _ in range(a.reps):
            for k, fn in f.items(): ts[k].append(timeit(fn, dev))
        for k in RULE_CASES:
            r = [t / b for t, b in zip(ts[k], ts['bp'])]
            res[f'rule_{k}'] = dict(bp_s=statistics.median(ts['bp']), rule_s=statistics.median(ts[k]),
                                    ratio=statistics.median(r), ratio_min=min(r), ratio_max=max(r))
            say(f'rule_{k}')
    if want('dtp'):
        try:
            f = SETUPS['dtp'](dev)
            res['dtp'] = compare(f['dtp'], f['bp'], dev, reps=a.reps)   # ratio = dtp time / bp time
            say('dtp')
        except Exception as e: print('dtp skipped:', repr(e))
    if want('ssl'):
        for name, kw in SSL_VARIANTS:
            try: res[f'ssl_epoch {name}'] = ssl_epoch_seconds(dev, **kw)
            except Exception as e: print(f'ssl {name} skipped:', repr(e)[:300]); continue
            say(f'ssl_epoch {name}')
    if want('ddp'):
        res['ddp'] = ddp_epoch(dev); say('ddp')
    if want('jobs'):
        res['jobs'] = jobs_wall(dev); say('jobs')
    if want('syncs'):
        res['syncs'] = host_syncs(dev); say('syncs')
    if want('accuracy') and only:                       # about 10 minutes on two cores: only when asked by name
        res['accuracy'] = precision_accuracy(dev); say('accuracy')
    if want('tiny') and not a.no_tiny:
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            # its own process, which resets its peak RSS first: a forked child otherwise inherits this process's peak
            code = ("import sys; open('/proc/self/clear_refs', 'w').write('5'); from bioss_nb.cli import main; main(sys.argv[1:]); "
                    "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
            t = time.perf_counter()
            p = subprocess.run([sys.executable, '-c', code, 'train', '--preset', 'tiny', '--out', d, '--device', a.device,
                                '--progress', 'false'], capture_output=True, text=True)
            wall = time.perf_counter() - t
        if p.returncode == 0:
            res['tiny'] = dict(wall_s=wall, peak_rss_mb=int(p.stdout.strip().splitlines()[-1]) / 1024); say('tiny')
        else: print('tiny preset failed:', p.stderr[-1500:])

    res['commands'] = [*res['commands'], f'{command} ({time.time() - t0:.0f} s)']
    (out / f'{a.device}.json').write_text(json.dumps(res, indent=1))
    write_md(res, out, a.device)


def write_md(res, out, device):
    md = [f"Machine: {res['machine']}.  ", 'Commands: ' + '; '.join(f'`{c.rsplit(" (", 1)[0]}` ({c.rsplit(" (", 1)[1]}' for c in res['commands']) + '.', '',
          '| case | baseline | ours | ratio: median (min-max) | peak memory baseline / ours |', '|---|---|---|---|---|', *table_rows(res)]
    (out / f'{device}.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))


if __name__ == '__main__':
    main()
