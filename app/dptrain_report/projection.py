"""A projection of data-parallel scaling to 2-64 GPUs from a stated model, never a measurement.

Model (weak scaling: every GPU keeps the measured per-rank batch b):
  t_allreduce(N) = 2(N-1)/N * G / B  +  2(N-1) * alpha
                   (ring allreduce of G bytes: 2(N-1) steps, each moving G/N bytes over a link
                   of bandwidth B and paying its latency alpha)
  t_step(N)      = t_compute + t_allreduce(N)                (no overlap with backward)
  images/s(N)    = N * b / t_step(N);  speedup = images/s(N) / (b / t_compute);
  efficiency     = speedup / N;  with full overlap: t_compute / max(t_compute, t_allreduce)
t_compute is measured (forward + backward + optimizer per step, from a run) unless given."""
from dataclasses import dataclass
from typing import List

DEFAULT_GPUS = (2, 4, 8, 16, 32, 64)
DEFAULT_BANDWIDTH_GBS = 12.5   # GB/s per link: 100 Gb/s InfiniBand EDR
DEFAULT_LATENCY_US = 5.0       # per ring step: a typical inter-node message latency
BYTES_PER_GRADIENT = 4         # float32


@dataclass
class ProjectionInputs:
    compute_seconds: float   # per step, per GPU
    compute_source: str      # where t_compute came from, in words
    per_rank_batch: int
    gradient_bytes: int
    gradient_source: str     # where G came from, in words
    bandwidth_gbs: float
    latency_us: float
    gpus: List[int]


@dataclass
class ProjectionRow:
    gpus: int
    global_batch: int
    allreduce: float  # s
    step: float       # s
    images_per_sec: float
    speedup: float
    efficiency: float
    efficiency_overlap: float


def allreduce_seconds(n, gradient_bytes, bandwidth_gbs, latency_us):
    if n == 1:
        return 0.0
    return (2 * (n - 1) / n * gradient_bytes / (bandwidth_gbs * 1e9)
            + 2 * (n - 1) * latency_us * 1e-6)


def project(inputs):
    t_c = inputs.compute_seconds
    single = inputs.per_rank_batch / t_c
    rows = []
    for n in [1] + list(inputs.gpus):
        t_ar = allreduce_seconds(n, inputs.gradient_bytes, inputs.bandwidth_gbs,
                                 inputs.latency_us)
        step = t_c + t_ar
        images = n * inputs.per_rank_batch / step
        rows.append(ProjectionRow(gpus=n, global_batch=n * inputs.per_rank_batch, allreduce=t_ar,
                                  step=step, images_per_sec=images, speedup=images / single,
                                  efficiency=images / single / n,
                                  efficiency_overlap=t_c / max(t_c, t_ar)))
    return rows


def projection_markdown(inputs, rows):
    g = inputs.gradient_bytes
    lines = [
        "# PROJECTION (a model, not a measurement): data-parallel scaling with ring allreduce",
        "",
        "Nothing in this table was measured on N GPUs. It applies the model below to one "
        "measured quantity (the compute time per step) and stated assumptions.",
        "",
        "Model: t_step(N) = t_compute + t_allreduce(N), with t_allreduce(N) = 2(N-1)/N x G / B "
        "+ 2(N-1) x alpha (ring allreduce); weak scaling, every GPU keeps the per-rank batch.",
        "",
        "Inputs:",
        "",
        f"- t_compute = {1e3 * inputs.compute_seconds:.3f} ms per step ({inputs.compute_source})",
        f"- per-rank batch b = {inputs.per_rank_batch}",
        f"- G = {g:,} bytes of gradients ({inputs.gradient_source})",
        f"- B = {inputs.bandwidth_gbs:g} GB/s link bandwidth (--bandwidth-gbs), alpha = "
        f"{inputs.latency_us:g} us latency per ring step (--latency-us)",
        "",
        "| GPUs | global batch | allreduce (ms) | step (ms) | images/s | speedup | efficiency "
        "| efficiency, full overlap |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(f"| {r.gpus} | {r.global_batch} | {1e3 * r.allreduce:.3f} "
                     f"| {1e3 * r.step:.3f} | {r.images_per_sec:.1f} | {r.speedup:.2f} "
                     f"| {100 * r.efficiency:.1f}% | {100 * r.efficiency_overlap:.1f}% |")
    lines += [
        "",
        "- efficiency: speedup / N with no overlap of the allreduce and backward (a lower "
        "bound of the model); full overlap: the allreduce hidden behind compute wherever it "
        "is shorter (an upper bound). Real runs land between them, minus data loading, "
        "stragglers and synchronisation, which the model leaves out.",
        "",
    ]
    return "\n".join(lines)
