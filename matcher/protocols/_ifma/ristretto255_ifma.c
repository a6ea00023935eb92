/*
 * ristretto255 batch kernels on AVX-512 IFMA: eight group elements per step.
 *
 * Field arithmetic (radix 2^52, eight lanes) and the constant-time Edwards point
 * multiplication come from Intel's libcrypto_mb (ipp-crypto, pinned to one exact
 * release: the fe52_* and ifma_ed25519_mul_point symbols are exported but not
 * documented, so the Python side runs a known-answer test against libsodium before
 * this module is used).  This file adds what ristretto255 needs on top of the
 * Edwards curve, written from RFC 9496 section 4: SQRT_RATIO_M1, strict decoding,
 * encoding, the Elligator map and from-hash, and the batch loops that fill Python
 * lists directly.
 *
 * The kernels that multiply (blind, setup rows, evaluate, unblind) do not encode k*P
 * itself: they compute Q = (k/2 mod l)*P and encode 2Q, which is the same element, with
 * the doubled-point encoding of curve25519-dalek's double_and_compress_batch.  That
 * encoding needs an inversion instead of an inverse square root, and one field
 * inversion is shared by a chunk of 64 vectors (Montgomery's trick): about 0.1 us per
 * element instead of 0.6 us (see double_encode_batch and docs/performance.md).
 *
 * Constant time: every step on a secret value (scalars, H(token), b*H(y)) is
 * branch-free and uses masks; the only data-dependent branches are on public
 * inputs (the length and canonical form of a received encoding) and on the final
 * validity of a received point or of a result (an identity result is refused, as
 * libsodium refuses it).  The scalar's halving mod l adds l under a mask; the shared
 * inversion's control flow depends only on the batch size, and a zero factor (an
 * identity lane) is replaced by 1 under a mask.
 *
 * Built by matcher/protocols/_ifma/build.py; the module init does not execute any
 * AVX-512 instruction, and cpu_supported() tells the caller whether it may call
 * the kernels.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

/* OpenSSL 3's libcrypto (already a dependency of libcrypto_mb), declared here rather than
 * through its headers, which a machine without libssl-dev lacks (the label sealer needs
 * them and is optional on its own; these kernels are not). */
typedef struct evp_md_st EVP_MD;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct ossl_lib_ctx_st OSSL_LIB_CTX;
typedef struct engine_st ENGINE;
extern EVP_MD *EVP_MD_fetch(OSSL_LIB_CTX *ctx, const char *algorithm, const char *properties);
extern EVP_MD_CTX *EVP_MD_CTX_new(void);
extern void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
extern int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl);
extern int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt);
extern int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s);
extern unsigned char *SHA512(const unsigned char *d, size_t n, unsigned char *md);

/* SHA-512 fetched once, at import: OpenSSL 3's one-shot SHA512() fetches the algorithm on
 * every call (with a lock), 0.51 us a 48-byte hash here against 0.24 us through a context
 * that reuses the fetched EVP_MD.  NULL if the fetch failed: the one-shot is used then. */
static EVP_MD *sha512_md;

/* SHA-512(a || b) into out, through ctx when there is one; scratch (alen + blen bytes) is
 * used only by the one-shot fallback (no context, or a context call that failed). */
static void sha512_cat(EVP_MD_CTX *ctx, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                       uint8_t out[64], uint8_t *scratch)
{
    unsigned int len = 0;
    if (ctx && EVP_DigestInit_ex(ctx, sha512_md, NULL) == 1 && EVP_DigestUpdate(ctx, a, alen) == 1
        && EVP_DigestUpdate(ctx, b, blen) == 1 && EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 64)
        return;
    memcpy(scratch, a, alen);
    memcpy(scratch + alen, b, blen);
    SHA512(scratch, alen + blen, out);
}

static void wipe(void *p, size_t n);

/* A context for sha512_cat, or NULL (then the one-shot); EVP_MD_CTX_free cleanses its state. */
static EVP_MD_CTX *sha512_ctx(void) { return sha512_md ? EVP_MD_CTX_new() : NULL; }

#define LANES 8
#define M52 0xfffffffffffffULL

/* ------------------------------------------------------------------------- */
/* Portable helpers (no AVX-512): byte <-> limb conversions, canonical checks.  */

static void bytes_to_limbs(uint64_t out[5], const uint8_t in[32], int mask_top)
{
    uint64_t w[4];
    for (int i = 0; i < 4; i++) {
        uint64_t x = 0;
        for (int j = 7; j >= 0; j--) x = (x << 8) | in[8 * i + j];
        w[i] = x;
    }
    if (mask_top) w[3] &= 0x7fffffffffffffffULL;
    out[0] = w[0] & M52;
    out[1] = ((w[0] >> 52) | (w[1] << 12)) & M52;
    out[2] = ((w[1] >> 40) | (w[2] << 24)) & M52;
    out[3] = ((w[2] >> 28) | (w[3] << 36)) & M52;
    out[4] = w[3] >> 16;
}

static void limbs_to_bytes(uint8_t out[32], const uint64_t l[5])
{
    uint64_t w[4];
    w[0] = l[0] | (l[1] << 52);
    w[1] = (l[1] >> 12) | (l[2] << 40);
    w[2] = (l[2] >> 24) | (l[3] << 28);
    w[3] = (l[3] >> 36) | (l[4] << 16);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) out[8 * i + j] = (uint8_t)(w[i] >> (8 * j));
}

/* 1 if all 32 bytes are zero, in time independent of the bytes (results may be secret). */
static int is_zero32(const uint8_t b[32])
{
    unsigned acc = 0;
    for (int i = 0; i < 32; i++) acc |= b[i];
    return (int)(((acc - 1) >> 8) & 1);
}

/* 1 if the 32-byte little-endian value is < p = 2^255 - 19 and even (RFC 9496 4.3.1). */
static int canonical_nonnegative(const uint8_t s[32])
{
    /* s < p  <=>  s[31] < 0x7f, or s[31] == 0x7f and (some of s[1..30] is not 0xff, or s[0] < 0xed) */
    unsigned all_ff = 0xff;
    for (int i = 1; i < 31; i++) all_ff &= s[i];
    int below_p = (s[31] < 0x7f) || (s[31] == 0x7f && (all_ff != 0xff || s[0] < 0xed));
    return below_p && !(s[0] & 1);
}

/* ------------------------------------------------------------------------- */
/* libcrypto_mb internals (ipp-crypto 2026.2.0).                               */

typedef __m512i U64;
typedef struct { U64 X[5]; U64 Y[5]; U64 T[5]; U64 Z[5]; } ge;  /* ge52_ext_mb */

extern void fe52_mb_add_mod25519(U64 r[5], const U64 a[5], const U64 b[5]);
extern void fe52_mb_sub_mod25519(U64 r[5], const U64 a[5], const U64 b[5]);
extern void fe52_mb_neg_mod25519(U64 r[5], const U64 a[5]);
extern void fe52_mb_mul_mod25519(U64 r[5], const U64 a[5], const U64 b[5]);
extern void fe52_mb_sqr_mod25519(U64 r[5], const U64 a[5]);
extern void fe52_pow_2_252m3_mod25519(U64 r[5], const U64 a[5]);
extern void fe52mb8_red_p25519(U64 r[5], const U64 a[5]);
extern void ifma_ed25519_mul_point(ge *r, const ge *p, const U64 scalar[]);

#include "constants.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512ifma,avx512vl,avx512bw,avx512dq")

typedef U64 fe[5];
typedef __mmask8 mask;

static inline void fe_const(fe r, const uint64_t c[5])
{
    for (int i = 0; i < 5; i++) r[i] = _mm512_set1_epi64((long long)c[i]);
}

static inline void fe_copy(fe r, const fe a) { for (int i = 0; i < 5; i++) r[i] = a[i]; }

/* Fully reduced representative: library results are < 2^256, so two conditional
 * subtractions of p reach [0, p). */
static inline void fe_canon(fe r, const fe a)
{
    fe52mb8_red_p25519(r, a);
    fe52mb8_red_p25519(r, r);
}

/* add/sub/neg are given canonical inputs: the library's versions assume them. */
static inline void fe_add(fe r, const fe a, const fe b)
{
    fe x, y;
    fe_canon(x, a); fe_canon(y, b);
    fe52_mb_add_mod25519(r, x, y);
}
static inline void fe_sub(fe r, const fe a, const fe b)
{
    fe x, y;
    fe_canon(x, a); fe_canon(y, b);
    fe52_mb_sub_mod25519(r, x, y);
}
static inline void fe_neg(fe r, const fe a)
{
    fe x;
    fe_canon(x, a);
    fe52_mb_neg_mod25519(r, x);
}
#define fe_mul fe52_mb_mul_mod25519
#define fe_sqr fe52_mb_sqr_mod25519

static inline mask fe_iszero(const fe a)
{
    fe x;
    fe_canon(x, a);
    U64 t = _mm512_or_si512(_mm512_or_si512(x[0], x[1]), _mm512_or_si512(_mm512_or_si512(x[2], x[3]), x[4]));
    return _mm512_cmpeq_epi64_mask(t, _mm512_setzero_si512());
}
static inline mask fe_eq(const fe a, const fe b)
{
    fe d;
    fe_sub(d, a, b);
    return fe_iszero(d);
}
static inline mask fe_isneg(const fe a)
{
    fe x;
    fe_canon(x, a);
    return _mm512_test_epi64_mask(x[0], _mm512_set1_epi64(1));
}
/* r = m ? b : a, lane by lane */
static inline void fe_select(fe r, const fe a, mask m, const fe b)
{
    for (int i = 0; i < 5; i++) r[i] = _mm512_mask_mov_epi64(a[i], m, b[i]);
}
static inline void fe_abs(fe r, const fe a)
{
    fe n;
    fe_neg(n, a);
    fe_select(r, a, fe_isneg(a), n);
}

/* RFC 9496 4.2: (was_square, r) with r = +sqrt(u/v), sqrt(i*u/v) or 0. */
static mask sqrt_ratio_m1(fe r, const fe u, const fe v)
{
    fe v3, v7, t, check, nu, nui, sm1, rp;
    fe_const(sm1, C_SQRT_M1);
    fe_sqr(v3, v); fe_mul(v3, v3, v);
    fe_sqr(v7, v3); fe_mul(v7, v7, v);
    fe_mul(t, u, v7);
    fe52_pow_2_252m3_mod25519(t, t);
    fe_mul(r, u, v3); fe_mul(r, r, t);
    fe_sqr(check, r); fe_mul(check, check, v);
    fe_neg(nu, u);
    fe_mul(nui, nu, sm1);
    mask correct = fe_eq(check, u);
    mask flipped = fe_eq(check, nu);
    mask flipped_i = fe_eq(check, nui);
    fe_mul(rp, r, sm1);
    fe_select(r, r, flipped | flipped_i, rp);
    fe_abs(r, r);
    return correct | flipped;
}

static void load_lanes(fe r, const uint64_t limbs[LANES][5])
{
    __attribute__((aligned(64))) uint64_t t[5][LANES];
    for (int j = 0; j < LANES; j++)
        for (int i = 0; i < 5; i++) t[i][j] = limbs[j][i];
    for (int i = 0; i < 5; i++) r[i] = _mm512_load_si512(t[i]);
    fe_canon(r, r);
}

static void store_lanes(uint64_t limbs[LANES][5], const fe a)
{
    __attribute__((aligned(64))) uint64_t t[5][LANES];
    fe x;
    fe_canon(x, a);
    for (int i = 0; i < 5; i++) _mm512_store_si512(t[i], x[i]);
    for (int j = 0; j < LANES; j++)
        for (int i = 0; i < 5; i++) limbs[j][i] = t[i][j];
}

/* RFC 9496 4.3.1 for eight encodings already checked canonical and non-negative;
 * returns the lanes that decode to a point. */
static mask decode8(ge *p, const uint8_t *in[LANES])
{
    uint64_t limbs[LANES][5];
    fe s, one, dd, ss, u1, u2, u2sq, v, t, invsqrt, den_x, den_y;
    for (int j = 0; j < LANES; j++) bytes_to_limbs(limbs[j], in[j], 0);
    load_lanes(s, limbs);
    fe_const(one, C_ONE); fe_const(dd, C_D);
    fe_sqr(ss, s);
    fe_sub(u1, one, ss);
    fe_add(u2, one, ss);
    fe_sqr(u2sq, u2);
    fe_sqr(t, u1); fe_mul(t, t, dd); fe_neg(t, t);
    fe_sub(v, t, u2sq);
    fe_mul(t, v, u2sq);
    mask was_square = sqrt_ratio_m1(invsqrt, one, t);
    fe_mul(den_x, invsqrt, u2);
    fe_mul(den_y, invsqrt, den_x); fe_mul(den_y, den_y, v);
    fe_add(t, s, s); fe_mul(t, t, den_x); fe_abs(p->X, t);
    fe_mul(p->Y, u1, den_y);
    fe_mul(p->T, p->X, p->Y);
    fe_copy(p->Z, one);
    return was_square & ~fe_isneg(p->T) & ~fe_iszero(p->Y);
}

/* RFC 9496 4.3.2 */
static void encode8(uint8_t out[LANES][32], const ge *p)
{
    fe u1, u2, t, invsqrt, den1, den2, z_inv, ix0, iy0, ench, x, y, den_inv, ny, s, one, sm1, iamd;
    uint64_t limbs[LANES][5];
    fe_const(one, C_ONE); fe_const(sm1, C_SQRT_M1); fe_const(iamd, C_INVSQRT_A_MINUS_D);
    fe_add(u1, p->Z, p->Y); fe_sub(t, p->Z, p->Y); fe_mul(u1, u1, t);
    fe_mul(u2, p->X, p->Y);
    fe_sqr(t, u2); fe_mul(t, t, u1);
    (void)sqrt_ratio_m1(invsqrt, one, t);
    fe_mul(den1, invsqrt, u1);
    fe_mul(den2, invsqrt, u2);
    fe_mul(z_inv, den1, den2); fe_mul(z_inv, z_inv, p->T);
    fe_mul(ix0, p->X, sm1);
    fe_mul(iy0, p->Y, sm1);
    fe_mul(ench, den1, iamd);
    fe_mul(t, p->T, z_inv);
    mask rotate = fe_isneg(t);
    fe_select(x, p->X, rotate, iy0);
    fe_select(y, p->Y, rotate, ix0);
    fe_select(den_inv, den2, rotate, ench);
    fe_mul(t, x, z_inv);
    fe_neg(ny, y);
    fe_select(y, y, fe_isneg(t), ny);
    fe_sub(s, p->Z, y);
    fe_mul(s, den_inv, s);
    fe_abs(s, s);
    store_lanes(limbs, s);
    for (int j = 0; j < LANES; j++) limbs_to_bytes(out[j], limbs[j]);
}

/* RFC 9496 4.3.4 MAP, on field elements loaded with the top bit masked. */
static void elligator8(ge *p, const fe t)
{
    fe r, u, v, s, sp, c, n, w0, w1, w2, w3, x, one, m1, dd, omds, dmos, sadm1, sm1;
    fe_const(one, C_ONE); fe_const(m1, C_MINUS_ONE); fe_const(dd, C_D); fe_const(omds, C_ONE_MINUS_D_SQ);
    fe_const(dmos, C_D_MINUS_ONE_SQ); fe_const(sadm1, C_SQRT_AD_MINUS_ONE); fe_const(sm1, C_SQRT_M1);
    fe_sqr(r, t); fe_mul(r, r, sm1);
    fe_add(u, r, one); fe_mul(u, u, omds);
    fe_mul(x, r, dd); fe_sub(x, m1, x);
    fe_add(v, r, dd); fe_mul(v, x, v);
    mask was_square = sqrt_ratio_m1(s, u, v);
    fe_mul(sp, s, t); fe_abs(sp, sp); fe_neg(sp, sp);
    fe_select(s, sp, was_square, s);
    fe_select(c, r, was_square, m1);
    fe_sub(x, r, one); fe_mul(n, c, x); fe_mul(n, n, dmos); fe_sub(n, n, v);
    fe_add(w0, s, s); fe_mul(w0, w0, v);
    fe_mul(w1, n, sadm1);
    fe_sqr(x, s);
    fe_sub(w2, one, x);
    fe_add(w3, one, x);
    fe_mul(p->X, w0, w3);
    fe_mul(p->Y, w2, w1);
    fe_mul(p->Z, w1, w3);
    fe_mul(p->T, w0, w2);
}

/* Extended twisted Edwards addition, a = -1 (add-2008-hwcd-3). */
static void ge_add8(ge *r, const ge *p, const ge *q)
{
    fe a, b, c, d, e, f, g, h, t, d2;
    fe_const(d2, C_D2);
    fe_sub(a, p->Y, p->X); fe_sub(t, q->Y, q->X); fe_mul(a, a, t);
    fe_add(b, p->Y, p->X); fe_add(t, q->Y, q->X); fe_mul(b, b, t);
    fe_mul(c, p->T, d2); fe_mul(c, c, q->T);
    fe_mul(d, p->Z, q->Z); fe_add(d, d, d);
    fe_sub(e, b, a); fe_sub(f, d, c); fe_add(g, d, c); fe_add(h, b, a);
    fe_mul(r->X, e, f); fe_mul(r->Y, g, h); fe_mul(r->T, e, h); fe_mul(r->Z, f, g);
}

/* RFC 9496 4.3.4 from-hash of eight 64-byte strings. */
static void from_hash8(ge *p, const uint8_t *h[LANES])
{
    uint64_t limbs[LANES][5];
    fe t;
    ge p1, p2;
    for (int j = 0; j < LANES; j++) bytes_to_limbs(limbs[j], h[j], 1);
    load_lanes(t, limbs);
    elligator8(&p1, t);
    for (int j = 0; j < LANES; j++) bytes_to_limbs(limbs[j], h[j] + 32, 1);
    load_lanes(t, limbs);
    elligator8(&p2, t);
    ge_add8(p, &p1, &p2);
}

static void canon_point(ge *p)
{
    fe_canon(p->X, p->X); fe_canon(p->Y, p->Y); fe_canon(p->T, p->T); fe_canon(p->Z, p->Z);
}

/* The scalar the point multiplication uses: k' with 2k' = k (mod l), k the key with its top
 * bit cleared as libsodium does.  k' = (k + (k mod 2) * l) / 2, computed without a branch on
 * k: l is added under a mask, then the 256-bit sum (< 2^255 + 2^253) is shifted right by one,
 * so k' < 2^255 like the keys the multiplication took before.  Since the ristretto255 group
 * has order l, encode(2 * k' * P) = encode(k * P) for every point P (whatever its torsion
 * component: representatives of one element differ by E[4], which the encoding ignores). */
static void halve_scalar(uint64_t out[4], const uint8_t key[32])
{
    static const uint64_t L[4] = {0x5812631a5cf5d3edULL, 0x14def9dea2f79cd6ULL, 0, 0x1000000000000000ULL};
    uint64_t k[4];
    for (int i = 0; i < 4; i++) {
        uint64_t w = 0;
        for (int j = 7; j >= 0; j--) w = (w << 8) | key[8 * i + j];
        k[i] = w;
    }
    k[3] &= 0x7fffffffffffffffULL;
    uint64_t odd = 0 - (k[0] & 1);
    unsigned __int128 acc = 0;
    for (int i = 0; i < 4; i++) {
        acc += (unsigned __int128)k[i] + (L[i] & odd);
        k[i] = (uint64_t)acc;
        acc >>= 64;
    }
    for (int i = 0; i < 4; i++) out[i] = (k[i] >> 1) | (i < 3 ? k[i + 1] << 63 : 0);
    volatile uint64_t *vk = k;
    for (int i = 0; i < 4; i++) vk[i] = 0;
}

/* r = k*p for one scalar k given as four little-endian 64-bit words (k < 2^255). */
static void scalar_mul8(ge *r, ge *p, const uint64_t k[4])
{
    U64 sc[5];
    for (int i = 0; i < 4; i++) sc[i] = _mm512_set1_epi64((long long)k[i]);
    sc[4] = _mm512_setzero_si512();
    canon_point(p);
    ifma_ed25519_mul_point(r, p, sc);
    /* wipe the broadcast scalar */
    volatile uint64_t *vs = (volatile uint64_t *)sc;
    for (size_t i = 0; i < sizeof(sc) / 8; i++) vs[i] = 0;
}

/* 1/a = a^(p-2) = (a^((p-5)/8))^8 * a^3, from the exponentiation sqrt_ratio_m1 uses; 0 for 0. */
static void fe_invert(fe r, const fe a)
{
    fe t, a3;
    fe52_pow_2_252m3_mod25519(t, a);
    fe_sqr(t, t); fe_sqr(t, t); fe_sqr(t, t);
    fe_sqr(a3, a); fe_mul(a3, a3, a);
    fe_mul(r, t, a3);
}

/* Batch encoding of doubled points (the method of curve25519-dalek's
 * RistrettoPoint::double_and_compress_batch).  For Q = (X:Y:Z:T), 2Q = (eh : fg : fh : eg)
 * with e = 2XY, f = Z^2 + dT^2, g = Y^2 + X^2, h = Z^2 - dT^2, and the RFC 9496 encoding of
 * 2Q needs no square root: the inverse square root it takes is, for a doubled point, a
 * known product of e, f, g, h over one inversion of efgh.  The inversions of a whole chunk
 * of vectors share one field inversion (Montgomery's trick), so an encoding costs about
 * twenty field multiplications instead of an exponentiation.
 *
 * Zero lanes: f and h are never 0 on the curve (completeness of the Edwards addition law:
 * d*x^2*y^2 != +-1), and e*g = 0 exactly when 2Q has x = 0 or y = 0, i.e. 2Q lies in E[4],
 * the identity element of ristretto255, whose encoding is 32 zero bytes.  Such a lane
 * (never a valid input's, but a refused input decodes a dummy identity) takes 1 instead of
 * efgh in the shared product, so the other lanes stay exact, and its s is set to 0 under
 * the mask.  No branch and no memory access depends on the points. */
typedef struct { fe e, f, g, h, acc; } dstate;

static void double_state(dstate *st, mask *zero, const ge *q, const fe prev, int first)
{
    fe xx, yy, zz, dtt, t, eg, fh, one, dd;
    fe_const(one, C_ONE); fe_const(dd, C_D);
    fe_sqr(xx, q->X); fe_sqr(yy, q->Y); fe_sqr(zz, q->Z);
    fe_sqr(dtt, q->T); fe_mul(dtt, dtt, dd);
    fe_add(t, q->Y, q->Y); fe_mul(st->e, q->X, t);
    fe_add(st->f, zz, dtt);
    fe_add(st->g, yy, xx);
    fe_sub(st->h, zz, dtt);
    fe_mul(eg, st->e, st->g); fe_mul(fh, st->f, st->h);
    fe_mul(t, eg, fh);
    *zero = fe_iszero(t);
    fe_select(t, t, *zero, one);
    if (first) fe_copy(st->acc, t);
    else fe_mul(st->acc, prev, t);
}

static void double_encode_batch(uint8_t (*out)[LANES][32], dstate *st, const mask *zero, int nv)
{
    fe inv, inv_i, eg, fh, x, zinv, tinv, t, e, g, h, minus_e, fsa, magic, iamd, sm1, one, s, ns;
    uint64_t limbs[LANES][5];
    fe_const(one, C_ONE); fe_const(iamd, C_INVSQRT_A_MINUS_D); fe_const(sm1, C_SQRT_M1);
    fe_invert(inv, st[nv - 1].acc);
    for (int v = nv - 1; v >= 0; v--) {
        fe_mul(eg, st[v].e, st[v].g); fe_mul(fh, st[v].f, st[v].h);
        fe_mul(x, eg, fh);
        fe_select(x, x, zero[v], one);
        if (v > 0) fe_mul(inv_i, inv, st[v - 1].acc);  /* v is a loop index, not data */
        else fe_copy(inv_i, inv);
        fe_mul(inv, inv, x);
        fe_mul(zinv, eg, inv_i);  /* 1/(fh) = 1/Z of 2Q */
        fe_mul(tinv, fh, inv_i);  /* 1/(eg) = 1/T of 2Q */
        fe_mul(t, eg, zinv);
        mask rotate = fe_isneg(t);
        fe_neg(minus_e, st[v].e);
        fe_mul(fsa, st[v].f, sm1);
        fe_select(e, st[v].e, rotate, st[v].g);
        fe_select(g, st[v].g, rotate, minus_e);
        fe_select(h, st[v].h, rotate, fsa);
        fe_select(magic, iamd, rotate, sm1);
        fe_mul(t, h, e); fe_mul(t, t, zinv);
        fe_neg(ns, g);
        fe_select(g, g, fe_isneg(t), ns);
        fe_mul(t, g, tinv); fe_mul(t, magic, t);
        fe_sub(s, h, g); fe_mul(s, s, t);
        fe_abs(s, s);
        for (int i = 0; i < 5; i++) s[i] = _mm512_maskz_mov_epi64((mask)~zero[v], s[i]);
        store_lanes(limbs, s);
        for (int j = 0; j < LANES; j++) limbs_to_bytes(out[v][j], limbs[j]);
    }
    volatile uint64_t *vl = &limbs[0][0];
    for (size_t i = 0; i < sizeof limbs / 8; i++) vl[i] = 0;
}

#pragma GCC pop_options

/* ------------------------------------------------------------------------- */
/* Batch drivers over flat buffers (no Python objects; run without the GIL).   */

/* OP_EACH: a refused input or identity result gives 32 zero bytes and the batch goes on. */
enum { OP_H2G = 1, OP_MUL = 2, OP_HASH_OUT = 4, OP_DECODE = 8, OP_EACH = 16 };

typedef struct {
    Py_ssize_t n;
    const uint8_t *in;      /* n * 64 hashes (OP_H2G) or n * 32 encodings (OP_DECODE) */
    uint8_t *points;        /* n * 32 results */
    uint8_t *digests;       /* n * 64 output hashes, with OP_HASH_OUT */
    const uint8_t *key;     /* with OP_MUL */
    const uint8_t *out_domain;
    Py_ssize_t out_domain_len;
    Py_ssize_t bad;         /* first input that is not a valid point, -1, or -2: out of memory */
} batch;

/* Vectors of eight per shared inversion in double_encode_batch: its state (about 100 KB)
 * stays in the L2 cache, and the one inversion costs under 1% of the chunk. */
#define CHUNK 64

static void run_batch(batch *b, int ops) __attribute__((target("avx512f,avx512ifma,avx512vl,avx512bw,avx512dq")));
static void run_batch(batch *b, int ops)
{
    static const uint8_t zero[32];
    uint8_t (*enc)[LANES][32] = aligned_alloc(64, sizeof(uint8_t[CHUNK][LANES][32]));
    dstate *st = (ops & OP_MUL) ? aligned_alloc(64, sizeof(dstate) * CHUNK) : NULL;
    mask okm[CHUNK], zerom[CHUNK];
    uint8_t buf[128 + 32];
    uint64_t khalf[4] = {0, 0, 0, 0};
    EVP_MD_CTX *md = (ops & OP_HASH_OUT) ? sha512_ctx() : NULL;
    b->bad = -1;
    if (!enc || ((ops & OP_MUL) && !st)) {
        free(enc); free(st); EVP_MD_CTX_free(md);
        b->bad = -2;
        return;
    }
    if (ops & OP_MUL) halve_scalar(khalf, b->key);
    for (Py_ssize_t cbase = 0; cbase < b->n && b->bad < 0; cbase += CHUNK * LANES) {
        Py_ssize_t left = b->n - cbase;
        int nv = (int)(left >= CHUNK * LANES ? CHUNK : (left + LANES - 1) / LANES);
        for (int v = 0; v < nv; v++) {
            Py_ssize_t base = cbase + (Py_ssize_t)v * LANES;
            int m = (int)((b->n - base) < LANES ? (b->n - base) : LANES);
            const uint8_t *lane_in[LANES];
            ge p, q;
            mask ok = 0xff;
            for (int j = 0; j < LANES; j++) {
                Py_ssize_t k = base + (j < m ? j : 0);
                lane_in[j] = b->in + k * ((ops & OP_H2G) ? 64 : 32);
            }
            if (ops & OP_H2G) {
                from_hash8(&p, lane_in);
            } else {
                const uint8_t *checked[LANES];
                mask canon = 0;
                for (int j = 0; j < LANES; j++) {
                    int c = canonical_nonnegative(lane_in[j]) && memcmp(lane_in[j], zero, 32) != 0;
                    canon |= (mask)(c << j);
                    checked[j] = c ? lane_in[j] : zero;  /* public data: a bad lane decodes a dummy */
                }
                ok = decode8(&p, checked) & canon;
            }
            okm[v] = ok;
            if (ops & OP_MUL) {
                scalar_mul8(&q, &p, khalf);  /* q = (k/2) p; 2q is encoded below */
                double_state(&st[v], &zerom[v], &q, v ? st[v - 1].acc : NULL, v == 0);
            } else {
                encode8(enc[v], &p);
            }
        }
        if (ops & OP_MUL) double_encode_batch(enc, st, zerom, nv);
        for (int v = 0; v < nv; v++) {
            Py_ssize_t base = cbase + (Py_ssize_t)v * LANES;
            int m = (int)((b->n - base) < LANES ? (b->n - base) : LANES);
            for (int j = 0; j < m; j++) {
                if (!((okm[v] >> j) & 1) || is_zero32(enc[v][j])) {  /* identity result: libsodium fails too */
                    if (ops & OP_EACH) {
                        memset(b->points + 32 * (base + j), 0, 32);
                        continue;
                    }
                    b->bad = base + j;
                    goto done;
                }
                memcpy(b->points + 32 * (base + j), enc[v][j], 32);
                if (ops & OP_HASH_OUT)
                    sha512_cat(md, b->out_domain, (size_t)b->out_domain_len, enc[v][j], 32,
                               b->digests + 64 * (base + j), buf);
            }
        }
    }
done:
    {
        volatile uint8_t *w = (volatile uint8_t *)enc;
        for (size_t i = 0; i < sizeof(uint8_t[CHUNK][LANES][32]); i++) w[i] = 0;
        if (st) {
            w = (volatile uint8_t *)st;
            for (size_t i = 0; i < sizeof(dstate) * CHUNK; i++) w[i] = 0;
        }
        volatile uint64_t *vk = khalf;
        for (int i = 0; i < 4; i++) vk[i] = 0;
    }
    free(enc);
    free(st);
    EVP_MD_CTX_free(md);
    wipe(buf, sizeof buf);
}

/* ------------------------------------------------------------------------- */
/* Python glue.                                                                 */

static int cpu_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq");
}

static PyObject *py_cpu_supported(PyObject *self, PyObject *noargs)
{
    return PyBool_FromLong(cpu_ok());
}

static int get_key(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) return -1;
    if (view->len != 32) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "a scalar is 32 bytes");
        return -1;
    }
    return 0;
}

static void wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--) *v++ = 0;
}

/* The tokens, copied (under the GIL) into one buffer, token i at off[i] .. off[i + 1]: hashed
 * later by hash_gathered without the GIL, so a kernel thread holds the GIL only for copies
 * (SHA-512 of a 4,096-token batch under the GIL stalled the thread parsing the records). */
typedef struct {
    uint8_t *data;       /* the tokens concatenated (identity data: wiped before it is freed) */
    Py_ssize_t *off;     /* n + 1 offsets */
    Py_ssize_t n, longest;
} gathered;

static void gathered_free(gathered *g)
{
    if (g->data) { wipe(g->data, (size_t)g->off[g->n]); PyMem_RawFree(g->data); }
    PyMem_RawFree(g->off);
    g->data = NULL; g->off = NULL;
}

static int gather_tokens(PyObject *tokens, gathered *g)
{
    PyObject *tup = PySequence_Tuple(tokens);
    if (!tup) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(tup), cap = 64 * (n ? n : 1), used = 0;
    g->n = n; g->longest = 0;
    g->off = PyMem_RawMalloc((size_t)(n + 1) * sizeof(Py_ssize_t));
    g->data = PyMem_RawMalloc((size_t)cap);
    if (!g->off || !g->data) {
        PyMem_RawFree(g->off); PyMem_RawFree(g->data); g->off = NULL; g->data = NULL;
        Py_DECREF(tup); PyErr_NoMemory(); return -1;
    }
    g->off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_buffer view;  /* bytes, or any bytes-like object, as hashlib takes */
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(tup, i), &view, PyBUF_SIMPLE) < 0) {
            g->off[g->n = i] = used; gathered_free(g); Py_DECREF(tup); return -1;
        }
        if (used + view.len > cap) {
            Py_ssize_t want = 2 * (used + view.len);
            uint8_t *bigger = PyMem_RawMalloc((size_t)want);
            if (!bigger) {
                PyBuffer_Release(&view); g->off[g->n = i] = used; gathered_free(g); Py_DECREF(tup);
                PyErr_NoMemory(); return -1;
            }
            memcpy(bigger, g->data, (size_t)used);
            wipe(g->data, (size_t)used);
            PyMem_RawFree(g->data);
            g->data = bigger; cap = want;
        }
        memcpy(g->data + used, view.buf, (size_t)view.len);
        used += view.len;
        if (view.len > g->longest) g->longest = view.len;
        g->off[i + 1] = used;
        PyBuffer_Release(&view);
    }
    Py_DECREF(tup);
    return 0;
}

/* SHA-512(domain || token i) into out + 64 i for each gathered token; no Python calls (runs
 * without the GIL). buf holds dom_len + g->longest bytes. */
static void hash_gathered(const gathered *g, const uint8_t *dom, Py_ssize_t dom_len, uint8_t *buf, uint8_t *out)
{
    EVP_MD_CTX *ctx = sha512_ctx();
    for (Py_ssize_t i = 0; i < g->n; i++) {
        Py_ssize_t len = g->off[i + 1] - g->off[i];
        sha512_cat(ctx, dom, (size_t)dom_len, g->data + g->off[i], (size_t)len, out + 64 * i, buf);
    }
    EVP_MD_CTX_free(ctx);
    wipe(buf, (size_t)(dom_len + g->longest));
}

/* n * 32 bytes of received encodings; -2 on a Python error, else the index of the
 * first element that is not 32 bytes (or -1). */
static uint8_t *gather_points(PyObject *points, Py_ssize_t *n_out, Py_ssize_t *bad)
{
    PyObject *seq = PySequence_Fast(points, "points must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    uint8_t *out = PyMem_RawMalloc((size_t)(n ? n : 1) * 32);
    if (!out) { Py_DECREF(seq); PyErr_NoMemory(); return NULL; }
    *bad = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(items[i]) || PyBytes_GET_SIZE(items[i]) != 32) { *bad = i; break; }
        memcpy(out + 32 * i, PyBytes_AS_STRING(items[i]), 32);
    }
    Py_DECREF(seq);
    *n_out = n;
    return out;
}

static PyObject *bytes_list(const uint8_t *data, Py_ssize_t n, Py_ssize_t width, Py_ssize_t take)
{
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)data + width * i, take);
        if (!b) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, i, b);
    }
    return list;
}

/* Common driver.  mode: "h2g" (tokens -> H), "blind" (tokens -> k*H),
 * "blind_out" (tokens -> (digests, points)), "mul" (points -> k*P), "mul_out"
 * (points -> digests).  Returns an int (index of the first bad point) instead of a
 * list when a received element is refused. */
static PyObject *drive(PyObject *input, PyObject *key_obj, const char *h2g_dom, Py_ssize_t h2g_len,
                       const char *out_dom, Py_ssize_t out_len, int ops, int want_points)
{
    Py_buffer key;
    batch b;
    memset(&b, 0, sizeof b);
    if (out_len > 128) { PyErr_SetString(PyExc_ValueError, "output domain too long"); return NULL; }
    if (key_obj && get_key(key_obj, &key) < 0) return NULL;
    uint8_t *in, *hash_buf = NULL;
    Py_ssize_t n, bad = -1;
    gathered g = {0};
    if (ops & OP_H2G) {
        if (gather_tokens(input, &g) < 0) { if (key_obj) PyBuffer_Release(&key); return NULL; }
        n = g.n;
        in = PyMem_RawMalloc((size_t)(n ? n : 1) * 64);
        hash_buf = PyMem_RawMalloc((size_t)(h2g_len + g.longest + 1));
        if (!in || !hash_buf) {
            PyMem_RawFree(in); PyMem_RawFree(hash_buf); gathered_free(&g);
            if (key_obj) PyBuffer_Release(&key);
            return PyErr_NoMemory();
        }
    } else {
        in = gather_points(input, &n, &bad);
    }
    if (!in) { if (key_obj) PyBuffer_Release(&key); return NULL; }
    if (bad >= 0) {
        PyMem_RawFree(in); if (key_obj) PyBuffer_Release(&key);
        return PyLong_FromSsize_t(bad);
    }
    uint8_t *points = PyMem_RawMalloc((size_t)(n ? n : 1) * 32);
    uint8_t *digests = (ops & OP_HASH_OUT) ? PyMem_RawMalloc((size_t)(n ? n : 1) * 64) : NULL;
    if (!points || ((ops & OP_HASH_OUT) && !digests)) {
        PyMem_RawFree(in); PyMem_RawFree(points); PyMem_RawFree(digests);
        PyMem_RawFree(hash_buf); gathered_free(&g);
        if (key_obj) PyBuffer_Release(&key);
        return PyErr_NoMemory();
    }
    b.n = n; b.in = in; b.points = points; b.digests = digests;
    b.key = key_obj ? key.buf : NULL;
    b.out_domain = (const uint8_t *)out_dom; b.out_domain_len = out_len;
    Py_BEGIN_ALLOW_THREADS
    if (ops & OP_H2G) hash_gathered(&g, (const uint8_t *)h2g_dom, h2g_len, hash_buf, in);
    run_batch(&b, ops);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(hash_buf);
    gathered_free(&g);
    wipe(in, (size_t)n * ((ops & OP_H2G) ? 64 : 32));
    PyMem_RawFree(in);
    if (key_obj) PyBuffer_Release(&key);
    PyObject *result;
    if (b.bad == -2) {
        result = PyErr_NoMemory();
    } else if (b.bad >= 0) {
        result = PyLong_FromSsize_t(b.bad);
    } else if (ops & OP_HASH_OUT) {
        PyObject *d = bytes_list(digests, n, 64, 64);
        PyObject *p = (d && want_points) ? bytes_list(points, n, 32, 32) : NULL;
        if (!d || (want_points && !p)) { Py_XDECREF(d); Py_XDECREF(p); result = NULL; }
        else if (want_points) { result = PyTuple_Pack(2, d, p); Py_DECREF(d); Py_DECREF(p); }
        else result = d;
    } else if (ops & OP_EACH) {
        result = PyList_New(n);
        for (Py_ssize_t i = 0; result && i < n; i++) {
            PyObject *item = is_zero32(points + 32 * i) ? Py_NewRef(Py_None)
                : PyBytes_FromStringAndSize((const char *)points + 32 * i, 32);
            if (!item) Py_CLEAR(result);
            else PyList_SET_ITEM(result, i, item);
        }
    } else {
        result = bytes_list(points, n, 32, 32);
    }
    wipe(points, (size_t)n * 32);
    PyMem_RawFree(points);
    if (digests) { wipe(digests, (size_t)n * 64); PyMem_RawFree(digests); }
    return result;
}

static PyObject *py_hash_to_group(PyObject *self, PyObject *args)
{
    const char *dom; Py_ssize_t dl; PyObject *tokens;
    if (!PyArg_ParseTuple(args, "y#O", &dom, &dl, &tokens)) return NULL;
    return drive(tokens, NULL, dom, dl, NULL, 0, OP_H2G, 0);
}

static PyObject *py_blind(PyObject *self, PyObject *args)
{
    const char *dom; Py_ssize_t dl; PyObject *tokens, *key;
    if (!PyArg_ParseTuple(args, "Oy#O", &key, &dom, &dl, &tokens)) return NULL;
    return drive(tokens, key, dom, dl, NULL, 0, OP_H2G | OP_MUL, 0);
}

static PyObject *py_blind_outputs(PyObject *self, PyObject *args)
{
    const char *dom, *odom; Py_ssize_t dl, ol; PyObject *tokens, *key;
    if (!PyArg_ParseTuple(args, "Oy#y#O", &key, &dom, &dl, &odom, &ol, &tokens)) return NULL;
    return drive(tokens, key, dom, dl, odom, ol, OP_H2G | OP_MUL | OP_HASH_OUT, 1);
}

static PyObject *py_multiply(PyObject *self, PyObject *args)
{
    PyObject *points, *key;
    if (!PyArg_ParseTuple(args, "OO", &key, &points)) return NULL;
    return drive(points, key, NULL, 0, NULL, 0, OP_DECODE | OP_MUL, 0);
}

static PyObject *py_multiply_outputs(PyObject *self, PyObject *args)
{
    const char *odom; Py_ssize_t ol; PyObject *points, *key;
    if (!PyArg_ParseTuple(args, "Oy#O", &key, &odom, &ol, &points)) return NULL;
    return drive(points, key, NULL, 0, odom, ol, OP_DECODE | OP_MUL | OP_HASH_OUT, 0);
}

/* For the known-answer test and the tests: every element's result, None where libsodium
 * refuses (the encoding, or an identity result), so that a refused lane beside valid
 * ones in one shared inversion is seen to leave them exact. */
static PyObject *py_multiply_each(PyObject *self, PyObject *args)
{
    PyObject *points, *key;
    if (!PyArg_ParseTuple(args, "OO", &key, &points)) return NULL;
    return drive(points, key, NULL, 0, NULL, 0, OP_DECODE | OP_MUL | OP_EACH, 0);
}

static PyObject *py_canonical(PyObject *self, PyObject *args)
{
    PyObject *points;
    if (!PyArg_ParseTuple(args, "O", &points)) return NULL;
    return drive(points, NULL, NULL, 0, NULL, 0, OP_DECODE, 0);
}

/* The lookup table of find_tags: for each 16-bit prefix v, the index of the first tag
 * whose first two bytes are >= v (65,537 entries of 4 bytes, the last one n).  Tags are
 * uniform hashes, so a prefix's bucket holds n / 65,536 tags on average and a lookup
 * touches the 256 KB table and one or two neighbouring cache lines of the tags, where a
 * binary search over the whole array missed the cache at nearly every step. */
#define TAG_BUCKETS 65536
static PyObject *py_tag_buckets(PyObject *self, PyObject *args)
{
    Py_buffer tags;
    Py_ssize_t tag_len;
    if (!PyArg_ParseTuple(args, "y*n", &tags, &tag_len)) return NULL;
    if (tag_len < 2 || tag_len > 64 || tags.len % tag_len || tags.len / tag_len > 0xffffffffLL) {
        PyBuffer_Release(&tags);
        PyErr_SetString(PyExc_ValueError, "tag length out of range or not a divisor of the tags' length");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (TAG_BUCKETS + 1) * 4);
    if (!out) { PyBuffer_Release(&tags); return NULL; }
    uint32_t *first = (uint32_t *)PyBytes_AS_STRING(out);
    const uint8_t *t = tags.buf;
    Py_ssize_t n = tags.len / tag_len, i = 0;
    for (uint32_t v = 0; v < TAG_BUCKETS; v++) {  /* tags sorted: one pass */
        while (i < n && (((uint32_t)t[i * tag_len] << 8) | t[i * tag_len + 1]) < v) i++;
        first[v] = (uint32_t)i;
    }
    first[TAG_BUCKETS] = (uint32_t)n;
    PyBuffer_Release(&tags);
    return out;
}

/* find_tags(tags, buckets, tag_len, digests) -> [(j, i), ...]: for each digest j whose
 * first tag_len bytes equal a tag, j and the index i of the first such tag.  ``tags`` is
 * the setup's tags concatenated (n * tag_len bytes, sorted: the requester's setup index
 * checks the order when it receives them), ``buckets`` their tag_buckets() table;
 * ``digests`` a list of bytes of at least tag_len bytes.  The requester's tag lookup as
 * one call: a binary search in Python cost about 1 µs per element.  Public data only
 * (the setup's tags and the tags of the requester's output hashes). */
static PyObject *py_find_tags(PyObject *self, PyObject *args)
{
    Py_buffer tags, buckets;
    PyObject *digests;
    Py_ssize_t tag_len;
    if (!PyArg_ParseTuple(args, "y*y*nO!", &tags, &buckets, &tag_len, &PyList_Type, &digests)) return NULL;
    PyObject *out = NULL;
    const uint32_t *first = buckets.buf;
    Py_ssize_t nt = tag_len > 0 ? tags.len / tag_len : 0, nd = PyList_GET_SIZE(digests);
    if (tag_len < 2 || tag_len > 64 || tags.len % tag_len || buckets.len != (TAG_BUCKETS + 1) * 4
        || first[TAG_BUCKETS] != (uint32_t)nt) {
        PyErr_SetString(PyExc_ValueError, "tags, bucket table and tag length do not fit together");
        goto done;
    }
    for (uint32_t v = 0; v < TAG_BUCKETS; v++) {  /* a table from elsewhere must not send us out of bounds */
        if (first[v] > first[v + 1]) {
            PyErr_SetString(PyExc_ValueError, "bucket table not ascending");
            goto done;
        }
    }
    const uint8_t *base = tags.buf;
    if (!(out = PyList_New(0))) goto done;
    for (Py_ssize_t j = 0; j < nd; j++) {
        PyObject *d = PyList_GET_ITEM(digests, j);
        if (!PyBytes_Check(d) || PyBytes_GET_SIZE(d) < tag_len) {
            Py_CLEAR(out);
            PyErr_SetString(PyExc_ValueError, "every digest must be bytes of at least the tag length");
            goto done;
        }
        const uint8_t *key = (const uint8_t *)PyBytes_AS_STRING(d);
        uint32_t v = ((uint32_t)key[0] << 8) | key[1];
        Py_ssize_t lo = first[v], hi = first[v + 1];  /* first tag >= key within the prefix's bucket */
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            if (memcmp(base + mid * tag_len, key, (size_t)tag_len) < 0) lo = mid + 1;
            else hi = mid;
        }
        if (lo < first[v + 1] && memcmp(base + lo * tag_len, key, (size_t)tag_len) == 0) {
            Py_ssize_t end = lo + 1;  /* entries with the same tag follow (an honest collision) */
            while (end < first[v + 1] && memcmp(base + end * tag_len, key, (size_t)tag_len) == 0) end++;
            PyObject *pair = Py_BuildValue("(nnn)", j, lo, end - lo);
            if (!pair || PyList_Append(out, pair) < 0) { Py_XDECREF(pair); Py_CLEAR(out); goto done; }
            Py_DECREF(pair);
        }
    }
done:
    PyBuffer_Release(&tags);
    PyBuffer_Release(&buckets);
    return out;
}

#define GUARD(fn) \
    static PyObject *guarded_##fn(PyObject *self, PyObject *args) { \
        if (!cpu_ok()) { PyErr_SetString(PyExc_RuntimeError, "this CPU lacks AVX-512 IFMA"); return NULL; } \
        return fn(self, args); }
GUARD(py_hash_to_group)
GUARD(py_blind)
GUARD(py_blind_outputs)
GUARD(py_multiply)
GUARD(py_multiply_outputs)
GUARD(py_canonical)
GUARD(py_multiply_each)

static PyMethodDef methods[] = {
    {"cpu_supported", py_cpu_supported, METH_NOARGS, "True if this CPU (and OS) runs AVX-512 IFMA."},
    {"hash_to_group", guarded_py_hash_to_group, METH_VARARGS, "hash_to_group(domain, tokens) -> [from_hash(SHA-512(domain||t))]"},
    {"blind", guarded_py_blind, METH_VARARGS, "blind(key, domain, tokens) -> [key*H(t)]"},
    {"blind_outputs", guarded_py_blind_outputs, METH_VARARGS,
     "blind_outputs(key, domain, out_domain, tokens) -> ([SHA-512(out_domain||key*H(t))], [key*H(t)])"},
    {"multiply", guarded_py_multiply, METH_VARARGS, "multiply(key, points) -> [key*P] or index of the first invalid P"},
    {"multiply_outputs", guarded_py_multiply_outputs, METH_VARARGS,
     "multiply_outputs(key, out_domain, points) -> [SHA-512(out_domain||key*P)] or index of the first invalid P"},
    {"tag_buckets", py_tag_buckets, METH_VARARGS,
     "tag_buckets(sorted tags concatenated, tag_len) -> index of the first tag of each 16-bit prefix (uint32 x 65537)"},
    {"find_tags", py_find_tags, METH_VARARGS,
     "find_tags(tags concatenated, buckets, tag_len, digests) -> [(j, i, count)] for each digest j whose tag is "
     "that of the count entries from i"},
    {"multiply_each", guarded_py_multiply_each, METH_VARARGS,
     "multiply_each(key, points) -> [key*P, or None where P is refused or key*P is the identity]"},
    {"canonical", guarded_py_canonical, METH_VARARGS, "canonical(points) -> [decode-then-encode of P] or index of the first invalid P"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ristretto255_ifma", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ristretto255_ifma(void)
{
    sha512_md = EVP_MD_fetch(NULL, "SHA512", NULL);
    return PyModule_Create(&module);
}
