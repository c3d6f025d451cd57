"""Item pipelines, one job each, in this order: validate -> normalise -> dedupe -> store."""

from crawler.pipelines.dedupe import DedupePipeline
from crawler.pipelines.normalize import NormalizePipeline
from crawler.pipelines.store import StorePipeline
from crawler.pipelines.validate import ValidatePipeline, drop

__all__ = ["DedupePipeline", "NormalizePipeline", "StorePipeline", "ValidatePipeline", "drop"]
