"""Fused Mamba kernels for CPUs, in C, compiled on first use and called through ``ctypes``.

Two kernels, each with its backward pass, work on time-major ``[T, b, E]`` float32 tensors in blocks of
``LANES`` channels (one vector register: 16 with AVX-512, 8 with AVX2, 4 with SSE/NEON), one pass over time per
(sequence, block):

- the selective scan: the Δ projection and its softplus, ``exp(Δ·A)``, the state update, the read-out
  ``⟨C, h⟩``, the skip ``D·u`` and the gate ``silu(z)`` in one pass, with the ``[N, LANES]`` state in registers.
  Its backward pass recomputes the states of one block and runs the adjoint recurrence the same way.
- the causal depthwise convolution followed by SiLU.

Eager PyTorch does each of these steps as a separate pass over memory, with a buffer for each intermediate.

The C source lives in this file so that the Hub's ``trust_remote_code`` copy carries it too. It is compiled
with the system C compiler (``$CC``, else ``gcc``/``cc``/``clang``) into an owner-only per-user cache
(``$S5VH_KERNEL_CACHE`` or ``~/.cache/s5vh_hf/kernels``) keyed on the source, the flags, the compiler and the
CPU; a cached library is loaded only after its owner, permissions and recorded sha256 check out (see
:func:`kernel_cache_dir`). Built with OpenMP, the
kernels run on torch's own OpenMP thread pool. When no compiler is available, or ``S5VH_CPU_KERNEL=0`` is set,
:func:`load_cpu_kernels` returns ``None`` and callers use the PyTorch implementations.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


_C_SOURCE = r"""
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Channels per vector: one register of the widest float32 vectors the target has. */
#ifndef LANES
#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif
#endif
#define INLINE static inline __attribute__((always_inline))
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

/* LANES float32 lanes: one AVX-512, AVX or SSE/NEON register. */
typedef float vf __attribute__((vector_size(LANES * 4)));
typedef int32_t vi __attribute__((vector_size(LANES * 4)));

INLINE vf splat(float s) { return (vf){0} + s; }
INLINE vf select_v(vi mask, vf yes, vf no) { return (vf)(((vi)yes & mask) | ((vi)no & ~mask)); }
INLINE vf abs_v(vf x) { return (vf)((vi)x & 0x7fffffff); }

/* The first L lanes of p (the rest zero) and back: L == LANES compiles to one unaligned load / store. */
INLINE vf load_v(const float *p, const int L) {
    vf v = {0};
    memcpy(&v, p, sizeof(float) * L);
    return v;
}
INLINE void store_v(float *p, vf v, const int L) { memcpy(p, &v, sizeof(float) * L); }

/* 2^x with relative error about 1e-7: x = n + f with |f| <= 1/2 and a degree-6 near-minimax polynomial for
   2^f. With AVX-512, rounding and the scaling by 2^n are one instruction each and underflow gives 0; the
   portable version clamps x to [-126, 126] first. */
INLINE vf exp2_v(vf x) {
#if defined(__AVX512F__) && LANES == 16
    vf n = (vf)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    x = select_v(x < -126.0f, splat(-126.0f), x);
    x = select_v(x > 126.0f, splat(126.0f), x);
    const vf shifter = splat(12582912.0f); /* 1.5 * 2^23: adding and subtracting it rounds to an integer */
    vf n = (x + shifter) - shifter;
#endif
    vf f = x - n;
    vf p = f * 1.5350866e-4f + 1.3399974e-3f;
    p = p * f + 9.6184704e-3f;
    p = p * f + 5.5503286e-2f;
    p = p * f + 2.4022648e-1f;
    p = p * f + 6.9314718e-1f;
    p = p * f + 1.0f;
#if defined(__AVX512F__) && LANES == 16
    return (vf)_mm512_scalef_ps((__m512)p, (__m512)n);
#else
    vi scale = (__builtin_convertvector(n, vi) + 127) << 23;
    return p * (vf)scale;
#endif
}

/* log(m) for m in [1, 2]: fold to [1/sqrt 2, sqrt 2], then the atanh series in s = (m-1)/(m+1). */
INLINE vf log_1_2_v(vf m) {
    vi high = m > 1.41421356f;
    vf k = select_v(high, splat(1.0f), splat(0.0f));
    m = select_v(high, m * 0.5f, m);
    vf s = (m - 1.0f) / (m + 1.0f);
    vf s2 = s * s;
    vf p = s2 * (1.0f / 9.0f) + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return k * LN2 + 2.0f * s * p;
}

/* softplus(v) = max(v, 0) + log(1 + exp(-|v|)), with log1p's rounding correction for small arguments. */
INLINE vf softplus_v(vf v) {
    vf e = exp2_v(abs_v(v) * -LOG2E);
    vf m = 1.0f + e;
    vf u = m - 1.0f;
    vf log1p = select_v(u == 0.0f, e, log_1_2_v(m) * (e / select_v(u == 0.0f, splat(1.0f), u)));
    return select_v(v > 0.0f, v, splat(0.0f)) + log1p;
}

INLINE vf sigmoid_v(vf v) {
    vf e = exp2_v(abs_v(v) * -LOG2E);
    vf r = 1.0f / (1.0f + e);
    return select_v(v >= 0.0f, r, e * r);
}

typedef struct {
    int64_t steps, batch, inner, state;
    const float *u, *delta, *A2, *B, *C, *D, *z;
    int32_t softplus;
    /* Optional Δ projection: when dt is given, delta = dt_bias + dt · W ([steps, batch, rank] · [rank, inner]) is
       computed here instead of read, which saves a pass over a [steps, batch, inner] buffer. */
    const float *dt, *dt_weight_t, *dt_bias;
    int64_t rank;
} scan_args;

/* The raw Δ input, Δ and Δ·u of one time step for sequence b, channels [e0, e0 + L); tb = t * batch + b. */
INLINE void step_inputs(const scan_args *a, int64_t tb, int64_t e0, const int L, vf *raw, vf *d, vf *du) {
    const int64_t row = tb * a->inner + e0;
    vf v;
    if (a->dt) {
        v = a->dt_bias ? load_v(a->dt_bias + e0, L) : splat(0.0f);
        const float *dt = a->dt + tb * a->rank;
        for (int64_t r = 0; r < a->rank; r++) v += dt[r] * load_v(a->dt_weight_t + r * a->inner + e0, L);
    } else {
        v = load_v(a->delta + row, L);
    }
    *raw = v;
    *d = a->softplus ? softplus_v(v) : v;
    *du = *d * load_v(a->u + row, L);
}

INLINE void forward_item(const scan_args *a, float *out, int64_t b, int64_t e0, const int L, const int64_t N) {
    vf h[N];
    for (int64_t n = 0; n < N; n++) h[n] = splat(0.0f);
    const vf Dv = a->D ? load_v(a->D + e0, L) : splat(0.0f);
    for (int64_t t = 0; t < a->steps; t++) {
        const int64_t row = (t * a->batch + b) * a->inner + e0;
        const float *Bt = a->B + (t * a->batch + b) * N, *Ct = a->C + (t * a->batch + b) * N;
        vf raw, d, du, y = splat(0.0f);
        step_inputs(a, t * a->batch + b, e0, L, &raw, &d, &du);
#pragma GCC unroll 16
        for (int64_t n = 0; n < N; n++) {
            h[n] = exp2_v(d * load_v(a->A2 + n * a->inner + e0, L)) * h[n] + du * Bt[n];
            y += h[n] * Ct[n];
        }
        y += Dv * load_v(a->u + row, L);
        if (a->z) {
            vf z = load_v(a->z + row, L);
            y *= z * sigmoid_v(z);
        }
        store_v(out + row, y, L);
    }
}

/* Work items [begin, end), item = b * blocks + block with blocks = ceil(inner / LANES), over `threads` OpenMP
   threads (the OpenMP runtime torch already loaded, so the two share one thread pool). */
void s5vh_scan_forward(int64_t steps, int64_t batch, int64_t inner, int64_t state,
                       const float *u, const float *delta, const float *A2, const float *B, const float *C,
                       const float *D, const float *z, int32_t softplus, const float *dt,
                       const float *dt_weight_t, const float *dt_bias, int64_t rank, float *out,
                       int64_t begin, int64_t end, int32_t threads) {
    scan_args a = {steps, batch, inner, state, u, delta, A2, B, C, D, z, softplus, dt, dt_weight_t, dt_bias, rank};
    const int64_t blocks = (inner + LANES - 1) / LANES;
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t item = begin; item < end; item++) {
        const int64_t b = item / blocks, e0 = (item % blocks) * LANES;
        const int64_t L = inner - e0 < LANES ? inner - e0 : LANES;
        if (L == LANES && state == 16) forward_item(&a, out, b, e0, LANES, 16);
        else if (L == LANES) forward_item(&a, out, b, e0, LANES, state);
        else forward_item(&a, out, b, e0, (int)L, state);
    }
}

typedef struct {
    const float *dout;
    float *du, *ddelta, *dz, *dB, *dC, *dA, *dD, *states;
} grad_args;

/* dB and dC are accumulated per lane ([steps, batch, N, LANES]) and summed over lanes by the caller, so the
   inner loop has no horizontal sums. */
INLINE void backward_item(const scan_args *a, const grad_args *g, int64_t b, int64_t e0, const int L,
                          const int64_t N) {
    const int64_t E = a->inner;
    vf *hs = (vf *)g->states; /* [steps, N]: the states h_t of this block */
    vf h[N], adj[N], dA[N];
    for (int64_t n = 0; n < N; n++) h[n] = adj[n] = dA[n] = splat(0.0f);
    for (int64_t t = 0; t < a->steps; t++) {
        const int64_t row = (t * a->batch + b) * E + e0;
        const float *Bt = a->B + (t * a->batch + b) * N;
        vf raw, d, du;
        step_inputs(a, t * a->batch + b, e0, L, &raw, &d, &du);
#pragma GCC unroll 16
        for (int64_t n = 0; n < N; n++) {
            h[n] = exp2_v(d * load_v(a->A2 + n * E + e0, L)) * h[n] + du * Bt[n];
            memcpy(hs + t * N + n, &h[n], sizeof(vf));
        }
    }
    const vf Dv = a->D ? load_v(a->D + e0, L) : splat(0.0f);
    vf dD = splat(0.0f);
    for (int64_t t = a->steps - 1; t >= 0; t--) {
        const int64_t row = (t * a->batch + b) * E + e0;
        const float *Bt = a->B + (t * a->batch + b) * N, *Ct = a->C + (t * a->batch + b) * N;
        vf *dBt = (vf *)(g->dB + ((t * a->batch + b) * N) * LANES);
        vf *dCt = (vf *)(g->dC + ((t * a->batch + b) * N) * LANES);
        vf raw, d, du, dy = load_v(g->dout + row, L), x = load_v(a->u + row, L);
        step_inputs(a, t * a->batch + b, e0, L, &raw, &d, &du);
        if (a->z) { /* out = (y + D·u) ⊙ silu(z): recompute y_t = <C_t, h_t> for the gate's gradient */
            vf y = Dv * x, z = load_v(a->z + row, L), sz = sigmoid_v(z);
            for (int64_t n = 0; n < N; n++) y += hs[t * N + n] * Ct[n];
            store_v(g->dz + row, dy * y * sz * (1.0f + z * (1.0f - sz)), L);
            dy *= z * sz;
        }
        dD += dy * x;
        vf ddu = splat(0.0f), dlogdecay = splat(0.0f);
#pragma GCC unroll 16
        for (int64_t n = 0; n < N; n++) {
            vf gl = adj[n] + dy * Ct[n]; /* dL/dh_t */
            dCt[n] += hs[t * N + n] * dy;
            dBt[n] += gl * du;
            ddu += gl * Bt[n];
            vf a2 = load_v(a->A2 + n * E + e0, L);
            vf decay = exp2_v(d * a2);
            vf gah = t > 0 ? gl * decay * hs[(t - 1) * N + n] : splat(0.0f); /* dL/d(Δ·A) */
            dlogdecay += gah * a2;
            dA[n] += gah * d;
            adj[n] = gl * decay; /* carried to h_{t-1} */
        }
        store_v(g->du + row, ddu * d + Dv * dy, L);
        vf dd = dlogdecay * LN2 + ddu * x;
        store_v(g->ddelta + row, a->softplus ? dd * sigmoid_v(raw) : dd, L);
    }
    for (int64_t n = 0; n < N; n++) store_v(g->dA + n * E + e0, load_v(g->dA + n * E + e0, L) + dA[n], L);
    store_v(g->dD + e0, load_v(g->dD + e0, L) + dD, L);
}

/* Gradients of s5vh_scan_forward for work items [begin, end). Thread k accumulates (+=) into slot k of
   dB, dC ([slots, steps, batch, N, LANES], per lane), dA ([slots, N, inner], with respect to A itself, not A·log2 e)
   and dD ([slots, inner]) and uses slot k of `states` ([slots, steps, N, LANES], 64-byte aligned) as scratch;
   du, ddelta, dz are written. */
void s5vh_scan_backward(int64_t steps, int64_t batch, int64_t inner, int64_t state,
                        const float *u, const float *delta, const float *A2, const float *B, const float *C,
                        const float *D, const float *z, int32_t softplus, const float *dt,
                        const float *dt_weight_t, const float *dt_bias, int64_t rank, const float *dout,
                        float *du, float *ddelta, float *dz, float *dB, float *dC, float *dA, float *dD,
                        float *states, int64_t begin, int64_t end, int32_t threads) {
    scan_args a = {steps, batch, inner, state, u, delta, A2, B, C, D, z, softplus, dt, dt_weight_t, dt_bias, rank};
    const int64_t blocks = (inner + LANES - 1) / LANES;
    const int64_t per_lane = steps * batch * state * LANES;
    (void)threads;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
#ifdef _OPENMP
        const int64_t slot = omp_get_thread_num();
#else
        const int64_t slot = 0;
#endif
        grad_args g = {dout, du, ddelta, dz, dB + slot * per_lane, dC + slot * per_lane, dA + slot * state * inner,
                       dD + slot * inner, states + slot * steps * state * LANES};
#pragma omp for schedule(static)
        for (int64_t item = begin; item < end; item++) {
            const int64_t b = item / blocks, e0 = (item % blocks) * LANES;
            const int64_t L = inner - e0 < LANES ? inner - e0 : LANES;
            if (L == LANES && state == 16) backward_item(&a, &g, b, e0, LANES, 16);
            else if (L == LANES) backward_item(&a, &g, b, e0, LANES, state);
            else backward_item(&a, &g, b, e0, (int)L, state);
        }
    }
}

/* ---- causal depthwise convolution + SiLU (the Mamba mixer's conv1d) ----
   x, out: [steps, batch, inner] time-major; w: [K, inner] (taps, transposed); bias: [inner] or NULL.
   pre_t = bias + sum_k w[k] * x[t - (K-1) + k] (zero before the first frame); out_t = silu(pre_t). */

INLINE vf conv_pre(const float *x, const float *w, vf bias, int64_t t, int64_t K, int64_t stride, int64_t inner,
                   const int L) {
    vf pre = bias;
    for (int64_t k = 0; k < K; k++) {
        const int64_t s = t - (K - 1) + k;
        if (s >= 0) pre += load_v(w + k * inner, L) * load_v(x + s * stride, L);
    }
    return pre;
}

/* Every output row (t, b) depends on K input rows only, so the forward pass streams over rows: rows [begin, end)
   of the [steps * batch] rows, each over all channels. */
INLINE void conv_forward_row(const float *x, const float *w, const float *bias, float *out, int64_t row,
                             int64_t batch, int64_t inner, int64_t K) {
    const int64_t t = row / batch, stride = batch * inner;
    const float *xr = x + (row - t * batch) * inner; /* (t = 0, b): conv_pre steps through time from here */
    float *o = out + row * inner;
    int64_t e0 = 0;
    for (; e0 + LANES <= inner; e0 += LANES) {
        vf pre = conv_pre(xr + e0, w + e0, bias ? load_v(bias + e0, LANES) : splat(0.0f), t, K, stride, inner,
                          LANES);
        store_v(o + e0, pre * sigmoid_v(pre), LANES);
    }
    if (e0 < inner) {
        const int L = (int)(inner - e0);
        vf pre = conv_pre(xr + e0, w + e0, bias ? load_v(bias + e0, L) : splat(0.0f), t, K, stride, inner, L);
        store_v(o + e0, pre * sigmoid_v(pre), L);
    }
}

void s5vh_conv_silu_forward(int64_t steps, int64_t batch, int64_t inner, int64_t K, const float *x,
                            const float *w, const float *bias, float *out, int64_t begin, int64_t end,
                            int32_t threads) {
    (void)threads;
    (void)steps;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t row = begin; row < end; row++) conv_forward_row(x, w, bias, out, row, batch, inner, K);
}

/* dx_t = sum_k w[k] * dpre[t + (K-1) - k]; dw[k] += dpre_t * x[t - (K-1) + k]; dbias += dpre_t, with
   dpre = dout * silu'(pre). Runs backwards in time keeping the last K values of dpre. */
INLINE void conv_backward_item(const float *x, const float *w, const float *bias, const float *dout, float *dx,
                               float *dw, float *dbias, int64_t steps, int64_t batch, int64_t inner, int64_t K,
                               int64_t b, int64_t e0, const int L) {
    const int64_t stride = batch * inner;
    const float *xb = x + b * inner + e0;
    const vf bv = bias ? load_v(bias + e0, L) : splat(0.0f);
    vf ring[K], gw[K], gb = splat(0.0f);
    for (int64_t k = 0; k < K; k++) ring[k] = gw[k] = splat(0.0f);
    for (int64_t t = steps - 1; t >= 0; t--) {
        vf pre = conv_pre(xb, w + e0, bv, t, K, stride, inner, L);
        vf sg = sigmoid_v(pre);
        vf dpre = load_v(dout + t * stride + b * inner + e0, L) * sg * (1.0f + pre * (1.0f - sg));
        for (int64_t k = K - 1; k > 0; k--) ring[k] = ring[k - 1]; /* ring[j] = dpre[t + j] */
        ring[0] = dpre;
        vf g = splat(0.0f);
        for (int64_t j = 0; j < K; j++) g += load_v(w + (K - 1 - j) * inner + e0, L) * ring[j];
        store_v(dx + t * stride + b * inner + e0, g, L);
        gb += dpre;
        for (int64_t k = 0; k < K; k++) {
            const int64_t s = t - (K - 1) + k;
            if (s >= 0) gw[k] += dpre * load_v(xb + s * stride, L);
        }
    }
    for (int64_t k = 0; k < K; k++) store_v(dw + k * inner + e0, load_v(dw + k * inner + e0, L) + gw[k], L);
    store_v(dbias + e0, load_v(dbias + e0, L) + gb, L);
}

/* Thread k accumulates into slot k of dw ([slots, K, inner]) and dbias ([slots, inner]); dx is written. */
void s5vh_conv_silu_backward(int64_t steps, int64_t batch, int64_t inner, int64_t K, const float *x,
                             const float *w, const float *bias, const float *dout, float *dx, float *dw,
                             float *dbias, int64_t begin, int64_t end, int32_t threads) {
    const int64_t blocks = (inner + LANES - 1) / LANES;
    (void)threads;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
#ifdef _OPENMP
        const int64_t slot = omp_get_thread_num();
#else
        const int64_t slot = 0;
#endif
        float *dw_slot = dw + slot * K * inner, *db_slot = dbias + slot * inner;
#pragma omp for schedule(static)
        for (int64_t item = begin; item < end; item++) {
            const int64_t b = item / blocks, e0 = (item % blocks) * LANES;
            const int64_t L = inner - e0 < LANES ? inner - e0 : LANES;
            if (L == LANES)
                conv_backward_item(x, w, bias, dout, dx, dw_slot, db_slot, steps, batch, inner, K, b, e0, LANES);
            else
                conv_backward_item(x, w, bias, dout, dx, dw_slot, db_slot, steps, batch, inner, K, b, e0, (int)L);
        }
    }
}

int s5vh_lanes(void) { return LANES; }

int s5vh_native_build(void) {
#ifdef S5VH_NATIVE
    return 1;
#else
    return 0;
#endif
}

int s5vh_uses_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
"""

_OPTIMISE = ["-O3", "-ffp-contract=fast", "-fno-math-errno"]
_FLAG_SETS = tuple(
    [*_OPTIMISE, *target, *threads]
    for threads in (["-fopenmp"], [])
    for target in (["-march=native", "-DS5VH_NATIVE"], ["-mcpu=native", "-DS5VH_NATIVE"])
) + ([*_OPTIMISE, "-fopenmp"], _OPTIMISE)
"""Tried in order. OpenMP shares the thread pool of the OpenMP runtime torch has loaded (same soname).
``-march=native`` (``-mcpu=native`` on compilers that only take that) picks the CPU's widest vectors (AVX-512,
AVX2, NEON); the kernel is cached per CPU, so a native build never runs elsewhere. The last two are portable
builds (SSE2 on x86), which are slower than the PyTorch scan there: ``"auto"`` does not use them."""
_COMMON_FLAGS = ["-shared", "-fPIC", "-std=gnu11", "-x", "c"]
MAX_STATE_SIZE = 256
"""Largest Mamba state size N the kernel handles (it keeps three ``[N, LANES]`` blocks on the stack)."""


def _compiler() -> str | None:
    for candidate in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor() + platform.machine()


_PRIVATE_FALLBACK: Path | None = None


def _unsafe_reason(path: Path, kind: str) -> str | None:
    """Why ``path`` must not be trusted (another owner, group/other-writable, a symlink, the wrong file type);
    ``None`` when it is safe. ``kind``: ``"dir"`` or ``"file"``."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return f"cannot stat it ({error.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link"
    if kind == "dir" and not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if kind == "file" and not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"it belongs to user {info.st_uid}, not to this user ({os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "others may write to it"
    return None


def _private_fallback() -> Path:
    """A fresh owner-only temporary folder with an unpredictable name, made once per process and removed at
    exit (the kernel is then rebuilt by each process)."""
    global _PRIVATE_FALLBACK
    if _PRIVATE_FALLBACK is None or not _PRIVATE_FALLBACK.is_dir():
        _PRIVATE_FALLBACK = Path(tempfile.mkdtemp(prefix="s5vh_hf-kernels-"))  # mode 0700, random name
        atexit.register(shutil.rmtree, _PRIVATE_FALLBACK, True)
    return _PRIVATE_FALLBACK


def kernel_cache_dir() -> Path:
    """Where compiled kernels are kept: ``$S5VH_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/s5vh_hf/kernels``
    (``~/.cache/s5vh_hf/kernels``), created owner-only (0700).

    A library found there is ``dlopen``ed, so the folder must be this user's alone: one that belongs to another
    user, that others may write to, or that is a symbolic link is refused (with a warning), as is one that cannot
    be created. The kernel is then built in a fresh private temporary folder with an unpredictable name — never a
    predictable shared path such as ``/tmp/<name>-<uid>``.
    """
    configured = os.environ.get("S5VH_KERNEL_CACHE")
    if configured:
        folder = Path(configured)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = Path(base) / "s5vh_hf" / "kernels"
    try:
        if not folder.exists():
            folder.mkdir(parents=True, mode=0o700)
            os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    except OSError as error:
        reason = f"cannot create it ({error.strerror})"
    else:
        reason = _unsafe_reason(folder, "dir")
        if reason is None and not os.access(folder, os.W_OK):
            reason = "it is not writable"
    if reason is None:
        return folder
    _warn_once(f"kernel cache {folder} is not used: {reason}; building in a private temporary folder instead")
    return _private_fallback()


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning(message)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(target: Path) -> bool:
    """Whether a cached library may be loaded: it and its hash record are this user's, not writable by others,
    and the library's sha256 equals the one recorded when this package built it. A truncated, replaced or foreign
    library fails here and is never ``dlopen``ed (a truncated one would crash the process with SIGBUS)."""
    record = target.with_name(target.name + ".sha256")
    if _unsafe_reason(target, "file") or _unsafe_reason(record, "file"):
        return False
    try:
        return record.read_text().strip() == _sha256_file(target)
    except OSError:
        return False


def _compile_and_load(compiler: str, flags: list[str], target: Path) -> ctypes.CDLL:
    """Compile into a private temporary file, load that file, then publish it and its sha256 under ``target``
    (atomic renames; concurrent builders each load their own file and the last rename wins)."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".build-", suffix=".so")
    os.close(handle)
    record = Path(temporary + ".sha256")
    try:
        subprocess.run(
            [compiler, *flags, *_COMMON_FLAGS, "-", "-o", temporary],
            input=_C_SOURCE,
            text=True,
            capture_output=True,
            check=True,
            timeout=300,
        )
        os.chmod(temporary, 0o700)
        record.write_text(_sha256_file(Path(temporary)) + "\n")
        library = ctypes.CDLL(temporary)
        os.replace(temporary, target)
        os.replace(record, target.with_name(target.name + ".sha256"))
        return library
    finally:
        for leftover in (Path(temporary), record):
            leftover.unlink(missing_ok=True)


def _library_key(compiler: str, flags: list[str]) -> str:
    parts = [_C_SOURCE, *flags, compiler, str(os.stat(compiler).st_mtime), _cpu_signature()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def _build_library(flag_sets: tuple[list[str], ...] = _FLAG_SETS) -> ctypes.CDLL:
    """Load the verified cached kernel, or compile it, with the first flag set that works. A cached library that
    fails verification, or loads but lacks the kernel's functions (a foreign library), is rebuilt."""
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found (set $CC or install gcc)")
    errors = []
    for flags in flag_sets:
        target = kernel_cache_dir() / f"s5vh_scan_{_library_key(compiler, flags)}.so"
        try:
            if target.exists() and _verified(target):
                try:
                    library = ctypes.CDLL(str(target))
                    if all(hasattr(library, name) for name in _EXPORTED):
                        return library
                except OSError:
                    pass
            if target.exists():
                logger.info("rebuilding the cached kernel %s (it failed verification)", target)
            return _compile_and_load(compiler, flags, target)
        except (OSError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            errors.append(f"{' '.join(flags)}: {detail.strip()[-500:]}")
    raise RuntimeError("compiling the C kernel failed:\n" + "\n".join(errors))


_EXPORTED = (
    "s5vh_scan_forward",
    "s5vh_scan_backward",
    "s5vh_conv_silu_forward",
    "s5vh_conv_silu_backward",
    "s5vh_uses_openmp",
    "s5vh_lanes",
    "s5vh_native_build",
)
"""Functions the compiled library must export."""


_MIN_WORK_PER_THREAD = 1 << 16
"""Vector operations below which a job runs on one thread (a parallel region costs a few microseconds)."""


def _pointer(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


DeltaProjection = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]
"""``(dt [T, b, R], weight_t [R, E], bias [E] or None)``: Mamba's low-rank Δ projection, fused into the scan."""


def _projection_args(projection: DeltaProjection | None) -> list[int | None]:
    if projection is None:
        return [None, None, None, 0]
    dt, weight_t, bias = projection
    return [dt.data_ptr(), weight_t.data_ptr(), _pointer(bias), dt.shape[-1]]


class CpuKernels:
    """The compiled kernels and how to run them on several threads; see :func:`load_cpu_kernels`.

    Built with OpenMP, a kernel runs its own parallel loop on torch's OpenMP thread pool (the library links the
    ``libgomp.so.1`` torch has already loaded). Without OpenMP (a compiler that lacks it), the work items are
    split over a Python thread pool instead; ``ctypes`` releases the GIL during each call.
    """

    def __init__(self, library: ctypes.CDLL) -> None:
        pointer, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
        signatures = {
            "s5vh_scan_forward": [i64] * 4 + [pointer] * 7 + [i32] + [pointer] * 3 + [i64, pointer, i64, i64, i32],
            "s5vh_scan_backward": [i64] * 4
            + [pointer] * 7
            + [i32]
            + [pointer] * 3
            + [i64]
            + [pointer] * 9
            + [i64, i64, i32],
            "s5vh_conv_silu_forward": [i64] * 4 + [pointer] * 4 + [i64, i64, i32],
            "s5vh_conv_silu_backward": [i64] * 4 + [pointer] * 7 + [i64, i64, i32],
        }
        self._functions = {}
        for name, argtypes in signatures.items():
            function = getattr(library, name)
            function.argtypes, function.restype = argtypes, None
            self._functions[name] = function
        self.uses_openmp = bool(library.s5vh_uses_openmp())
        self.lanes = int(library.s5vh_lanes())
        """Channels per work item: the width of the float32 vectors the kernel was built for (16 with AVX-512)."""
        self.native = bool(library.s5vh_native_build())
        """Built for this CPU's vector instructions (``-march=native``); ``"auto"`` only uses native builds."""
        self._pool: ThreadPoolExecutor | None = None
        self._pool_owner: tuple[int, int] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _thread_count(items: int, work_per_item: int) -> int:
        return max(1, min(torch.get_num_threads(), items, (items * work_per_item) // _MIN_WORK_PER_THREAD))

    def _run(self, call, items: int, threads: int) -> None:
        """``call(slot, begin, end, omp_threads)`` over ``items`` work items on ``threads`` threads (see
        :meth:`_thread_count`; thread k accumulates into slot k): one call that runs an OpenMP loop, or one call
        per thread of a Python pool."""
        if self.uses_openmp or threads == 1:
            call(0, 0, items, threads)
            return
        with self._lock:
            owner = (os.getpid(), threads)
            if self._pool is None or self._pool_owner != owner:  # a new process after fork, or a new count
                self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="s5vh-kernel")
                self._pool_owner = owner
            pool = self._pool
        bounds = [items * k // threads for k in range(threads + 1)]
        futures = [pool.submit(call, slot, bounds[slot], bounds[slot + 1], 1) for slot in range(threads)]
        for future in futures:
            future.result()

    # -- selective scan ----------------------------------------------------------------------------------------

    def scan_forward(
        self,
        u: torch.Tensor,
        delta: torch.Tensor | None,
        A2_t: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        D: torch.Tensor | None,
        z: torch.Tensor | None,
        softplus: bool,
        projection: DeltaProjection | None = None,
    ) -> torch.Tensor:
        """Time-major, contiguous float32: ``u``, ``delta``, ``z`` ``[T, b, E]``; ``A2_t`` = A·log2(e) as
        ``[N, E]``; ``B``, ``C`` ``[T, b, N]``; ``D`` ``[E]``. Returns ``(y + D·u) ⊙ silu(z)`` ``[T, b, E]``,
        with ``Δ = softplus(delta)`` when ``softplus`` is set. With ``projection`` = ``(dt [T, b, R],
        weight_t [R, E], bias [E] or None)``, ``delta = dt · weight_t + bias`` is computed in the kernel and
        ``delta`` is not read (pass ``None``)."""
        steps, batch, inner = u.shape
        state = A2_t.shape[0]
        out = torch.empty_like(u)
        args = [steps, batch, inner, state] + [_pointer(t) for t in (u, delta, A2_t, B, C, D, z)]
        args += [int(softplus), *_projection_args(projection), out.data_ptr()]
        function = self._functions["s5vh_scan_forward"]
        items = batch * -(-inner // self.lanes)
        threads = self._thread_count(items, steps * state)
        self._run(lambda slot, begin, end, omp: function(*args, begin, end, omp), items, threads)
        return out

    def scan_backward(
        self,
        grad_out: torch.Tensor,
        u: torch.Tensor,
        delta: torch.Tensor | None,
        A2_t: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        D: torch.Tensor | None,
        z: torch.Tensor | None,
        softplus: bool,
        projection: DeltaProjection | None = None,
    ) -> tuple[torch.Tensor | None, ...]:
        """Gradients ``(du, ddelta, dA [E, N], dB, dC, dD, dz)`` of :meth:`scan_forward` (``None`` for absent
        ``D``/``z``); ``ddelta`` is with respect to the raw input (before softplus; the projection's output when
        ``projection`` is given)."""
        steps, batch, inner = u.shape
        state = A2_t.shape[0]
        items = batch * -(-inner // self.lanes)
        slots = self._thread_count(items, 3 * steps * state)
        grad_u, grad_delta = torch.empty_like(u), torch.empty_like(u)
        grad_z = torch.empty_like(u) if z is not None else None
        # One accumulation slot per thread; dB and dC are kept per lane and summed over lanes here.
        grad_B = u.new_zeros(slots, *B.shape, self.lanes)
        grad_C = u.new_zeros(slots, *C.shape, self.lanes)
        grad_A = u.new_zeros(slots, state, inner)
        grad_D = u.new_zeros(slots, inner)
        scratch = u.new_empty(slots, steps * state * self.lanes)
        inputs = [_pointer(t) for t in (u, delta, A2_t, B, C, D, z)] + [int(softplus), *_projection_args(projection)]
        written = [grad_out.data_ptr(), grad_u.data_ptr(), grad_delta.data_ptr(), _pointer(grad_z)]
        function = self._functions["s5vh_scan_backward"]

        def call(slot: int, begin: int, end: int, omp_threads: int) -> None:
            partial = [t[slot].data_ptr() for t in (grad_B, grad_C, grad_A, grad_D, scratch)]
            function(steps, batch, inner, state, *inputs, *written, *partial, begin, end, omp_threads)

        self._run(call, items, slots)
        return (
            grad_u,
            grad_delta,
            grad_A.sum(0).t(),
            grad_B.sum(dim=(0, -1)),
            grad_C.sum(dim=(0, -1)),
            grad_D.sum(0) if D is not None else None,
            grad_z,
        )

    # -- causal depthwise convolution + SiLU -------------------------------------------------------------------

    def conv_silu_forward(self, x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``silu(causal_conv(x))``: ``x`` ``[T, b, E]`` time-major contiguous float32, ``taps`` ``[K, E]``
        (the conv weight ``[E, 1, K]`` transposed), ``bias`` ``[E]`` → ``[T, b, E]``."""
        steps, batch, inner = x.shape
        out = torch.empty_like(x)
        args = [steps, batch, inner, taps.shape[0], x.data_ptr(), taps.data_ptr(), _pointer(bias), out.data_ptr()]
        function = self._functions["s5vh_conv_silu_forward"]
        rows = steps * batch  # the forward pass streams over (t, b) rows
        threads = self._thread_count(rows, -(-inner // self.lanes) * 4)
        self._run(lambda slot, begin, end, omp: function(*args, begin, end, omp), rows, threads)
        return out

    def conv_silu_backward(
        self, grad_out: torch.Tensor, x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradients ``(dx [T, b, E], dtaps [K, E], dbias [E])`` of :meth:`conv_silu_forward`."""
        steps, batch, inner = x.shape
        kernel = taps.shape[0]
        items = batch * -(-inner // self.lanes)
        slots = self._thread_count(items, 3 * steps * kernel)
        grad_x = torch.empty_like(x)
        grad_taps = x.new_zeros(slots, kernel, inner)
        grad_bias = x.new_zeros(slots, inner)
        args = [steps, batch, inner, kernel, x.data_ptr(), taps.data_ptr(), _pointer(bias), grad_out.data_ptr()]
        function = self._functions["s5vh_conv_silu_backward"]

        def call(slot: int, begin: int, end: int, omp_threads: int) -> None:
            partial = [grad_x.data_ptr(), grad_taps[slot].data_ptr(), grad_bias[slot].data_ptr()]
            function(*args, *partial, begin, end, omp_threads)

        self._run(call, items, slots)
        return grad_x, grad_taps.sum(0), grad_bias.sum(0)


class _CausalConvSilu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):  # noqa: D102 - see causal_conv1d_silu
        taps = weight[:, 0, :].t().contiguous()
        ctx.save_for_backward(x, taps, bias)
        return load_cpu_kernels().conv_silu_forward(x, taps, bias)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        x, taps, bias = ctx.saved_tensors
        grad_x, grad_taps, grad_bias = load_cpu_kernels().conv_silu_backward(grad_out.contiguous(), x, taps, bias)
        return grad_x, grad_taps.t()[:, None, :], grad_bias if bias is not None else None


def causal_conv1d_silu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``silu(causal depthwise conv(x))`` with the C kernel: ``x`` ``[T, b, E]`` time-major, ``weight``
    ``[E, 1, K]`` (``nn.Conv1d``'s), ``bias`` ``[E]``. Float32 in and out; differentiable. Raises where the
    kernels cannot run (no compiler, disabled, not a CPU tensor)."""
    require_cpu_kernels(x.device)
    return _CausalConvSilu.apply(x.contiguous(), weight, bias.contiguous() if bias is not None else None)


_KERNELS: CpuKernels | None = None
_KERNELS_ERROR: str | None = None
_LOAD_LOCK = threading.Lock()


def cpu_kernels_disabled() -> bool:
    """Whether ``S5VH_CPU_KERNEL`` is set to 0 / false / no / off."""
    return os.environ.get("S5VH_CPU_KERNEL", "1").strip().lower() in ("0", "false", "no", "off")


def load_cpu_kernels() -> CpuKernels | None:
    """The compiled kernels, building them on first use; ``None`` (logged once) if they cannot be built, or
    when ``S5VH_CPU_KERNEL=0`` disables them."""
    global _KERNELS, _KERNELS_ERROR
    if cpu_kernels_disabled():
        return None
    if _KERNELS is not None or _KERNELS_ERROR is not None:
        return _KERNELS
    with _LOAD_LOCK:
        if _KERNELS is None and _KERNELS_ERROR is None:
            try:
                _KERNELS = CpuKernels(_build_library())
            except Exception as error:  # noqa: BLE001 - any failure means: use the PyTorch implementations
                _KERNELS_ERROR = str(error)
                logger.warning("The fused CPU kernels are unavailable (%s); using the PyTorch scan.", error)
    return _KERNELS


def require_cpu_kernels(device: torch.device, state_size: int = 0) -> CpuKernels:
    """The kernels, or a ``RuntimeError`` that says why they cannot run tensors on ``device`` (with a Mamba state
    size of ``state_size``): not a CPU tensor, a state size above :data:`MAX_STATE_SIZE`, or no kernels."""
    if device.type != "cpu":
        reason = f"the tensors are on {device}"
    elif state_size > MAX_STATE_SIZE:
        reason = f"state size {state_size} > {MAX_STATE_SIZE}"
    elif load_cpu_kernels() is None:
        reason = cpu_kernels_error() or "unknown"
    else:
        return _KERNELS
    raise RuntimeError(f"The fused CPU kernels cannot run here ({reason}); use implementation='fast'.")


def cpu_kernels_error() -> str | None:
    """Why :func:`load_cpu_kernels` returned ``None``: the build error, the ``S5VH_CPU_KERNEL`` setting, or
    ``None`` when the kernels loaded (or were not asked for yet)."""
    if cpu_kernels_disabled():
        return "disabled by S5VH_CPU_KERNEL=0"
    return _KERNELS_ERROR
