#!/usr/bin/python3
"""Prints the reference values pasted into test_whitening.cpp: numpy.linalg.eigh of the
uncentred covariance of every 2x2 patch of 16 deterministic 6x6x3 float32 images (the same
formula as the test's), eigenvalues descending and the filters v_i / sqrt(lambda_i + 5e-4)
with each filter's sign fixed so that its largest-magnitude component is positive.
Run: /usr/bin/python3 tests/nn/whitening_reference.py"""
import numpy as np

N, H, W, C, K = 16, 6, 6, 3, 2
n, y, x, c = np.meshgrid(np.arange(N), np.arange(H), np.arange(W), np.arange(C), indexing="ij")
images = (np.sin(0.7 * n + 1.3 * y + 0.9 * x + 2.1 * c)
          + 0.3 * np.cos(1.1 * n * y - 0.5 * x * c) + 0.2 * c).astype(np.float32)  # NHWC
nchw = images.transpose(0, 3, 1, 2).astype(np.float64)
patches = np.stack([nchw[:, :, i:i + K, j:j + K].reshape(N, -1)
                    for i in range(H - K + 1) for j in range(W - K + 1)], 1).reshape(-1, C * K * K)
sigma = patches.T @ patches / len(patches)
values, vectors = np.linalg.eigh(sigma)
values, vectors = values[::-1], vectors[:, ::-1].T
filters = vectors / np.sqrt(values + 5e-4)[:, None]
for f in filters:
    f *= np.sign(f[np.argmax(np.abs(f))])
print("eigenvalues:", ", ".join(repr(float(v)) for v in values))
print("filters:", ",\n".join(", ".join(f"{float(v):.9g}" for v in row) for row in filters))
