"""Stage 7, report: ``report.md`` and a self-contained ``report.html`` with plots."""

from __future__ import annotations

from dataclasses import dataclass

from ... import __version__
from ..engine import RunContext, StageBase, StageOutput
from ..records import to_jsonable

__all__ = ["ReportResult", "ReportStage", "report_inputs"]


@dataclass(frozen=True)
class ReportResult:
    """The files the report wrote (relative to the design folder)."""

    files: tuple[str, ...]


def report_inputs(ctx: RunContext):
    """:class:`ReportInputs` from the results of the stages before the report."""
    from ..report import ReportInputs, StageLine

    cfg, res = ctx.cfg, ctx.results
    return ReportInputs(
        name=cfg.name, description=cfg.description, config_source=cfg.source,
        config_text=cfg.text, shiftrnn_version=__version__, model=res["model"],
        quantize=res["quantize"], generate=res["generate"], verify=res["verify"],
        simulate=res["simulate"], estimate=res["estimate"],
        stages=tuple(StageLine(k, r.seconds, r.finished, r.note)
                     for k, r in ctx.records.items()))


class ReportStage(StageBase):
    """:func:`shiftrnn.flow.report.write_report` into the design folder."""

    name, result_type, summary = "report", ReportResult, "report.md + report.html"

    def inputs(self, ctx: RunContext) -> dict:
        from ..report import REPORT_VERSION

        return {"results": to_jsonable(ctx.results), "report": REPORT_VERSION,
                "config": ctx.cfg.text}

    def run(self, ctx: RunContext) -> StageOutput:
        from ..report import write_report

        with ctx.status("plots and report"):
            files = write_report(ctx.work, report_inputs(ctx))
        return StageOutput(ReportResult(tuple(files)), tuple(files), "report.md, report.html")
