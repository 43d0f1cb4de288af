"""The stage engine: content hashes, skipping, and the all-or-nothing folder transaction.

A :class:`Stage` has a name, the type of its result, the inputs that determine it and a
``run``. :func:`run_stages` hashes each stage's inputs (with :data:`FLOW_VERSION`), skips a stage
whose recorded key matches and whose output files are unchanged, and records each result in
``flow_state.json``. :class:`Transaction` makes a run all-or-nothing: the first stage that runs
switches to a copy of the design folder, which replaces the folder only when every stage
succeeded; a failed run is kept beside it as ``.NAME.failed``.

A stage whose :meth:`Stage.shared` is true (training) is also kept in :class:`StageCache`, across
design folders, by its input key: another folder (a sweep's next point, another configuration
with other hardware keys) takes the record and the files from there instead of running it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

import golden

from .. import __version__
from .config import FlowConfig
from .errors import FlowError
from .records import RecordError, from_jsonable, to_jsonable

__all__ = [
    "FLOW_VERSION", "STATE_FILE", "RunContext", "Stage", "StageBase", "StageCache", "StageOutput",
    "StageRecord", "Transaction", "file_digest", "file_sha256", "run_stages",
]

#: Bump when a stage's computation or its result record changes: recorded results rerun.
FLOW_VERSION = 3
STATE_FILE = "flow_state.json"


def file_sha256(path) -> str:
    """sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """Content digest of an output: model files by their model hash (the .npz container is not
    byte-reproducible), everything else by sha256."""
    if path.suffix == ".npz" and path.name in ("model.npz", "trained.npz"):
        return "model:" + golden.load(path).hash()
    return file_sha256(path)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class StageOutput:
    """What :meth:`Stage.run` returns: the typed result, the files it wrote, a one-line note."""

    result: object
    files: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class StageRecord:
    """One stage in ``flow_state.json``: input key, result, output digests, time, note."""

    key: str
    seconds: float
    result: object
    files: dict[str, str]
    note: str
    finished: str

    def to_jsonable(self) -> dict:
        return to_jsonable(self)

    @classmethod
    def from_jsonable(cls, data: dict, result_type: type, where: str) -> StageRecord:
        """Rebuild a record; :class:`RecordError` when it does not match ``result_type``."""
        if not isinstance(data, dict):
            raise RecordError(f"{where}: expected an object")
        raw = {k: data.get(k) for k in ("key", "seconds", "files", "note", "finished")}
        if any(v is None for v in raw.values()) or "result" not in data:
            raise RecordError(f"{where}: incomplete stage record")
        return cls(key=str(raw["key"]), seconds=float(raw["seconds"]),
                   result=from_jsonable(result_type, data["result"], f"{where}.result"),
                   files=dict(raw["files"]), note=str(raw["note"]),
                   finished=str(raw["finished"]))


class RunContext(Protocol):
    """What a stage sees of the run (:class:`_Run` implements it)."""

    cfg: FlowConfig
    work: Path
    folder: Path
    progress: bool
    results: dict[str, object]
    records: dict[str, StageRecord]
    cache: dict[str, object]

    def status(self, desc: str): ...

    def failed_dir(self) -> Path: ...


class Stage(Protocol):
    """One step of the flow. ``inputs`` may raise :class:`FlowError` for a combination that
    cannot run (checked before the stage is skipped or run)."""

    name: ClassVar[str]
    result_type: ClassVar[type]

    def what(self, ctx: RunContext) -> str:
        """What the stage does, one line (printed when it runs)."""

    def inputs(self, ctx: RunContext) -> dict:
        """Everything that determines the result (hashed)."""

    def run(self, ctx: RunContext) -> StageOutput:
        """Compute the result in ``ctx.work``."""

    def shared(self, ctx: RunContext) -> bool:
        """Whether the result is worth keeping in the :class:`StageCache` for other folders."""


class StageBase:
    """What most stages share: :meth:`Stage.what` is the class's one-line ``summary``; results
    are not shared across folders."""

    name: ClassVar[str]
    result_type: ClassVar[type]
    summary: ClassVar[str] = ""

    def what(self, ctx: RunContext) -> str:
        return self.summary

    def shared(self, ctx: RunContext) -> bool:
        return False


@contextlib.contextmanager
def status_bar(desc: str, enabled: bool):
    """A one-line tqdm status bar with the elapsed time while a long step runs."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(desc=desc, bar_format="  {desc} [{elapsed}]", file=sys.stderr, leave=False)
    stop = threading.Event()

    def tick():
        while not stop.wait(0.5):
            bar.refresh()

    t = threading.Thread(target=tick, daemon=True)
    t.start()
    try:
        yield bar
    finally:
        stop.set()
        t.join()
        bar.close()


# ========================================================================= the stage cache
@dataclass(frozen=True)
class StageCache:
    """Stage results shared across design folders, content-addressed by the stage's input key.

    ``ROOT/STAGE/KEY/`` holds ``record.json`` (the :class:`StageRecord`) and the stage's output
    files; an entry is complete once ``record.json`` exists (written last). Runs of the same key
    serialise on ``ROOT/STAGE/KEY.lock`` (two sweep points on one machine train once). The
    default root is ``golden.cache_root("stages")``.
    """

    root: Path

    @classmethod
    def default(cls) -> StageCache:
        return cls(golden.cache_root("stages"))

    def entry(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    @contextlib.contextmanager
    def lock(self, stage: str, key: str):
        """Hold the key's lock (other processes wait)."""
        path = self.entry(stage, key).with_suffix(".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def load(self, stage: Stage, key: str, work: Path) -> StageRecord | None:
        """The cached record with its files copied into ``work``; None if absent or damaged."""
        entry = self.entry(stage.name, key)
        try:
            data = json.loads((entry / "record.json").read_text())
            rec = StageRecord.from_jsonable(data, stage.result_type, f"{entry}/record.json")
            if rec.key != key:
                return None
            for rel, dig in rec.files.items():
                if file_digest(entry / rel) != dig:
                    return None
            for rel in rec.files:
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(entry / rel, work / rel)
        except (OSError, ValueError):  # absent, unreadable or damaged: run the stage
            return None
        return rec

    def store(self, stage: Stage, rec: StageRecord, work: Path) -> None:
        """Keep ``rec`` and its files (replacing an older entry of the same key)."""
        entry = self.entry(stage.name, rec.key)
        part = entry.with_name(f".{entry.name}.{os.getpid()}.part")
        shutil.rmtree(part, ignore_errors=True)
        for rel in rec.files:
            (part / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / rel, part / rel)
        part.mkdir(parents=True, exist_ok=True)
        golden.atomic_write_bytes(part / "record.json",
                                  (json.dumps(rec.to_jsonable(), indent=1) + "\n").encode())
        shutil.rmtree(entry, ignore_errors=True)
        part.rename(entry)


# ============================================================================= the folder
def read_state(folder: Path) -> dict | None:
    """``flow_state.json`` of a design folder (None: no file; ``{}``: unreadable)."""
    p = folder / STATE_FILE
    if not p.is_file():
        return None
    try:
        st = json.loads(p.read_text())
        return st if isinstance(st, dict) else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def _alive(pid: int) -> bool:
    """Whether a process exists (signal 0 only checks; nothing is sent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Transaction:
    """All-or-nothing update of ``OUT_DIR/NAME`` through a working copy.

    Skipped stages read the design folder itself; :meth:`ensure_copy` switches to a copy before
    the first stage that writes anything; :meth:`commit` renames the copy into place and
    :meth:`fail` keeps it as ``.NAME.failed``.
    """

    out_dir: Path
    name: str
    force: bool
    work: Path = field(init=False)
    copied: bool = field(init=False, default=False)

    def __post_init__(self):
        self.work = self.folder

    @property
    def folder(self) -> Path:
        return self.out_dir / self.name

    @property
    def copy(self) -> Path:
        return self.out_dir / f".{self.name}.run-{os.getpid()}"

    @property
    def failed(self) -> Path:
        return self.out_dir / f".{self.name}.failed"

    def previous_state(self) -> dict:
        """The folder's recorded state; refuses a folder the flow did not make (unless force)."""
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise FlowError(f"{folder} exists and is not a folder; remove it or choose another "
                            "name")
        old = read_state(folder) if folder.is_dir() else None
        if folder.is_dir() and not self.force:
            if old is None:
                raise FlowError(f"{folder} exists and was not made by `shiftrnn flow` (no "
                                f"{STATE_FILE}); pass --force to replace it, or set another "
                                "name")
            if old.get("name") != self.name:
                raise FlowError(f"{folder}/{STATE_FILE} is damaged or belongs to another "
                                "design; pass --force to replace the folder")
        return old or {}

    def remove_stale_copies(self) -> None:
        """Working copies left by killed runs (their process is gone)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.out_dir.glob(f".{self.name}.run-*"):
            pid = stale.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)

    def ensure_copy(self) -> None:
        if self.copied:
            return
        shutil.rmtree(self.copy, ignore_errors=True)
        if self.folder.is_dir() and not self.force:
            shutil.copytree(self.folder, self.copy, symlinks=True)
        else:
            self.copy.mkdir(parents=True)
        self.work, self.copied = self.copy, True

    def commit(self) -> None:
        if not self.copied:
            return
        shutil.rmtree(self.failed, ignore_errors=True)
        if self.folder.exists():
            trash = self.out_dir / f".{self.name}.old-{os.getpid()}"
            self.folder.rename(trash)
            self.copy.rename(self.folder)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            self.copy.rename(self.folder)

    def fail(self, e: BaseException) -> BaseException:
        """Keep the partial run (or drop it on an interrupt); the error to raise."""
        if not self.copied:
            return e
        shutil.rmtree(self.failed, ignore_errors=True)
        if isinstance(e, KeyboardInterrupt):
            shutil.rmtree(self.copy, ignore_errors=True)
            return e
        self.copy.rename(self.failed)
        if isinstance(e, FlowError):
            return FlowError(f"{e} [{self.folder} is unchanged; partial run in "
                             f"{self.failed}]")
        return e


# ================================================================================== the run
class _Run:
    """One run of the stages; implements :class:`RunContext` for them."""

    def __init__(self, cfg: FlowConfig, tx: Transaction, old: dict, *, progress: bool,
                 echo: Callable[[str], None], total: int, stage_cache: StageCache):
        self.cfg, self.tx, self.old = cfg, tx, old
        self.progress, self.echo, self.total = progress, echo, total
        self.stage_cache = stage_cache
        self.results: dict[str, object] = {}
        self.records: dict[str, StageRecord] = {}
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self.reused: list[str] = []  # taken from the stage cache
        self.cache: dict[str, object] = {}  # stage-to-stage objects of this run (model, data)

    @property
    def work(self) -> Path:
        return self.tx.work

    @property
    def folder(self) -> Path:
        return self.tx.folder

    def failed_dir(self) -> Path:
        return self.tx.failed

    def status(self, desc: str):
        return status_bar(desc, self.progress)

    def _recorded(self, stage: Stage, key: str) -> StageRecord | None:
        data = self.old.get("stages", {}).get(stage.name)
        if data is None or data.get("key") != key:
            return None
        try:
            rec = StageRecord.from_jsonable(data, stage.result_type, stage.name)
            for rel, dig in rec.files.items():
                p = self.work / rel
                if not p.is_file() or file_digest(p) != dig:
                    return None
        except Exception:  # a damaged record or output: run the stage again
            return None
        return rec

    def stage(self, index: int, stage: Stage) -> None:
        key = _digest({"flow_version": FLOW_VERSION, "stage": stage.name,
                       **to_jsonable(stage.inputs(self))})
        label = f"[{index}/{self.total}] {stage.name:<9}"
        rec = None if self.tx.force else self._recorded(stage, key)
        if rec is not None:
            self.skipped.append(stage.name)
            self.echo(f"{label} skipped (unchanged): {rec.note}".rstrip(": "))
        elif stage.shared(self):
            self.tx.ensure_copy()
            with self.stage_cache.lock(stage.name, key):
                rec = None if self.tx.force else self.stage_cache.load(stage, key, self.work)
                if rec is not None:
                    self.reused.append(stage.name)
                    self.echo(f"{label} reused (same inputs in the stage cache): {rec.note}")
                else:
                    rec = self._run(label, stage, key)
                    self.stage_cache.store(stage, rec, self.work)
        else:
            self.tx.ensure_copy()
            rec = self._run(label, stage, key)
        self.records[stage.name] = rec
        self.results[stage.name] = rec.result

    def _run(self, label: str, stage: Stage, key: str) -> StageRecord:
        self.echo(f"{label} {stage.what(self)}")
        t0 = time.perf_counter()
        out = stage.run(self)
        seconds = time.perf_counter() - t0
        self.ran.append(stage.name)
        self.echo(f"{'':<{len(label)}} {out.note} ({seconds:.1f} s)")
        return StageRecord(key=key, seconds=round(seconds, 3), result=out.result,
                           files={rel: file_digest(self.work / rel) for rel in out.files},
                           note=out.note, finished=time.strftime("%Y-%m-%d %H:%M:%S"))

    def state(self) -> dict:
        return {"flow_version": FLOW_VERSION, "shiftrnn_version": __version__,
                "name": self.cfg.name, "config_source": self.cfg.source,
                "config": to_jsonable(self.cfg.sections()), "config_text": self.cfg.text,
                "stages": {k: r.to_jsonable() for k, r in self.records.items()}}


def run_stages(cfg: FlowConfig, stages: Sequence[Stage], *, out_dir, force: bool,
               progress: bool, echo: Callable[[str], None],
               stage_cache: StageCache | None = None) -> _Run:
    """Run ``stages`` in order into ``out_dir/cfg.name`` as one transaction.

    ``stage_cache`` (default :meth:`StageCache.default`) keeps the shared stages' results for
    other folders; ``force`` runs them again too.

    Returns
    -------
    _Run
        ``results`` and ``records`` by stage name; ``ran``, ``reused`` (from the stage cache)
        and ``skipped`` (unchanged in the folder).

    Raises
    ------
    FlowError
        A bad input or combination, or a stage failed; ``out_dir/NAME`` is then unchanged.
    """
    tx = Transaction(Path(out_dir), cfg.name, force)
    old = tx.previous_state()
    tx.remove_stale_copies()
    echo(f"shiftrnn flow {cfg.name}: {cfg.source} -> {tx.folder}")
    run = _Run(cfg, tx, old, progress=progress, echo=echo, total=len(stages),
               stage_cache=stage_cache or StageCache.default())
    try:
        for index, stage in enumerate(stages, 1):
            run.stage(index, stage)
        if tx.copied:
            golden.atomic_write_bytes(tx.copy / STATE_FILE,
                                      (json.dumps(run.state(), indent=1) + "\n").encode())
    except BaseException as e:
        err = tx.fail(e)
        if err is e:
            raise
        raise err from None
    tx.commit()
    return run
