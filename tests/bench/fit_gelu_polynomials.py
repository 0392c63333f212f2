#!/usr/bin/python3
"""Prints the coefficients of lib/backend/cpu/batchnorm_gelu.cpp's GELU polynomials.

For |z| <= 3: Phi(z) = 1/2 + z A(z^2) and GELU'(z) = 1/2 + z C(z^2), C(s) = A(s) + phi(sqrt s).
A (degree 10) and C (degree 11) are least-squares Chebyshev fits in w = 2 z^2 / 9 - 1, printed
highest power first as float32, with their worst error when evaluated by Horner in float32.
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


def worst_error(f, coefficients):
    s = np.linspace(0, LIMIT2, 20001).astype(np.float32)
    w = (s * np.float32(2 / LIMIT2) - np.float32(1)).astype(np.float32)
    p = np.full_like(w, coefficients[0])
    for c in coefficients[1:]:
        p = (p * w + c).astype(np.float32)
    return max(abs(float(p[i]) - f(float(s[i]))) for i in range(len(s)))


for name, f, degree in (("kNearCdf (A)", cdf_part, 10), ("kNearSlope (C)", slope_part, 11)):
    c = fit(f, degree)
    print(f"{name}, worst error {worst_error(f, c):.1e}:")
    print(", ".join(f"{x:.9e}f" for x in c))
