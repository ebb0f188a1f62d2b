"""Offline projection: the local engine against a scikit-learn pipeline and the raw kernel.

For each dataset it measures, in one run and for the same items:

1. local engine: `topicproj.models.offline.projection.project_catalog` from a Parquet input (id,
   keywords) to a Parquet output, end to end (read, map keywords, project, write);
2. scikit-learn: the pipeline a user would otherwise write: read the same Parquet into Python
   lists, `MultiLabelBinarizer(classes=<the model's vocabulary>, sparse_output=True)`, then
   `NMF.transform` with an NMF of as many topics fitted beforehand (fit not timed, nothing
   written);
3. raw kernel: `model.projector_(indices, offsets, weights)` under `torch.no_grad` on CSR batches
   of the same size mapped beforehand: the ceiling the engine can approach.

Then each stage of the local engine alone (read, map, kernel, write), and the peak RSS of the
local engine in child processes on 100,000 and on all items, to show memory is bounded by the
batch, not the catalog.

Datasets: TMDB (`../shared/data/tmdb_5000_movies.csv.zip`, 50 topics; skipped if absent) and a
synthetic catalog (`--items`, default 1,000,000, over 20,000 keywords, 256 topics). Models are
cached under runs/ (`bench-offline-tmdb50`, `bench-offline-syn256`); delete them to retrain.

    python -m benchmarks.offline                       # ~2 min on 2 cores, ~2 more to fit models
    python -m benchmarks.offline --items 200000 --skip-tmdb
    python -m benchmarks.offline --out benchmarks/RESULTS.md
"""
