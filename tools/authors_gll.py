"""Train the authors' own CONV6 code greedily layer by layer (GLL, BP) on our `digits` images, then score it with our linear probe.

Does the authors' code, run on our protocol, also end below its own untrained encoder on perturbed digits (as our GLL BP row does)?
Their code (https://github.com/C16Mftang/biological-SSL) is imported from a local copy, `--code`, and run unchanged on the CPU:

    git clone https://github.com/C16Mftang/biological-SSL ../biological-SSL
    .venv/bin/python tools/authors_gll.py --code ../biological-SSL --seed 0 --threads 1 --out runs/authors_gll/seed0.json

Seed 0 took 49 minutes on one thread of a 2-core CPU that ran two other jobs.

What runs, and whose it is:
- theirs: `setup_net(pars)` (models.py) builds CONV6, its five 64-unit heads and the (unused) classifiers; `train_model` (utils.py)
  trains one block at a time with a fresh Adam, their `HingeNNFewerNegs` loss (loss.py) and their `deform_data` (utils.py) on both
  views. PARS is set as their trainer.py's `__main__` sets it for CIFAR (CONV6, HingeNNFewerNegs, thr1=2, thr2=1, n_negs=5,
  distort=3, grad_block on), with process='GLL' and our batch size 500, lr 1e-4 and `--epochs` per block. The loop over the
  blocks is the GLL branch of their `trainer.main` (loadnet None, loss not CLAPP): block i and head i train on top of the frozen
  blocks < i. That branch's per-block classifier training is left out: it trains only `classifier[i]`, never the network, and our
  probe replaces it. Their `main` itself is not called because it reads CIFAR from disk.
- ours: the images, exactly the SSL set of `get_config('digits')` (the 4,000-digit 'train' split of mnist5k, padded to 3x32x32 by
  `to_rgb32`), fed as their CIFAR loaders feed theirs: a DataLoader of (images, labels), batch 500, shuffled, floats in [0, 1]
  (their loaders apply only ToTensor, no normalisation); and the probe: the flattened output of their whole network (what
  their `classify_whole_net` classifier reads, 512x4x4 = 8192 numbers) under our `linear_probe` with the digits preset's
  settings, on clean and on perturbed test digits, for the trained network and for its untrained copy (same seed, taken
  before training).
- patched: nothing. Their code runs on the CPU through `pars.device = 'cpu'`; their checkpoints go to a temporary folder.

Differences from our GLL BP row that remain (none of them changes the algorithm):
- random streams: their code draws initial weights, batch order and deformations from the global torch RNG, and `setup_net`
  also initialises the unused 10-way classifiers between the blocks; so a seed gives other weights, batches and views than
  ours. Weight initialisation is PyTorch's default in both.
- deformation: theirs also changes saturation (x 2^U(-2, 2)) and hue (+ U(-0.1, 0.1)) in HSV, which our digits preset turns off
  (s = h = 0). On grey digits (R = G = B) saturation is 0, so their colour step is a no-op up to float rounding (measured:
  at most 6e-8). The affine map (half the batch, u ~ U(-0.25, 0.25), shifts doubled, zero padding) and the flip (p = 1/2)
  are drawn as ours are.
- their loader keeps a last partial batch (ours drops it); with 4,000 digits and batch 500 there is none. Their loss builds its
  mask for exactly `batch_size` rows, so the image count must be a multiple of it.
- the loss per epoch they report is the mean over batches of the batch's summed loss, as printed by their `train_model`.
- their network is never put in eval mode while training the upper blocks; CONV6 has no dropout or batch norm, so that is moot.

The JSON (`--out`) holds the seed, epochs, seconds, both probes' clean/perturbed/train accuracies, their PARS fields, our preset's
matching fields, and each block's mean loss per epoch and training seconds.
"""
import argparse, copy, hashlib, importlib, json, random, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
from torch import nn
from bioss_nb.config import get_config
from bioss_nb.core import to_float
from bioss_nb.data import load_dataset, ssl_split
from bioss_nb.evaluate import probe_data, linear_probe
from bioss_nb.train import prepare_images

AUTHORS = 'https://github.com/C16Mftang/biological-SSL'
THEIRS = {'pars.py': 'class PARS', 'models.py': 'def setup_net', 'utils.py': 'def train_model',   # file -> a line it must hold
          'loss.py': 'class HingeNNFewerNegs', 'layers.py': 'class FAConv2d'}


class BadInput(Exception):
    "A problem with the command line or the --code folder, reported in one line."


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--code', required=True, type=Path, help=f"a local clone of {AUTHORS}")
    ap.add_argument('--seed', type=int, default=0, help="seeds torch, numpy and random (and our probe)")
    ap.add_argument('--epochs', type=int, default=20, help="epochs per block")
    ap.add_argument('--out', required=True, type=Path, help="the JSON file to write")
    ap.add_argument('--threads', type=int, default=None, help="torch CPU threads (default: torch's choice)")
    a = ap.parse_args(argv)
    if a.seed < 0: raise BadInput(f"--seed {a.seed} must be >= 0")
    if a.epochs < 1: raise BadInput(f"--epochs {a.epochs} must be >= 1")
    if a.threads is not None and a.threads < 1: raise BadInput(f"--threads {a.threads} must be >= 1")
    return a


def check_out(out:Path) -> Path:
    "The --out path, its folder made now: a bad path fails before hours of training, not after."
    if out.is_dir(): raise BadInput(f"--out {out} is a folder; give a JSON file name")
    try: out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e: raise BadInput(f"--out {out}: cannot make its folder ({e.strerror})")
    return out


def load_authors(code:Path) -> dict:
    "Their modules pars, models and utils, imported from `code` after checking it holds their files."
    code = code.expanduser().resolve()
    if not code.is_dir(): raise BadInput(f"--code {code} is not a folder; give a local clone of {AUTHORS}")
    if (code / 'HEAD').is_file() and (code / 'objects').is_dir():        # a bare repository has no files to import
        raise BadInput(f"--code {code} is a bare git repository; check it out first: git -C {code} archive HEAD | tar -x -C DIR")
    for f, line in THEIRS.items():
        p = code / f
        if not p.is_file(): raise BadInput(f"--code {code} is not a clone of {AUTHORS}: it has no {f}")
        if line not in p.read_text(errors='replace'): raise BadInput(f"--code {code} is not a clone of {AUTHORS}: {f} has no {line!r}")
    taken = [m for m in ('pars', 'models', 'utils', 'loss', 'layers') if m in sys.modules]   # their names are generic
    if taken: raise BadInput(f"modules {taken} are already imported from elsewhere; their code could not be told apart")
    sys.path.insert(0, str(code))
    try: mods = {m: importlib.import_module(m) for m in ('pars', 'models', 'utils')}
    except ImportError as e: raise BadInput(f"cannot import the authors' code from {code}: {e}")
    for m in mods.values():
        if Path(m.__file__).resolve().parent != code: raise BadInput(f"{m.__name__} was imported from {m.__file__}, not from {code}")
    return mods


def provenance(code:Path) -> dict:
    "Which copy of their code ran: the git commit (when --code is a clone) and the SHA-256 of the files used."
    r = subprocess.run(['git', '-C', str(code), 'rev-parse', 'HEAD'], capture_output=True, text=True)
    sha = {f: hashlib.sha256((code / f).read_bytes()).hexdigest()[:16] for f in THEIRS}
    return dict(path=str(code.resolve()), commit=r.stdout.strip() if r.returncode == 0 else None, sha256=sha)


def ssl_loader(cfg, batch_size:int):
    "Our digits preset's SSL images (as `Trainer` loads them) as their CIFAR loaders give theirs: (images in [0, 1], labels), shuffled."
    x, y = load_dataset(cfg.data, ssl_split(cfg.data), subset=cfg.ssl_subset)
    if cfg.n_train: x, y = x[:cfg.n_train], y[:cfg.n_train]
    x = to_float(prepare_images(cfg, x))            # uint8 / 255, as their ToTensor()
    if len(x) % batch_size: raise BadInput(f"{len(x)} images do not split into batches of {batch_size}: their loss needs full batches")
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True)


def authors_pars(PARS, cfg, epochs:int, n_train:int, tmp:str):
    "Their PARS as their trainer.py `__main__` sets it for CIFAR, with GLL and our batch size, lr and epochs per block."
    p = PARS('cpu', tmp, tmp)                   # device, datapath, savepath: the CPU; their checkpoints go to `tmp`
    p.process, p.update, p.architecture = 'GLL', 'BP', 'CONV6'
    p.gaze_shift = False
    p.loss, p.thr1, p.thr2, p.n_negs = 'HingeNNFewerNegs', 2., 1., 5
    p.dataset, p.clf_dataset = 'cifar100', 'cifar10'   # names only (10 classes for the unused classifiers); the images are ours
    p.distort = 3                               # their deform_data on both views
    p.batch_size, p.LR, p.epochs = cfg.batch_size, cfg.lr, epochs
    p.num_train = n_train                       # read only by their progress bar here
    p.classify_whole_net = True                 # the readout is of the whole network, as our probe of the last block
    p.expdir = tmp
    return p                                    # their defaults stay: Adam, headsize 64, grad_block True, unsupervised, log_every 20


def train_gll(net, head, pars, loader, train_model) -> tuple:
    "Their GLL loop (trainer.main, loadnet None): block i + head i trained by their train_model over the frozen blocks < i."
    losses, seconds = [], []
    for i in range(pars.NUM_LAYER):
        fix, model = net[:i], nn.Sequential(net[i], head[i])
        pars.train_unsupervised = True
        ep_loss, t0 = [], time.time()
        train_model(loader, None, fix, model, pars, ep_loss, None, pars.expdir, current_layer=i)
        losses.append(ep_loss); seconds.append(time.time() - t0)
    return losses, seconds


@torch.no_grad()
def net_features(net:nn.Module, x:torch.Tensor, batch_size:int=1000) -> torch.Tensor:
    "Their whole network's output, flattened (their classify_whole_net input), computed as our `features`: eval mode, `to_float`, 1000 at a time."
    was = net.training; net.eval()
    out = torch.cat([net(to_float(x[i:i + batch_size])).flatten(1) for i in range(0, len(x), batch_size)])
    net.train(was)
    return out


def probe_net(net:nn.Module, cfg) -> dict:
    "Our linear probe of their network's output, with the preset's probe settings, as our `probe` runs it."
    d = probe_data(cfg)
    ftr, fte, fpe = (net_features(net, d[k]) for k in ('x_train', 'x_test', 'x_perturbed'))
    r = linear_probe(ftr, d['y_train'], dict(clean=(fte, d['y_test']), perturbed=(fpe, d['y_test'])), epochs=cfg.probe_epochs,
                     lr=cfg.probe_lr, batch_size=cfg.probe_batch, seed=cfg.seed, norm=cfg.probe_norm)
    return dict(clean=r['clean'], perturbed=r['perturbed'], train=r['train'], dim=ftr.shape[1])


def seed_all(seed:int):
    random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)


def main(argv=None) -> dict:
    t0 = time.time()
    a = parse_args(argv)
    out = check_out(a.out)
    mods = load_authors(a.code)
    if a.threads: torch.set_num_threads(a.threads)
    cfg = get_config('digits', schedule='gll', rule='bp', seed=a.seed)
    seed_all(a.seed)
    loader = ssl_loader(cfg, cfg.batch_size)
    with tempfile.TemporaryDirectory(prefix='authors_gll_') as tmp:
        pars = authors_pars(mods['pars'].PARS, cfg, a.epochs, len(loader.dataset), tmp)
        net, _, head = mods['models'].setup_net(pars)        # as trainer.main: seed, loaders, then setup_net
        untrained = copy.deepcopy(net)
        losses, stage_s = train_gll(net, head, pars, loader, mods['utils'].train_model)
    trained, random_ = probe_net(net, cfg), probe_net(untrained, cfg)
    settings = {k: v for k, v in vars(pars).items() if k not in ('datapath', 'savepath', 'expdir', 'loadclf')}
    res = dict(seed=a.seed, epochs=a.epochs, seconds=time.time() - t0, trained=trained, untrained=random_,
               settings=settings, deform="their deform_data(x, 0.5, ['aff'], 4, 0.2, False) on each view (distort=3)",
               ours={k: getattr(cfg, k) for k in ('data', 'to_rgb32', 'encoder', 'head_dim', 'tau', 'delta', 'n_negs', 'grad_block',
                                                  'lr', 'batch_size', 'p', 's', 'h', 'flip', 'affine_frac', 'probe_epochs',
                                                  'probe_lr', 'probe_batch', 'probe_norm', 'perturb_rot', 'perturb_shift',
                                                  'perturb_scale', 'perturb_seed')},
               n_train=len(loader.dataset), batches_per_epoch=len(loader), threads=torch.get_num_threads(),
               stage_losses=losses, stage_seconds=stage_s, code=provenance(Path(a.code).expanduser()), torch=torch.__version__)
    out.write_text(json.dumps(res, indent=1))
    print(f"their GLL: clean {trained['clean']:.4f}, perturbed {trained['perturbed']:.4f}; untrained: clean {random_['clean']:.4f}, "
          f"perturbed {random_['perturbed']:.4f}; {out}")
    return res


if __name__ == '__main__':
    try: main()
    except BadInput as e: sys.exit(f"authors_gll.py: {e}")
