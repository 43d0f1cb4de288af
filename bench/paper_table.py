"""Ott et al. (2016)'s table on a real corpus: test BPC of a char-level GRU and LSTM with float,
binary, ternary (deterministic and stochastic), pow2-ternary and exponential weights, trained
with the authors' recipe (``paper``), with it and trained per-gate scales (``learned``) and
with shiftrnn's ``accurate`` recipes, at one budget; the float networks also at 2x and 4x the
base learning rate, since the best rate differs between float and quantized weights.

Every run gets the same budget (training steps, hidden size, base learning rate, seed) and is
tested on the weights of its best validated epoch; the ``learned`` rows also run at more seeds
(``--seeds``), and their means against the float network's mean get a table of their own.
Each row reports the trainer's test BPC, the exported golden model's integer-path BPC (what the
hardware computes), the integer path over long streams (256, 4096 and 32768 characters from the
zero state), and for the GRU models of the recipes the generator builds (``paper``, ``learned``,
``accurate-matrix``) the RTL's BPC (``sim.simulate`` on a slice of the test text; the same
slice's golden number beside it). The table is printed and written to the '## Paper table'
section of docs/benchmarks.md.

Usage::

    apt-get install bible-kjv                          # the corpus (King James Bible, 4 MB)
    python bench/paper_table.py --corpus kjv --chars 1150000
    python bench/paper_table.py --corpus ptb.char.train.txt --valid ... --test ... --no-write
    python bench/paper_table.py --quick                # built-in corpus, tiny budget (a test)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "bench"):  # the project, and benchdoc beside this script
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import benchdoc  # noqa: E402

from train import data as D  # noqa: E402

SECTION = "## Paper table"
#: Wider activation formats (the float rows that price the default 8-bit formats).
WIDE_FORMATS = {
    "wide": {"x": (12, 8), "h": (16, 12), "c": (16, 10), "pre": (16, 10), "gate": (12, 11),
             "act": (12, 10), "out": (16, 8)},
    "h12": {"h": (12, 10), "gate": (10, 9), "act": (10, 8)},
}
#: (label, method, stochastic, recipe, extra TrainConfig fields, cells or None (all), rtl: the
#: row's model of the first cell also runs on the RTL: the paper, learned and accurate-matrix
#: recipes, whose models the generator builds)
ROWS = [
    ("float", "float", False, "classic", {}, None, False),
    ("float, lr x4", "float", False, "classic", {"lr_mult": 4}, ("gru",), False),
    ("float, float activations", "float", False, "classic", {"fake_quant": False}, ("gru",),
     False),
    ("float, formats 'h12'", "float", False, "classic", {"formats": "h12"}, ("gru",), False),
    ("float, formats 'wide'", "float", False, "classic", {"formats": "wide"}, ("gru",), False),
    ("paper: float", "float", False, "paper", {}, None, False),
    ("paper: float, lr x2", "float", False, "paper", {"lr_mult": 2}, None, False),
    ("paper: float, lr x4", "float", False, "paper", {"lr_mult": 4}, None, False),
    ("paper: binary", "binary", False, "paper", {}, None, True),
    ("paper: ternary", "ternary", False, "paper", {}, None, True),
    ("paper: ternary (stoch)", "ternary", True, "paper", {}, None, True),
    ("paper: pow2-ternary", "pow2-ternary", False, "paper", {}, None, True),
    ("paper: exponential", "exponential", False, "paper", {}, None, True),
    ("learned: float", "float", False, "learned", {}, None, False),
    ("learned: float, lr x2", "float", False, "learned", {"lr_mult": 2}, None, False),
    ("learned: float, lr x4", "float", False, "learned", {"lr_mult": 4}, None, False),
    ("learned: binary", "binary", False, "learned", {}, None, True),
    ("learned: ternary", "ternary", False, "learned", {}, None, True),
    ("learned: pow2-ternary", "pow2-ternary", False, "learned", {}, None, True),
    ("learned: exponential", "exponential", False, "learned", {}, None, True),
    ("accurate: float", "float", False, "accurate", {}, None, False),
    ("accurate: binary", "binary", False, "accurate", {}, None, False),
    ("accurate: ternary", "ternary", False, "accurate", {}, None, False),
    ("accurate: ternary (stoch)", "ternary", True, "accurate", {}, None, False),
    ("accurate: pow2-ternary", "pow2-ternary", False, "accurate", {}, None, False),
    ("accurate: exponential", "exponential", False, "accurate", {}, None, False),
    ("accurate-matrix: binary", "binary", False, "accurate-matrix", {}, ("gru",), True),
    ("accurate-matrix: ternary", "ternary", False, "accurate-matrix", {}, None, True),
    ("accurate-matrix: pow2-ternary", "pow2-ternary", False, "accurate-matrix", {}, ("gru",),
     True),
    ("accurate-matrix: exponential", "exponential", False, "accurate-matrix", {}, ("gru",),
     True),
    ("classic: ternary (stoch)", "ternary", True, "classic", {}, ("gru",), False),
]
#: The recipe whose rows (its float network at the base learning rate and its quantized
#: networks) also run at more seeds (``--seeds``): the one the accuracy target is about.
SEEDED_RECIPE = "learned"
#: Stream lengths of the long-stream columns (characters from the zero state).
STREAMS = (256, 4096, 32768)
#: RTL slice: this many streams of 256 characters from the start of the test text.
RTL_STREAMS = 8


def kjv_corpus(chars: int | None) -> Path:
    """The King James Bible as plain text (one verse per line, no verse numbers), made from
    Debian's ``bible-kjv`` package (``apt-get install bible-kjv``) and cached."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shiftrnn"
    full = cache / "corpora" / "kjv.txt"
    if not full.is_file():
        if shutil.which("bible") is None:
            sys.exit("the 'bible' program is missing: apt-get install bible-kjv")
        raw = subprocess.run(["bible", "gen1:1-rev22:21"], capture_output=True, text=True,
                             check=True, cwd=tempfile.gettempdir()).stdout
        verses, cur = [], None
        for line in raw.splitlines():
            m = re.match(r"^\s+\d+ (.*)$", line)  # a verse: '  12 text'
            if m or re.match(r"^([1-3] )?[A-Z][A-Za-z ]+ \d+$", line):  # or 'Genesis 1'
                if cur:
                    verses.append(cur)
                cur = m.group(1).strip() if m else None
            elif line.strip():  # a verse's continuation line
                cur = f"{cur} {line.strip()}" if cur else line.strip()
        if cur:
            verses.append(cur)
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text("\n".join(verses) + "\n")
    if chars is None:
        return full
    part = full.with_name(f"kjv-{chars}.txt")
    if not part.is_file():
        part.write_text(full.read_text()[:chars])
    return part


def wide_formats(name: str | None) -> dict | None:
    """The activation formats :data:`WIDE_FORMATS` names (None: the defaults)."""
    import golden

    if name is None:
        return None
    return {k: golden.Fixed(b, f, signed=k != "gate") for k, (b, f) in WIDE_FORMATS[name].items()}


def long_streams(model_or_net, tokens) -> list[float]:
    """Integer-path (trainer: its own) BPC over :data:`STREAMS` on the same text."""
    from train.trainer import bpc

    n = STREAMS[-1]
    if len(tokens) < n + 1:
        return [None] * len(STREAMS)
    text = tokens[:n + 1]
    mode = "int" if not hasattr(model_or_net, "named_parameters") else "quant"
    return [bpc(model_or_net, text, mode, streams=n // s) for s in STREAMS]


def run_one(job: dict) -> dict:
    """Train one row; test it (trainer, golden integer path, long streams); save its model."""
    import torch

    from train.trainer import TrainConfig, Trainer

    torch.set_num_threads(1)
    corpus = job["corpus"]
    kw = dict(job["config"])
    kw["lr"] = kw["lr"] * kw.pop("lr_mult", 1)
    fmts = wide_formats(kw.pop("formats", None))
    t0 = time.perf_counter()
    tr = Trainer(TrainConfig(**kw), task="lm", corpus=corpus)
    if fmts:
        tr.net.formats.update(fmts)
    log = tr.run()
    out = {"cell": kw["cell"], "label": job["label"], "epoch": log.final["selected_epoch"],
           "test_bpc": log.final["test_bpc"], "steps": tr.step, "int_bpc": None,
           "valid": [r["valid_bpc"] for r in log.epochs], "model": None}
    if kw["method"] == "float":
        out["streams"] = long_streams(tr.net, corpus.test)
    else:
        model = tr.export()
        out["int_bpc"] = D.golden_bpc(model, corpus.test, "int")
        out["streams"] = long_streams(model, corpus.test)
        path = Path(job["models"]) / f"{kw['cell']}-{job['label'].replace(' ', '_')}.npz"
        model.save(path, force=True)
        out["model"] = str(path)
    out["seconds"] = time.perf_counter() - t0
    return out


def rtl_bpc(model_path: str, tokens, lanes: int) -> dict:
    """Generate the design, run the test slice through its RTL (fast path), BPC of both."""
    import golden
    import hw
    import sim

    model = golden.load(model_path)
    x, y = D.chunk_tokens(tokens[:RTL_STREAMS * 256 + 1], RTL_STREAMS)
    gold = D.bits_per_char(model.run(x, "int").logits, y)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            design = hw.generate(model, out_dir=Path(tmp) / "d", lanes=lanes)
            res = sim.simulate(design, x)
            logits = model.formats["out"].to_float(res.outputs)
            return {"rtl": D.bits_per_char(logits, y), "golden": gold,
                    "equal": bool(res.golden_equal)}
    except ValueError as e:
        return {"rtl": None, "golden": gold, "why": str(e).split(";")[0]}


#: The recipes whose float network is their rows' baseline (the others: the plain ``float``).
FLOAT_TWIN = ("paper", "learned", "accurate")


def float_labels(label: str) -> list[str]:
    """The float rows of a row's recipe (same formats): the one at the base learning rate
    first, then the ``lr xN`` ones."""
    recipe = label.split(":", 1)[0]
    name = f"{recipe}: float" if ":" in label and recipe in FLOAT_TWIN else "float"
    return [name] + [lbl for lbl, *_ in ROWS if lbl.startswith(f"{name}, lr x")]


def float_row(results: dict, cell: str, label: str) -> dict | None:
    """The float network of a row's recipe at the base learning rate: its baseline."""
    return results.get((cell, float_labels(label)[0]))


def best_float(results: dict, cell: str, label: str) -> dict | None:
    """The best of the row's float networks over the learning rates that ran."""
    rows = [results[(cell, lbl)] for lbl in float_labels(label) if (cell, lbl) in results]
    return min(rows, key=lambda r: r["test_bpc"], default=None)


def seeded(label: str, extra: dict) -> bool:
    """Whether a row also runs at the extra seeds."""
    return label.startswith(f"{SEEDED_RECIPE}:") and "lr_mult" not in extra


def seed_label(label: str, seed: int, first: int) -> str:
    """The results key of a row at ``seed`` (the row's own label at the table's seed)."""
    return label if seed == first else f"{label} @seed {seed}"


def render_seeds(results: dict, cell: str, seeds: list[int]) -> list[str]:
    """The seeded recipe's rows of one cell at every seed, their mean and its difference to
    the float network's mean (nothing with one seed or without the float rows)."""
    rows = []
    for label, method, _, _, extra, only, _ in ROWS:
        runs = [results.get((cell, seed_label(label, s, seeds[0]))) for s in seeds]
        if seeded(label, extra) and (only is None or cell in only) and None not in runs:
            bpcs = [r["test_bpc"] for r in runs]
            rows.append((label, method, bpcs, sum(bpcs) / len(bpcs)))
    fmean = next((mean for _, method, _, mean in rows if method == "float"), None)
    if len(seeds) < 2 or fmean is None:
        return []
    out = [f"{cell.upper()}, recipe `{SEEDED_RECIPE}` at seeds "
           f"{', '.join(map(str, seeds))} (test BPC; the mean against the float network's "
           "mean):", "",
           "| weights | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | vs float |",
           "|---|" + "---:|" * (len(seeds) + 2)]
    for label, method, bpcs, mean in rows:
        d = "" if method == "float" else f"{mean - fmean:+.3f}"
        out.append(f"| {label} | " + " | ".join(f"{b:.3f}" for b in bpcs)
                   + f" | {mean:.3f} | {d} |")
    out.append("")
    out += [f"- {cell.upper()} {label}, mean of {len(seeds)} seeds: {verdict(mean - fmean)} "
            f"({mean - fmean:+.3f} BPC)." for label, method, _, mean in rows if method != "float"]
    return out + [""]


def verdict(d: float) -> str:
    return ("fails" if d > 0.5 else "clearly worse" if d > 0.1 else "worse" if d > 0.05 else
            "within 0.05" if d >= -0.05 else "beats float")


def render(results: dict, cells, meta: dict) -> str:
    training = sum(r.get("seconds", 0) for r in results.values())
    out = [
        f"Corpus: {meta['corpus']}. Budget: {meta['steps']} training steps per run "
        f"({meta['epochs']} validations of {meta['per_epoch']} steps), batch {meta['batch']} x "
        f"{meta['seq_len']} characters, hidden {meta['hidden']}, 1 layer, Adam base lr "
        f"{meta['lr']:g}, nonlinearity '{meta['nonlinearity']}', default activation formats "
        f"with fake quantization unless a row says otherwise, seed {meta['seed']}"
        + (f" (the `{SEEDED_RECIPE}` rows also at seeds "
           f"{', '.join(map(str, meta['seeds'][1:]))}: the table below each cell's)"
           if len(meta["seeds"]) > 1 else "") + ". "
        f"{len(results)} runs, {training / 60:.0f} min of training summed over the runs; "
        + ("one invocation trained all of them (and ran the RTL)" if meta["runs"] == len(results)
           else f"the last invocation trained {meta['runs']} of them (and ran the RTL of the "
                "rows that had none)")
        + f" in {meta['wall'] / 60:.0f} min on {meta['jobs']} worker(s) ({meta['cores']} "
        f"cores shared with other jobs, 1-minute load average {meta['load']:.1f} at the start)"
        + ("." if meta["runs"] == len(results) else "; the others come from earlier invocations "
           "of the same command (its `--results` file)."),
        "",
        "Columns: the trainer's test BPC of the best validated epoch; the exported model's "
        "golden integer path on the same text (n/a: float has no hardware form); the "
        "difference to the float network of the same recipe (`paper: float`, `learned: "
        "float`, `accurate: float`, otherwise `float`; same formats, same base "
        "learning rate), and to the best of its float networks over the learning rates "
        "that ran (`lr x2`, `lr x4`); the integer path over 32,768 test "
        "characters cut into streams of 256 / 4,096 / 32,768 characters, each from the zero "
        f"state; the RTL's BPC on {RTL_STREAMS} streams of 256 characters (golden on the same "
        "slice in brackets) where the generator builds the model.",
        "",
    ]
    for cell in cells:
        def float_of(label, cell=cell):
            return float_row(results, cell, label)

        def diff(r, fb):
            return "" if fb is None or fb is r else f"{r['test_bpc'] - fb['test_bpc']:+.3f}"

        out += [f"### {cell.upper()}", "",
                "| weights | test BPC | int path | vs float | vs best-lr float "
                "| 256 / 4k / 32k streams | RTL |",
                "|---|---:|---:|---:|---:|---|---|"]
        for label, method, *_ in ROWS:
            r = results.get((cell, label))
            if r is None:
                continue
            d = diff(r, float_of(label))
            db = "" if method == "float" else diff(r, best_float(results, cell, label))
            st = " / ".join("-" if v is None else f"{v:.3f}" for v in r["streams"])
            ib = "n/a" if r["int_bpc"] is None else f"{r['int_bpc']:.3f}"
            rtl = r.get("rtl")
            rt = "" if rtl is None else (f"{rtl['rtl']:.3f} ({rtl['golden']:.3f})"
                                         if rtl["rtl"] is not None else f"n/a: {rtl['why']}")
            out.append(f"| {label} | {r['test_bpc']:.3f} | {ib} | {d} | {db} | {st} | {rt} |")
        out.append("")
        for label, method, *_ in ROWS:
            r, fb = results.get((cell, label)), float_of(label)
            if r is not None and fb is not None and method != "float":
                dd = r["test_bpc"] - fb["test_bpc"]
                best = best_float(results, cell, label)
                db = r["test_bpc"] - best["test_bpc"]
                more = "" if best is fb else \
                    f"; against the best learning rate's float: {verdict(db)}, {db:+.3f}"
                out.append(f"- {cell.upper()} {label}: {verdict(dd)} ({dd:+.3f} BPC{more}).")
        out.append("")
        out += render_seeds(results, cell, meta["seeds"])
    return "\n".join(out)


def write_section(path: Path, body: str) -> None:
    """Replace the '## Paper table' section of a markdown file (or add it at the end)."""
    benchdoc.write_section(SECTION[3:], body, path)


def train_config(args, cell: str, method: str, stochastic: bool, recipe: str) -> dict:
    """``TrainConfig`` fields of one run at the table's budget (``args``: :func:`parse_args`)."""
    return dict(cell=cell, method=method, stochastic=stochastic, recipe=recipe,
                hidden=args.hidden, epochs=args.epochs, max_batches=args.steps_per_epoch,
                batch=args.batch, seq_len=args.seq_len, lr=args.lr, seed=args.seed,
                nonlinearity=args.nonlinearity, fake_quant=True, eval_every=1, threads=1)


def plan(args, corpus) -> list[dict]:
    """One job per row and cell, and per extra seed of the seeded recipe's rows (``row``: the
    row's label; ``label``: its results key)."""
    jobs = []
    for cell in args.cells:
        for label, method, stoch, recipe, extra, only, rtl in ROWS:
            if only is not None and cell not in only:
                continue
            seeds = seed_list(args) if seeded(label, extra) else [args.seed]
            for seed in seeds:
                cfg = train_config(args, cell, method, stoch, recipe)
                cfg.update(extra, seed=seed)
                jobs.append({"config": cfg, "corpus": corpus, "row": label,
                             "label": seed_label(label, seed, args.seed),
                             "rtl": rtl and seed == args.seed, "models": args.models})
    return jobs


def seed_list(args) -> list[int]:
    """The seeds of the seeded recipe's rows: the table's, then ``--seeds - 1`` more."""
    return list(range(args.seed, args.seed + max(1, args.seeds)))


def table_corpus(args) -> tuple:
    """The corpus of ``--corpus`` and a sentence naming it."""
    if args.corpus == "kjv":
        path = kjv_corpus(args.chars)
        source = (f"King James Bible (Debian bible-kjv, `bible gen1:1-rev22:21`, verse numbers "
                  f"and headings dropped), first {args.chars:,} characters")
    elif args.corpus == "builtin":
        path, source = None, "built-in corpus"
    else:
        path, source = args.corpus, args.corpus
    return D.load_corpus(path, valid=args.valid, test=args.test), source


def parse_args(argv=None) -> argparse.Namespace:
    """The command line; ``parse_args([])`` is the table's budget."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="kjv",
                    help="'kjv' (Debian's bible-kjv, prepared and cached), 'builtin', or a file")
    ap.add_argument("--chars", type=int, default=1150000,
                    help="first N characters of the kjv corpus (default 1,150,000)")
    ap.add_argument("--valid", help="separate validation file (with --test)")
    ap.add_argument("--test", help="separate test file (with --valid)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=6, help="validations (epochs of --steps-per-"
                                                           "epoch steps)")
    ap.add_argument("--steps-per-epoch", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=3,
                    help=f"the '{SEEDED_RECIPE}' rows (float at the base learning rate and "
                         "quantized) run at this many seeds from --seed; their means get a table "
                         "of their own")
    ap.add_argument("--nonlinearity", default="hard", choices=("exact", "hard", "plan", "lut"))
    ap.add_argument("--cells", nargs="+", default=["gru", "lstm"], choices=("rnn", "gru", "lstm"))
    ap.add_argument("--rows", nargs="*", help="only the rows with these labels")
    ap.add_argument("--lanes", type=int, default=8, help="lanes of the RTL designs")
    ap.add_argument("--no-rtl", action="store_true")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--models", default=str(ROOT / "rtl_out" / "paper_table_models"))
    ap.add_argument("--results", help="JSON file of the raw results, rewritten after every run; "
                                      "rows already in it are not run again (resume)")
    ap.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--quick", action="store_true",
                    help="built-in corpus, hidden 8, 2 x 3 steps, no RTL (checks the script)")
    args = ap.parse_args(argv)
    if args.quick:
        args.corpus, args.hidden, args.epochs, args.steps_per_epoch = "builtin", 8, 2, 3
        args.no_rtl, args.no_write, args.seeds = True, True, 1
        args.models = tempfile.mkdtemp(prefix="paper-table-")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    corpus, source = table_corpus(args)
    Path(args.models).mkdir(parents=True, exist_ok=True)
    jobs = plan(args, corpus)
    if args.rows:
        jobs = [j for j in jobs if j["row"] in args.rows]
    results = {}
    if args.results and Path(args.results).is_file():
        done = json.loads(Path(args.results).read_text())
        results = {tuple(k.split("|", 1)): v for k, v in done.items()}
    todo = [j for j in jobs if (j["config"]["cell"], j["label"]) not in results]
    print(f"{corpus.describe()}\n{len(todo)} runs x {args.epochs * args.steps_per_epoch} "
          f"steps on {args.jobs} worker(s) ({len(jobs) - len(todo)} done before)", flush=True)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()

    def save():
        if args.results:
            Path(args.results).write_text(json.dumps({f"{c}|{lbl}": v for (c, lbl), v in
                                                      results.items()}, indent=1))

    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for r in pool.imap_unordered(run_one, todo):
            results[(r["cell"], r["label"])] = r
            save()
            ib = "" if r["int_bpc"] is None else f", int {r['int_bpc']:.3f}"
            print(f"  {r['cell']} {r['label']}: test {r['test_bpc']:.3f}{ib}, streams "
                  f"{r['streams']} (epoch {r['epoch']}, {r['seconds']:.0f} s)", flush=True)
    if not args.no_rtl:
        for j in jobs:
            r = results[(j["config"]["cell"], j["label"])]
            if j["rtl"] and r["model"] and "rtl" not in r and r["cell"] == args.cells[0]:
                r["rtl"] = rtl_bpc(r["model"], corpus.test, args.lanes)
                print(f"  RTL {r['cell']} {r['label']}: {r['rtl']}", flush=True)
                save()
    wall = time.perf_counter() - t0
    meta = dict(corpus=f"{source}; {corpus.describe().split(': ', 1)[1]}",
                steps=next(iter(results.values()))["steps"], epochs=args.epochs,
                per_epoch=args.steps_per_epoch, batch=args.batch, seq_len=args.seq_len,
                hidden=args.hidden, lr=args.lr, nonlinearity=args.nonlinearity, seed=args.seed,
                seeds=seed_list(args), runs=len(todo), wall=wall, jobs=args.jobs,
                cores=os.cpu_count(), load=load)
    body = render(results, args.cells, meta)
    print()
    print(body)
    if not args.no_write:
        write_section(Path(args.docs), body)
        print(f"wrote the '{SECTION[3:]}' section of {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
