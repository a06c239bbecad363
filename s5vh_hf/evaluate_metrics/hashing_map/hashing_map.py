"""`evaluate` metric: mAP@K of binary hash codes as published in video hashing (divided by K).

Load it with ``evaluate.load(s5vh_hf.evaluate_metrics.HASHING_MAP_PATH)``; compute with ``predictions`` = query
codes (±1 lists), ``references`` = query labels (lists of class ids), plus ``database_codes`` /
``database_labels`` (omit both for the all-vs-all protocol, where the queries are the database).
"""

import datasets
import evaluate
import numpy as np

from s5vh_hf.evaluation import DEFAULT_KS, evaluate_codes

_DESCRIPTION = "mAP@K (field convention, divided by K) and standard mAP@K of Hamming ranking of binary codes."
_KWARGS_DESCRIPTION = """
Args:
    predictions: query codes, one list of ±1 (or 0/1) values per query.
    references: query labels, one list of class ids per query.
    database_codes: database codes (default: the queries, all-vs-all with self-match).
    database_labels: database labels, lists of class ids.
    ks: cut-offs, default (5, 20, 40, 60, 80, 100).
Returns:
    map@K and standard_map@K for every K.
"""


class HashingMap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Wang et al., Efficient Self-Supervised Video Hashing with Selective State Spaces, AAAI 2025",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int8")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references, database_codes=None, database_labels=None, ks=DEFAULT_KS):
        query_codes = np.asarray(predictions, dtype=np.int8)
        query_codes = np.where(query_codes > 0, 1, -1).astype(np.int8)
        if database_codes is None:
            report = evaluate_codes(query_codes, list(references), ks=ks, protocol="all_vs_all")
        else:
            database = np.where(np.asarray(database_codes) > 0, 1, -1).astype(np.int8)
            report = evaluate_codes(
                database, list(database_labels), query_codes, list(references), ks=ks, protocol="query_database"
            )
        result = {f"map@{k}": value for k, value in report.map_at_k.items()}
        result.update({f"standard_map@{k}": value for k, value in report.standard_map_at_k.items()})
        return result
