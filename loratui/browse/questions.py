"""The dashboard's quick engine questions, answered in its quick worker process (loratui.library.worker): a
run's estimate with preflight's problems, and a dataset's detail. Both import torch one way or another
(diffusers' models, preflight's readers, datasets' streaming), and a built-in they name is built here.
"""

from pathlib import Path

from loratui.library.requests import DatasetRequest, DatasetResult, EstimateRequest, EstimateResult, Progress


def estimate(request: EstimateRequest, progress, should_stop) -> EstimateResult | None:
    """The estimate, plus the engine's preflight (what `loratui spec validate` checks) when the data is local
    or built-in, or when asked (`full`): a Hub dataset is downloaded to be checked. None: cancelled."""
    from engine import builtin, preflight
    from engine.home import runs_dir
    from engine.spec import parse_spec
    from loratui.browse import dataset_info
    from loratui.browse.estimate import estimate as work_out

    spec = parse_spec(request.values)
    counts = request.split_counts
    if counts is None:
        progress(Progress("counting rows"))
        counts = dataset_info.describe(spec.data.source, spec.data.config or None, rows=0).splits
    if should_stop():
        return None
    progress(Progress("counting parameters"))
    result = work_out(spec, counts)
    source = spec.data.source
    checked = request.full or builtin.is_builtin(source) or Path(source).expanduser().exists()
    problems = []
    if checked:
        if should_stop():
            return None
        progress(Progress("checking model and data"))
        output = Path(spec.output.dir).expanduser() if spec.output.dir else runs_dir()
        problems = preflight.check(spec, output, images=False, disk=False).errors
    return EstimateResult(result, problems, checked)


def dataset(request: DatasetRequest) -> DatasetResult:
    from loratui.browse import dataset_info

    return DatasetResult(dataset_info.describe(request.ref, request.config, rows=request.rows))
