"""dptrain-report: figures, tables and exports from the HDF5 outputs of dptrain runs.

Modules, one role each: load (read and validate a run's metrics.h5), classification (per-class
metrics and scikit-learn's text report), figures (matplotlib, Agg), comparison (baseline versus
distributed runs), projection (ring-allreduce scaling model), export (JSON), cli (the command).
"""
