"""The C source of the fused CPU kernels, generated from ``csrc/cpu_kernels.c`` by
``scripts/sync_kernel_source.py`` — do not edit; edit the .c file and regenerate."""

C_SOURCE = r"""/* Fused Mamba kernels for CPUs: the selective scan (with the Δ projection, softplus, skip and gate folded in) and
   the causal depthwise convolution + SiLU, each with its backward pass. Compiled on first use by
   s5vh_hf/cpu_kernels.py (which also documents the layouts) and called through ctypes with one argument struct
   per call: s5vh_scan_call and s5vh_conv_call below are mirrored field by field by ScanCall and ConvCall there.

   Work is split in items of one vector register of channels (LANES: 16 with AVX-512, 8 with AVX2, 4 otherwise);
   `lanes` below is the number of channels an item really has (LANES, or fewer in the last block). */

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
#ifdef _OPENMP /* OpenMP directives only where OpenMP is on (no unknown-pragma warnings without it) */
#define OMP(directive) _Pragma(#directive)
#else
#define OMP(directive)
#endif

/* The accumulation slot of the calling thread: its OpenMP thread number (0 without OpenMP, where each Python
   thread passes its own slot's pointers). */
INLINE int64_t thread_slot(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

/* LANES float32 lanes: one AVX-512, AVX or SSE/NEON register. */
typedef float vf __attribute__((vector_size(LANES * 4)));
typedef int32_t vi __attribute__((vector_size(LANES * 4)));

INLINE vf splat(float s) { return (vf){0} + s; }
INLINE vf select_v(vi mask, vf yes, vf no) { return (vf)(((vi)yes & mask) | ((vi)no & ~mask)); }
INLINE vf abs_v(vf x) { return (vf)((vi)x & 0x7fffffff); }

/* The first `lanes` floats of p (the rest zero) and back: lanes == LANES compiles to one unaligned load / store. */
INLINE vf load_v(const float *p, const int lanes) {
    vf v = {0};
    memcpy(&v, p, sizeof(float) * lanes);
    return v;
}
INLINE void store_v(float *p, vf v, const int lanes) { memcpy(p, &v, sizeof(float) * lanes); }

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

/* One call of s5vh_scan_forward / s5vh_scan_backward. Tensors are float32, time-major and contiguous:
   u, delta, z, out, du, ddelta, dz: [steps, batch, inner]; B, C: [steps, batch, state]; A2 = A·log2(e) as
   [state, inner]; D: [inner]; dt: [steps, batch, rank]; dt_weight_t: [rank, inner]; dt_bias: [inner]. NULL for
   absent optional tensors (delta when dt is given, D, z, the dt_* pointers, every gradient in the forward pass).
   Work items [begin, end), item = b * blocks + block, run on `threads` OpenMP threads. */
typedef struct {
    int64_t steps, batch, inner, state, rank;
    const float *u, *delta, *A2, *B, *C, *D, *z, *dt, *dt_weight_t, *dt_bias;
    int32_t softplus, threads;
    int64_t begin, end;
    float *out;
    const float *dout;
    float *du, *ddelta, *dz, *dB, *dC, *dA, *dD, *states;
} s5vh_scan_call;

/* One call of s5vh_conv_silu_forward / s5vh_conv_silu_backward: x, out, dout, dx: [steps, batch, inner];
   w: [kernel_size, inner]; bias: [inner] or NULL; dw: [slots, kernel_size, inner]; dbias: [slots, inner]. */
typedef struct {
    int64_t steps, batch, inner, kernel_size;
    const float *x, *w, *bias;
    int64_t begin, end;
    int32_t threads;
    float *out;
    const float *dout;
    float *dx, *dw, *dbias;
} s5vh_conv_call;

/* The raw Δ input, Δ and Δ·u of one time step for sequence b, channels [e0, e0 + lanes); tb = t * batch + b. */
INLINE void step_inputs(const scan_args *a, int64_t tb, int64_t e0, const int lanes, vf *raw, vf *d, vf *du) {
    const int64_t row = tb * a->inner + e0;
    vf v;
    if (a->dt) {
        v = a->dt_bias ? load_v(a->dt_bias + e0, lanes) : splat(0.0f);
        const float *dt = a->dt + tb * a->rank;
        for (int64_t r = 0; r < a->rank; r++) v += dt[r] * load_v(a->dt_weight_t + r * a->inner + e0, lanes);
    } else {
        v = load_v(a->delta + row, lanes);
    }
    *raw = v;
    *d = a->softplus ? softplus_v(v) : v;
    *du = *d * load_v(a->u + row, lanes);
}

INLINE void forward_item(const scan_args *a, float *out, int64_t b, int64_t e0, const int lanes, const int64_t N) {
    vf h[N];
    for (int64_t n = 0; n < N; n++) h[n] = splat(0.0f);
    const vf Dv = a->D ? load_v(a->D + e0, lanes) : splat(0.0f);
    for (int64_t t = 0; t < a->steps; t++) {
        const int64_t row = (t * a->batch + b) * a->inner + e0;
        const float *Bt = a->B + (t * a->batch + b) * N, *Ct = a->C + (t * a->batch + b) * N;
        vf raw, d, du, y = splat(0.0f);
        step_inputs(a, t * a->batch + b, e0, lanes, &raw, &d, &du);
#pragma GCC unroll 16
        for (int64_t n = 0; n < N; n++) {
            h[n] = exp2_v(d * load_v(a->A2 + n * a->inner + e0, lanes)) * h[n] + du * Bt[n];
            y += h[n] * Ct[n];
        }
        y += Dv * load_v(a->u + row, lanes);
        if (a->z) {
            vf z = load_v(a->z + row, lanes);
            y *= z * sigmoid_v(z);
        }
        store_v(out + row, y, lanes);
    }
}

/* Work items [begin, end), item = b * blocks + block with blocks = ceil(inner / LANES), over `threads` OpenMP
   threads (the OpenMP runtime torch already loaded, so the two share one thread pool). */
void s5vh_scan_forward(const s5vh_scan_call *c) {
    scan_args a = {c->steps, c->batch, c->inner, c->state, c->u, c->delta, c->A2, c->B, c->C, c->D, c->z,
                   c->softplus, c->dt, c->dt_weight_t, c->dt_bias, c->rank};
    const int64_t inner = c->inner, state = c->state, blocks = (inner + LANES - 1) / LANES;
    float *out = c->out;
OMP(omp parallel for schedule(static) num_threads(c->threads) if (c->threads > 1))
    for (int64_t item = c->begin; item < c->end; item++) {
        const int64_t b = item / blocks, e0 = (item % blocks) * LANES;
        const int64_t lanes = inner - e0 < LANES ? inner - e0 : LANES;
        if (lanes == LANES && state == 16) forward_item(&a, out, b, e0, LANES, 16);
        else if (lanes == LANES) forward_item(&a, out, b, e0, LANES, state);
        else forward_item(&a, out, b, e0, (int)lanes, state);
    }
}

typedef struct {
    const float *dout;
    float *du, *ddelta, *dz, *dB, *dC, *dA, *dD, *states;
} grad_args;

/* dB and dC are accumulated per lane ([steps, batch, N, LANES]) and summed over lanes by the caller, so the
   inner loop has no horizontal sums. */
INLINE void backward_item(const scan_args *a, const grad_args *g, int64_t b, int64_t e0, const int lanes,
                          const int64_t N) {
    const int64_t E = a->inner;
    vf *hs = (vf *)g->states; /* [steps, N]: the states h_t of this block */
    vf h[N], adj[N], dA[N];
    for (int64_t n = 0; n < N; n++) h[n] = adj[n] = dA[n] = splat(0.0f);
    for (int64_t t = 0; t < a->steps; t++) {
        const float *Bt = a->B + (t * a->batch + b) * N;
        vf raw, d, du;
        step_inputs(a, t * a->batch + b, e0, lanes, &raw, &d, &du);
#pragma GCC unroll 16
        for (int64_t n = 0; n < N; n++) {
            h[n] = exp2_v(d * load_v(a->A2 + n * E + e0, lanes)) * h[n] + du * Bt[n];
            memcpy(hs + t * N + n, &h[n], sizeof(vf));
        }
    }
    const vf Dv = a->D ? load_v(a->D + e0, lanes) : splat(0.0f);
    vf dD = splat(0.0f);
    for (int64_t t = a->steps - 1; t >= 0; t--) {
        const int64_t row = (t * a->batch + b) * E + e0;
        const float *Bt = a->B + (t * a->batch + b) * N, *Ct = a->C + (t * a->batch + b) * N;
        vf *dBt = (vf *)(g->dB + ((t * a->batch + b) * N) * LANES);
        vf *dCt = (vf *)(g->dC + ((t * a->batch + b) * N) * LANES);
        vf raw, d, du, dy = load_v(g->dout + row, lanes), x = load_v(a->u + row, lanes);
        step_inputs(a, t * a->batch + b, e0, lanes, &raw, &d, &du);
        if (a->z) { /* out = (y + D·u) ⊙ silu(z): recompute y_t = <C_t, h_t> for the gate's gradient */
            vf y = Dv * x, z = load_v(a->z + row, lanes), sz = sigmoid_v(z);
            for (int64_t n = 0; n < N; n++) y += hs[t * N + n] * Ct[n];
            store_v(g->dz + row, dy * y * sz * (1.0f + z * (1.0f - sz)), lanes);
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
            vf a2 = load_v(a->A2 + n * E + e0, lanes);
            vf decay = exp2_v(d * a2);
            vf gah = t > 0 ? gl * decay * hs[(t - 1) * N + n] : splat(0.0f); /* dL/d(Δ·A) */
            dlogdecay += gah * a2;
            dA[n] += gah * d;
            adj[n] = gl * decay; /* carried to h_{t-1} */
        }
        store_v(g->du + row, ddu * d + Dv * dy, lanes);
        vf dd = dlogdecay * LN2 + ddu * x;
        store_v(g->ddelta + row, a->softplus ? dd * sigmoid_v(raw) : dd, lanes);
    }
    for (int64_t n = 0; n < N; n++) store_v(g->dA + n * E + e0, load_v(g->dA + n * E + e0, lanes) + dA[n], lanes);
    store_v(g->dD + e0, load_v(g->dD + e0, lanes) + dD, lanes);
}

/* Gradients of s5vh_scan_forward for work items [begin, end). Thread k accumulates (+=) into slot k of
   dB, dC ([slots, steps, batch, N, LANES], per lane), dA ([slots, N, inner], with respect to A itself, not A·log2 e)
   and dD ([slots, inner]) and uses slot k of `states` ([slots, steps, N, LANES], 64-byte aligned) as scratch;
   du, ddelta, dz are written. */
void s5vh_scan_backward(const s5vh_scan_call *c) {
    scan_args a = {c->steps, c->batch, c->inner, c->state, c->u, c->delta, c->A2, c->B, c->C, c->D, c->z,
                   c->softplus, c->dt, c->dt_weight_t, c->dt_bias, c->rank};
    const int64_t steps = c->steps, inner = c->inner, state = c->state;
    const int64_t blocks = (inner + LANES - 1) / LANES;
    const int64_t per_lane = steps * c->batch * state * LANES;
OMP(omp parallel num_threads(c->threads) if (c->threads > 1))
    {
        const int64_t slot = thread_slot();
        grad_args g = {c->dout, c->du, c->ddelta, c->dz, c->dB + slot * per_lane, c->dC + slot * per_lane,
                       c->dA + slot * state * inner, c->dD + slot * inner, c->states + slot * steps * state * LANES};
OMP(omp for schedule(static))
        for (int64_t item = c->begin; item < c->end; item++) {
            const int64_t b = item / blocks, e0 = (item % blocks) * LANES;
            const int64_t lanes = inner - e0 < LANES ? inner - e0 : LANES;
            if (lanes == LANES && state == 16) backward_item(&a, &g, b, e0, LANES, 16);
            else if (lanes == LANES) backward_item(&a, &g, b, e0, LANES, state);
            else backward_item(&a, &g, b, e0, (int)lanes, state);
        }
    }
}

/* ---- causal depthwise convolution + SiLU (the Mamba mixer's conv1d) ----
   x, out: [steps, batch, inner] time-major; w: [K, inner] (taps, transposed); bias: [inner] or NULL.
   pre_t = bias + sum_k w[k] * x[t - (K-1) + k] (zero before the first frame); out_t = silu(pre_t). */

INLINE vf conv_pre(const float *x, const float *w, vf bias, int64_t t, int64_t K, int64_t stride, int64_t inner,
                   const int lanes) {
    vf pre = bias;
    for (int64_t k = 0; k < K; k++) {
        const int64_t s = t - (K - 1) + k;
        if (s >= 0) pre += load_v(w + k * inner, lanes) * load_v(x + s * stride, lanes);
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
        const int lanes = (int)(inner - e0);
        vf pre = conv_pre(xr + e0, w + e0, bias ? load_v(bias + e0, lanes) : splat(0.0f), t, K, stride, inner, lanes);
        store_v(o + e0, pre * sigmoid_v(pre), lanes);
    }
}

void s5vh_conv_silu_forward(const s5vh_conv_call *c) {
OMP(omp parallel for schedule(static) num_threads(c->threads) if (c->threads > 1))
    for (int64_t row = c->begin; row < c->end; row++)
        conv_forward_row(c->x, c->w, c->bias, c->out, row, c->batch, c->inner, c->kernel_size);
}

/* dx_t = sum_k w[k] * dpre[t + (K-1) - k]; dw[k] += dpre_t * x[t - (K-1) + k]; dbias += dpre_t, with
   dpre = dout * silu'(pre). Runs backwards in time keeping the last K values of dpre. */
INLINE void conv_backward_item(const float *x, const float *w, const float *bias, const float *dout, float *dx,
                               float *dw, float *dbias, int64_t steps, int64_t batch, int64_t inner, int64_t K,
                               int64_t b, int64_t e0, const int lanes) {
    const int64_t stride = batch * inner;
    const float *xb = x + b * inner + e0;
    const vf bv = bias ? load_v(bias + e0, lanes) : splat(0.0f);
    vf ring[K], gw[K], gb = splat(0.0f);
    for (int64_t k = 0; k < K; k++) ring[k] = gw[k] = splat(0.0f);
    for (int64_t t = steps - 1; t >= 0; t--) {
        vf pre = conv_pre(xb, w + e0, bv, t, K, stride, inner, lanes);
        vf sg = sigmoid_v(pre);
        vf dpre = load_v(dout + t * stride + b * inner + e0, lanes) * sg * (1.0f + pre * (1.0f - sg));
        for (int64_t k = K - 1; k > 0; k--) ring[k] = ring[k - 1]; /* ring[j] = dpre[t + j] */
        ring[0] = dpre;
        vf g = splat(0.0f);
        for (int64_t j = 0; j < K; j++) g += load_v(w + (K - 1 - j) * inner + e0, lanes) * ring[j];
        store_v(dx + t * stride + b * inner + e0, g, lanes);
        gb += dpre;
        for (int64_t k = 0; k < K; k++) {
            const int64_t s = t - (K - 1) + k;
            if (s >= 0) gw[k] += dpre * load_v(xb + s * stride, lanes);
        }
    }
    for (int64_t k = 0; k < K; k++) store_v(dw + k * inner + e0, load_v(dw + k * inner + e0, lanes) + gw[k], lanes);
    store_v(dbias + e0, load_v(dbias + e0, lanes) + gb, lanes);
}

/* Thread k accumulates into slot k of dw ([slots, K, inner]) and dbias ([slots, inner]); dx is written. */
void s5vh_conv_silu_backward(const s5vh_conv_call *c) {
    const int64_t inner = c->inner, K = c->kernel_size, blocks = (inner + LANES - 1) / LANES;
OMP(omp parallel num_threads(c->threads) if (c->threads > 1))
    {
        const int64_t slot = thread_slot();
        float *dw_slot = c->dw + slot * K * inner, *db_slot = c->dbias + slot * inner;
OMP(omp for schedule(static))
        for (int64_t item = c->begin; item < c->end; item++) {
            const int64_t b = item / blocks, e0 = (item % blocks) * LANES;
            const int lanes = (int)(inner - e0 < LANES ? inner - e0 : LANES);
            if (lanes == LANES) /* a compile-time width: the loads and stores become single vector moves */
                conv_backward_item(c->x, c->w, c->bias, c->dout, c->dx, dw_slot, db_slot, c->steps, c->batch,
                                   inner, K, b, e0, LANES);
            else
                conv_backward_item(c->x, c->w, c->bias, c->dout, c->dx, dw_slot, db_slot, c->steps, c->batch,
                                   inner, K, b, e0, lanes);
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
