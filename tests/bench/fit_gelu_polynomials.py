#!/usr/bin/python3
"""Prints the coefficients of lib/backend/cpu/gelu_simd.h's GELU polynomials.

For |z| <= 3: Phi(z) = 1/2 + z A(z^2) and GELU'(z) = 1/2 + z C(z^2), C(s) = A(s) + phi(sqrt s).
A (degree 10) and C (degree 11) are least-squares Chebyshev fits in w = 2 z^2 / 9 - 1, printed
highest power first as float32, with the worst error of Phi and GELU' over |z| <= 3 when
evaluated in float32 as the kernel does (z^2, then fused multiply-adds for w, Horner's steps
and 1/2 + z p).
Run: /usr/bin/python3 tests/bench/fit_gelu_polynomials.py
"""
import math

import numpy as np

LIMIT2 = 9.0  # z^2 at the limit |z| = 3


def cdf_part(s):  # A(s) = (Phi(z) - 1/2) / z, z = sqrt s
    z = math.sqrt(s)
    if z < 1e-4:
        return (1 - s / 6 + s * s / 40) / math.sqrt(2 * math.pi)
    return 0.5 * math.erf(z / math.sqrt(2)) / z


def slope_part(s):  # C(s) = (GELU'(z) - 1/2) / z
    return cdf_part(s) + math.exp(-s / 2) / math.sqrt(2 * math.pi)


def fit(f, degree):
    w = np.cos(np.pi * (np.arange(3000) + 0.5) / 3000)
    values = [f((x + 1) * LIMIT2 / 2) for x in w]
    series = np.polynomial.chebyshev.Chebyshev.fit(w, values, degree, domain=[-1, 1])
    return series.convert(kind=np.polynomial.Polynomial).coef.astype(np.float32)[::-1]


def fma32(a, b, c):  # float32 a * b + c rounded once (the product is exact in float64)
    return (a.astype(np.float64) * b.astype(np.float64) + c).astype(np.float32)


def kernel_value(coefficients, z):  # 1/2 + z P(w) in float32, the kernel's operations
    square = (z * z).astype(np.float32)
    w = fma32(square, np.float32(2 / LIMIT2), -1.0)
    p = np.full_like(z, coefficients[0])
    for c in coefficients[1:]:
        p = fma32(p, w, np.float64(c))
    return fma32(z, p, 0.5)


def true_cdf(z):
    return 0.5 * math.erfc(-z / math.sqrt(2))


def true_slope(z):
    return true_cdf(z) + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


z = np.linspace(-3, 3, 60001).astype(np.float32)
for name, f, truth, degree in (("kNearCdf (A), Phi", cdf_part, true_cdf, 10),
                               ("kNearSlope (C), GELU'", slope_part, true_slope, 11)):
    c = fit(f, degree)
    got = kernel_value(c, z)
    worst = max(abs(float(got[i]) - truth(float(z[i]))) for i in range(len(z)))
    print(f"{name}: worst error {worst:.1e}")
    print(", ".join(f"{x:.9e}f" for x in c))
