"""Reproduce the shape of Ott et al. (2016)'s table: test BPC of a char-level GRU and LSTM with
float, binary, ternary (deterministic and stochastic), pow2-ternary and exponential weights.

Every run gets the same budget (training steps, hidden size, learning rate, seed); the table is
printed and written to the '## Paper table' section of docs/benchmarks.md.

Usage::

    python bench/paper_table.py                    # built-in corpus, default budget (~10 min)
    python bench/paper_table.py --budget 4         # four times the training steps
    python bench/paper_table.py --corpus ptb.char.train.txt --valid ptb.char.valid.txt \
        --test ptb.char.test.txt --no-write
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from train import data as D  # noqa: E402

#: (label, method, stochastic, method params) rows of the table, in the paper's order.
ROWS = [
    ("float (baseline)", "float", False, {}),
    ("binary (det)", "binary", False, {}),
    ("ternary (det)", "ternary", False, {}),
    ("ternary (stoch)", "ternary", True, {}),
    ("pow2-ternary", "pow2-ternary", False, {}),
    ("exponential (det)", "exponential", False, {}),
]
#: Extra rows (--scale-rows): the same quantizer with a larger scale than the Glorot default.
SCALE_ROWS = [
    ("ternary (det), W0=0.3", "ternary", False, {"W0": 0.3}),
]
SECTION = "## Paper table"
#: Training steps of one run at --budget 1.
BASE_STEPS = 600


def plan_epochs(steps: int, batches_per_epoch: int) -> tuple[int, int | None]:
    """Epochs and per-epoch batch cap that give ``steps`` training steps (about)."""
    if batches_per_epoch >= steps:
        return 1, steps
    return max(1, round(steps / batches_per_epoch)), None


def run_one(job: dict) -> dict:
    """Train one (cell, method) configuration; returns its test BPC (trainer and golden int)."""
    from train.trainer import TrainConfig, Trainer

    corpus = job["corpus"]
    cfg = TrainConfig(**job["config"])
    t0 = time.perf_counter()
    tr = Trainer(cfg, task="lm", corpus=corpus)
    log = tr.run()
    out = {"cell": cfg.cell, "label": job["label"], "epoch": log.final["selected_epoch"],
           "test_bpc": log.final["test_bpc"], "valid_bpc": log.epochs[-1]["valid_bpc"],
           "train_bpc": log.epochs[-1]["train_bpc"], "steps": tr.step, "int_bpc": None}
    if cfg.method != "float":
        out["int_bpc"] = D.golden_bpc(tr.export(), corpus.test, "int")
    out["seconds"] = time.perf_counter() - t0
    return out


def verdicts(results: dict, cells) -> list[str]:
    """Plain statements of what the numbers show, with the criteria spelled out."""
    lines = []
    for cell in cells:
        f = results.get((cell, ROWS[0][0]))
        if f is None:
            continue
        fb = f["test_bpc"]
        for label, *_ in ROWS[1:] + SCALE_ROWS:
            r = results.get((cell, label))
            if r is None:
                continue
            d = r["test_bpc"] - fb
            state = ("fails" if d > 0.5 else "is clearly worse" if d > 0.1 else
                     "is slightly worse" if d > 0.02 else "matches float" if d >= -0.02 else
                     "beats float")
            lines.append(f"- {cell.upper()} {label} {state}: {r['test_bpc']:.3f} vs float "
                         f"{fb:.3f} ({d:+.3f} BPC).")
    return lines


def render(results: dict, cells, meta: dict) -> str:
    head = "| weights |" + "".join(f" {c.upper()} test BPC | {c.upper()} int path |"
                                   for c in cells)
    sep = "|---|" + "---:|---:|" * len(cells)
    rows = [head, sep]
    for label, *_ in ROWS + SCALE_ROWS:
        cols = []
        for c in cells:
            r = results.get((c, label))
            if r is None:
                cols += ["", ""]
                continue
            cols.append(f"{r['test_bpc']:.3f}")
            cols.append("n/a (no hardware form)" if r["int_bpc"] is None else
                        f"{r['int_bpc']:.3f}")
        if any(cols):
            rows.append(f"| {label} | " + " | ".join(cols) + " |")
    text = [
        f"Corpus: {meta['corpus']}. Budget {meta['budget']:g}: {meta['steps']} training steps "
        f"per run ({meta['epochs']} epoch(s)), batch {meta['batch']} x {meta['seq_len']} "
        f"characters, hidden {meta['hidden']}, 1 layer, Adam lr {meta['lr']:g} with cosine decay, "
        f"nonlinearity '{meta['nonlinearity']}', seed {meta['seed']}, "
        f"{'with' if meta['fake_quant'] else 'no'} activation fake-quantization. "
        f"{meta['runs']} runs took {meta['wall']:.0f} s on {meta['jobs']} worker(s) "
        f"({meta['cores']} cores, 1-minute load average {meta['load']:.1f} at the start).",
        "",
        "Test BPC is the trainer's own evaluation (deterministic quantized weights, float "
        f"activations, as in the paper) of {meta['selection']}; 'int path' is the exported "
        "golden model's "
        "bit-accurate integer path (what the hardware computes) on the same text. Binary H and "
        "ternary W0 are the Glorot bound of each tensor (the DESIGN.md default) unless the row "
        "names another scale.",
        "",
        *rows,
        "",
        "What the numbers show (criteria, in BPC against float: 'fails' > +0.5, 'clearly "
        "worse' > +0.1, 'slightly worse' > +0.02, 'matches' within 0.02, 'beats' < -0.02):",
        "",
        *verdicts(results, cells),
    ]
    return "\n".join(text) + "\n"


def write_section(path: Path, body: str, append: bool = False) -> None:
    """Replace the '## Paper table' section of a markdown file (or add to its end)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{SECTION}\n\n{body}"
    pat = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    found = pat.search(text)
    if found and append:
        block = found.group(0).rstrip("\n") + "\n\n" + body
    if found:
        text = pat.sub(lambda _: block + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text.rstrip("\n") + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", help="text file (default: the built-in corpus)")
    ap.add_argument("--corpus-format", choices=("auto", "plain", "ptb"), default="auto")
    ap.add_argument("--valid", help="separate validation file (with --test)")
    ap.add_argument("--test", help="separate test file (with --valid)")
    ap.add_argument("--budget", type=float, default=1.0,
                    help=f"scale of the training budget ({BASE_STEPS} steps per run at 1)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nonlinearity", default="exact", choices=("exact", "hard", "plan", "lut"))
    ap.add_argument("--fake-quant", action="store_true")
    ap.add_argument("--keep-last", action="store_true",
                    help="test the last epoch's weights instead of the best validated ones")
    ap.add_argument("--no-scale-rows", dest="scale_rows", action="store_false",
                    help="skip the extra rows with a larger ternary scale")
    ap.add_argument("--cells", nargs="+", default=["gru", "lstm"], choices=("rnn", "gru", "lstm"))
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="parallel training processes (one torch thread each)")
    ap.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--append", action="store_true",
                    help="add this table below the section's current content (a second budget "
                         "or corpus) instead of replacing it")
    args = ap.parse_args(argv)
    if args.budget <= 0:
        ap.error("--budget must be > 0")

    corpus = D.load_corpus(args.corpus, fmt=args.corpus_format, valid=args.valid,
                           test=args.test)
    steps = max(1, round(BASE_STEPS * args.budget))
    streams = max(1, min(args.batch, (len(corpus.train) - 1) // (2 * args.seq_len)))
    bpe = math.ceil(((len(corpus.train) - 1) // streams) / args.seq_len)
    epochs, max_batches = plan_epochs(steps, bpe)
    eval_every = max(1, epochs // 10)
    jobs = []
    for cell in args.cells:
        for label, m, s, params in ROWS + (SCALE_ROWS if args.scale_rows else []):
            cfg = dict(cell=cell, method=m, stochastic=s, method_params=params,
                       hidden=args.hidden, epochs=epochs,
                       batch=args.batch, seq_len=args.seq_len, lr=args.lr, seed=args.seed,
                       nonlinearity=args.nonlinearity, fake_quant=args.fake_quant,
                       max_batches=max_batches, eval_every=eval_every,
                       keep_best=not args.keep_last, threads=1)
            jobs.append({"config": cfg, "corpus": corpus, "label": label})
    print(f"{corpus.describe()}\n{len(jobs)} runs x {epochs} epoch(s) "
          f"(~{min(bpe, max_batches or bpe) * epochs} steps each) on {args.jobs} worker(s)",
          flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    t0 = time.perf_counter()
    results = {}
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.jobs) as pool:
        for r in pool.imap_unordered(run_one, jobs):
            results[(r["cell"], r["label"])] = r
            ib = "" if r["int_bpc"] is None else f", int path {r['int_bpc']:.3f}"
            print(f"  {r['cell']} {r['label']}: test {r['test_bpc']:.3f}{ib} "
                  f"(epoch {r['epoch']}, {r['seconds']:.0f} s)", flush=True)
    wall = time.perf_counter() - t0
    source = "built-in corpus (train/corpus.txt)" if corpus.source == "<builtin>" else \
        corpus.source
    meta = dict(corpus=f"{source}, {corpus.describe().split(': ', 1)[1]}",
                budget=args.budget, steps=next(iter(results.values()))["steps"], epochs=epochs,
                batch=args.batch, seq_len=args.seq_len, hidden=args.hidden, lr=args.lr,
                nonlinearity=args.nonlinearity, seed=args.seed, fake_quant=args.fake_quant,
                runs=len(jobs), wall=wall, jobs=args.jobs, cores=os.cpu_count(), load=load,
                selection="the last epoch's weights" if args.keep_last else
                f"the weights of the epoch with the best validation BPC (validated every "
                f"{eval_every} epochs)")
    body = render(results, args.cells, meta)
    print()
    print(body)
    if not args.no_write:
        if args.append:
            body = f"### Budget {args.budget:g}, {', '.join(args.cells).upper()}\n\n{body}"
        write_section(Path(args.docs), body, append=args.append)
        print(f"wrote the '{SECTION[3:]}' section of {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
