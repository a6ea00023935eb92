/* Paillier's modular arithmetic on AVX-512 IFMA, eight lanes at a time (module _paillier_ifma).
 *
 *   powmod(modulus, k0, r2, bases, exps, exp_bits) -> bytes
 *       base_i ^ exp_i mod m for each lane, by a fixed 5-bit window (time independent of the
 *       exponents' values for a given exp_bits);
 *   rerandomise(modulus, k0, tables, widths, values, rand) -> bytes
 *       value_i * prod_t T_t[d_ti] mod m, the digits d_ti read from each value's random bytes;
 *   digits(values, size) -> the size-byte little-endian values as 52-bit digits (table entries,
 *       each padded with zero digits to a multiple of 16).
 *
 * m is odd and has the digit count of one of the library's sizes, 1024, 2048, 3072 or 4096 bits
 * (20, 40, 60 or 79 digits of 52 bits, R = 2^(52*digits)); k0 = -m^-1 mod 2^52, r2 = R^2 mod m.
 * Values are `size` = 128, 256, 384 or 512 bytes, little-endian, below m; results are fully
 * reduced, `size` bytes each.
 *
 * Why this exists. libcrypto_mb's RSA exponentiation (mbx_exp{2048,4096}_mb8) squares with a
 * fast "diagonal" almost-Montgomery squaring (AMS52x{40,79}_diagonal_mb8) but multiplies with
 * ifma_amm52x{40,79}_mb8, which is 3.4x (40 digits) and 5.4x (79 digits) slower than the
 * squaring here (17.6 against 3.3 us a call of eight at 79 digits); at 79 digits the multiplications take half of a 2048-bit exponentiation. Here
 * a Montgomery product is two of the library's squarings:
 *
 *     a*b = ((a+b)^2 - (a-b)^2) / 4,   so   a*b*R^-1 = (AMS(a+b) - AMS(a-b+2m)) / 4  (mod m)
 *
 * with the division by 4 exact after adding k*m, k = -x*m^-1 mod 4 (= -x*m mod 4, m odd).
 * Bounds: a, b < 2m gives a+b, a-b+2m < 4m; AMS(x) < x^2/R + m < 2m for x < 4m (m < R/2^12);
 * the difference plus 2m is below 4m and (x + 3m)/4 < 2m: every product stays below 2m.
 *
 * Constant time: exponents, table digits and values only select by masked moves over every
 * table entry and steer no branch or address; the number of operations depends on exp_bits,
 * the table count and the lane count only. libcrypto_mb does not document the AMS functions;
 * the build pins the library file by its SHA-256 and matcher.protocols.modexp_backend checks
 * every function here against gmpy2 at load. Called only after the CPU check (AVX-512F, IFMA);
 * the AVX-512 code is confined to functions marked for that target. The GIL is released while
 * the arithmetic runs. Nothing here logs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef uint64_t U64;
#define MAXD 80 /* 52-bit digits, at most (79 used) */
#define LANES 8
#define WIN 5
#define MAX_TABLES 256
#define MAX_WIDTH 8
#define MASK52 ((1ULL << 52) - 1)
#define TARGET __attribute__((target("avx512f")))

extern void AMS52x20_diagonal_mb8(U64 *out, const U64 *a, const U64 *m, const U64 *k0);
extern void AMS52x40_diagonal_mb8(U64 *out, const U64 *a, const U64 *m, const U64 *k0);
extern void AMS52x60_diagonal_mb8(U64 *out, const U64 *a, const U64 *m, const U64 *k0);
extern void AMS52x79_diagonal_mb8(U64 *out, const U64 *a, const U64 *m, const U64 *k0);

typedef struct {
    U64 v[MAXD][LANES];
} __attribute__((aligned(64))) mb8;

typedef void (*ams_fn)(U64 *, const U64 *, const U64 *, const U64 *);

typedef struct {
    int d;       /* digits: 20, 40, 60 or 79 */
    size_t size; /* bytes of a value: 128, 256, 384 or 512 */
    ams_fn ams;
    mb8 m, two_m, t1, t2; /* modulus in every lane, 2m, scratch */
    U64 k0[LANES] __attribute__((aligned(64)));
} ctx_t;

static void wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--) *v++ = 0;
}

/* size little-endian bytes -> d digits of 52 bits (digit i holds bits 52i .. 52i+51). */
static void to_digits(U64 *out, int d, const uint8_t *le, size_t size)
{
    for (int i = 0; i < d; i++) {
        size_t bit = (size_t)i * 52, byte = bit / 8;
        U64 w = 0;
        for (size_t k = 0; k < 8 && byte + k < size; k++)
            w |= (U64)le[byte + k] << (8 * k);
        out[i] = (w >> (bit % 8)) & MASK52;
    }
}

/* lane of x (normalised digits, value below 2^(8 size)) -> size little-endian bytes */
static void from_digits(uint8_t *out, size_t size, const mb8 *x, int d, int lane)
{
    U64 words[MAXD * 52 / 64 + 2] = {0};
    for (int i = 0; i < d; i++) {
        size_t bit = (size_t)i * 52;
        U64 v = x->v[i][lane];
        words[bit / 64] |= v << (bit % 64);
        if (bit % 64 > 12) /* the digit runs into the next word */
            words[bit / 64 + 1] |= v >> (64 - bit % 64);
    }
    for (size_t k = 0; k < size; k++)
        out[k] = (uint8_t)(words[k / 8] >> (8 * (k % 8)));
    wipe(words, sizeof words);
}

static void set_lane(mb8 *x, int d, int lane, const U64 *digits)
{
    for (int i = 0; i < d; i++)
        x->v[i][lane] = digits[i];
}

/* carries of signed digit sums: each digit back to [0, 2^52); returns the final carry */
TARGET static __m512i normalise(mb8 *x, int d)
{
    __m512i carry = _mm512_setzero_si512(), mask = _mm512_set1_epi64(MASK52);
    for (int i = 0; i < d; i++) {
        __m512i v = _mm512_add_epi64(_mm512_load_si512(x->v[i]), carry);
        carry = _mm512_srai_epi64(v, 52);
        _mm512_store_si512(x->v[i], _mm512_and_si512(v, mask));
    }
    return carry;
}

/* out = a*b*R^-1 mod m, below 2m, for a, b below 2m (see the top of the file) */
TARGET static void mont_mul(ctx_t *c, mb8 *out, const mb8 *a, const mb8 *b)
{
    int d = c->d;
    for (int i = 0; i < d; i++) {
        __m512i x = _mm512_load_si512(a->v[i]), y = _mm512_load_si512(b->v[i]);
        _mm512_store_si512(c->t1.v[i], _mm512_add_epi64(x, y));
        _mm512_store_si512(c->t2.v[i], _mm512_add_epi64(_mm512_sub_epi64(x, y), _mm512_load_si512(c->two_m.v[i])));
    }
    normalise(&c->t1, d);
    normalise(&c->t2, d);
    c->ams(&c->t1.v[0][0], &c->t1.v[0][0], &c->m.v[0][0], c->k0);
    c->ams(&c->t2.v[0][0], &c->t2.v[0][0], &c->m.v[0][0], c->k0);
    for (int i = 0; i < d; i++)
        _mm512_store_si512(out->v[i], _mm512_add_epi64(_mm512_sub_epi64(_mm512_load_si512(c->t1.v[i]),
                                                                         _mm512_load_si512(c->t2.v[i])),
                                                        _mm512_load_si512(c->two_m.v[i])));
    normalise(out, d);
    /* k = -x*m^-1 = -x*m mod 4 (m odd: m*m = 1 mod 4); x + k*m is divisible by 4. With m = 1 mod 4
     * that is -x mod 4, with m = 3 mod 4 it is x mod 4. k*m is added as (k&1)*m + (k&2)*m. */
    __m512i three = _mm512_set1_epi64(3), x0 = _mm512_load_si512(out->v[0]);
    __mmask8 m3 = _mm512_test_epi64_mask(_mm512_load_si512(c->m.v[0]), _mm512_set1_epi64(2));
    __m512i k = _mm512_and_si512(_mm512_mask_mov_epi64(_mm512_sub_epi64(_mm512_setzero_si512(), x0), m3, x0), three);
    __mmask8 k1 = _mm512_test_epi64_mask(k, _mm512_set1_epi64(1)), k2 = _mm512_test_epi64_mask(k, _mm512_set1_epi64(2));
    for (int i = 0; i < d; i++) {
        __m512i v = _mm512_mask_add_epi64(_mm512_load_si512(out->v[i]), k1, _mm512_load_si512(out->v[i]),
                                          _mm512_load_si512(c->m.v[i]));
        v = _mm512_mask_add_epi64(v, k2, v, _mm512_load_si512(c->two_m.v[i]));
        _mm512_store_si512(out->v[i], v);
    }
    normalise(out, d);
    for (int i = 0; i < d; i++) {
        __m512i lo = _mm512_srli_epi64(_mm512_load_si512(out->v[i]), 2);
        __m512i hi = i + 1 < d ? _mm512_slli_epi64(_mm512_and_si512(_mm512_load_si512(out->v[i + 1]), three), 50)
                               : _mm512_setzero_si512();
        _mm512_store_si512(out->v[i], _mm512_or_si512(lo, hi));
    }
}

/* x = x - m where that is not negative (x below 2m -> below m), by masks */
TARGET static void reduce_once(ctx_t *c, mb8 *x)
{
    int d = c->d;
    mb8 *t = &c->t1;
    for (int i = 0; i < d; i++)
        _mm512_store_si512(t->v[i], _mm512_sub_epi64(_mm512_load_si512(x->v[i]), _mm512_load_si512(c->m.v[i])));
    __m512i borrow = normalise(t, d);
    __mmask8 keep = _mm512_cmpeq_epi64_mask(borrow, _mm512_setzero_si512());
    for (int i = 0; i < d; i++)
        _mm512_store_si512(x->v[i], _mm512_mask_mov_epi64(_mm512_load_si512(x->v[i]), keep, _mm512_load_si512(t->v[i])));
}

/* digits stored per table entry: d rounded up to whole blocks of 16 (zeros above d), so the
 * scans below run on fixed blocks whose 16 accumulators stay in registers */
#define BLOCK 16
static int stride(int d)
{
    return (d + BLOCK - 1) / BLOCK * BLOCK;
}

/* out[.][lane] = entry idx[lane] of `count` entries `entry_words` words apart from `src`, reading
 * every entry (constant time in idx). Shared entries (every lane the same table, stride(d) digits
 * an entry) are broadcast digit by digit; per-lane entries (an mb8 of each lane's own powers)
 * are loaded as vectors. Inlined with `shared` a constant, so each caller gets its own loop. */
TARGET static inline __attribute__((always_inline)) void select_entry(mb8 *out, int d, const U64 *src,
                                                                      size_t entry_words, int count,
                                                                      const U64 idx[LANES], int shared)
{
    __m512i want = _mm512_loadu_si512((const void *)idx);
    for (int d0 = 0; d0 < stride(d); d0 += BLOCK) {
        __m512i x[BLOCK];
#pragma GCC unroll 16
        for (int k = 0; k < BLOCK; k++)
            x[k] = _mm512_setzero_si512();
        for (int e = 0; e < count; e++) {
            __mmask8 hit = _mm512_cmpeq_epu64_mask(want, _mm512_set1_epi64(e));
            const U64 *entry = src + (size_t)e * entry_words;
#pragma GCC unroll 16
            for (int k = 0; k < BLOCK; k++)
                x[k] = _mm512_mask_mov_epi64(x[k], hit, shared ? _mm512_set1_epi64((long long)entry[d0 + k])
                                                               : _mm512_load_si512(entry + (size_t)(d0 + k) * LANES));
        }
#pragma GCC unroll 16
        for (int k = 0; k < BLOCK; k++)
            _mm512_store_si512(out->v[d0 + k], x[k]);
    }
}

/* every lane shares the entries (stride(d) digits each) */
TARGET static void select_shared(mb8 *out, int d, const U64 *entries, int count, const U64 idx[LANES])
{
    select_entry(out, d, entries, (size_t)stride(d), count, idx, 1);
}

/* each lane its own table of powers */
TARGET static void select_lanes(mb8 *out, int d, const mb8 *table, int count, const U64 idx[LANES])
{
    select_entry(out, d, &table[0].v[0][0], sizeof(mb8) / sizeof(U64), count, idx, 0);
}

/* `width` bits of a little-endian byte string from bit `pos` (the string has 2 spare bytes) */
static U64 bits_at(const uint8_t *bytes, size_t pos, int width)
{
    U64 w = (U64)bytes[pos / 8] | (U64)bytes[pos / 8 + 1] << 8 | (U64)bytes[pos / 8 + 2] << 16;
    return (w >> (pos % 8)) & ((1ULL << width) - 1);
}

/* 52-bit digits of a size-byte value: the library's sizes 1024, 2048, 3072 and 4096 bits */
static int digits_for(Py_ssize_t size)
{
    switch (size) {
    case 128: return 20;
    case 256: return 40;
    case 384: return 60;
    case 512: return 79;
    default: return 0;
    }
}

/* the context for modulus m (size bytes), or -1 with an exception set */
static int init_ctx(ctx_t *c, const Py_buffer *modulus, unsigned long long k0)
{
    static const ams_fn ams[] = {AMS52x20_diagonal_mb8, AMS52x40_diagonal_mb8, AMS52x60_diagonal_mb8,
                                 AMS52x79_diagonal_mb8};
    c->d = digits_for(modulus->len);
    if (!c->d) {
        PyErr_SetString(PyExc_ValueError, "the modulus must be 128, 256, 384 or 512 bytes");
        return -1;
    }
    c->ams = ams[modulus->len / 128 - 1];
    c->size = (size_t)modulus->len;
    U64 digits[MAXD];
    to_digits(digits, c->d, modulus->buf, c->size);
    /* odd, and as many digits as the size has (so m < R / 2^12 and the AMS bounds hold) */
    if (!(digits[0] & 1) || digits[c->d - 1] == 0 || k0 >= (1ULL << 52) || ((k0 * digits[0]) & MASK52) != MASK52) {
        PyErr_SetString(PyExc_ValueError,
                        "the modulus must be odd with as many 52-bit digits as its size, and k0 = -m^-1 mod 2^52");
        return -1;
    }
    for (int i = 0; i < c->d; i++)
        for (int l = 0; l < LANES; l++) {
            c->m.v[i][l] = digits[i];
            c->two_m.v[i][l] = 2 * digits[i];
        }
    for (int l = 0; l < LANES; l++)
        c->k0[l] = k0;
    return 0;
}

/* the final borrow of value - m over all digits (the digits cover all 8*size bits): -1 when the
 * size-byte value is below m, else 0; no branch on the digits */
static int64_t borrow_of_minus_m(const ctx_t *c, U64 digits[MAXD], const uint8_t *value)
{
    to_digits(digits, c->d, value, c->size);
    int64_t carry = 0;
    for (int k = 0; k < c->d; k++)
        carry = ((int64_t)digits[k] - (int64_t)c->m.v[k][0] + carry) >> 52;
    return carry;
}

/* whether each of the n size-byte values is below m (the products' bounds need inputs below 2m),
 * -1 with an exception set if one is not. The values may be secret (a coefficient's 1 + a*n mod
 * p^2, a Horner result): each is compared by the borrow of value - m over all its digits, with
 * no branch on the digits; only a refused batch is searched again, to name the first bad value. */
static int values_below_m(const ctx_t *c, const uint8_t *values, Py_ssize_t n, const char *what)
{
    U64 digits[MAXD];
    int64_t not_below = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        not_below |= borrow_of_minus_m(c, digits, values + i * c->size) + 1; /* -1 (below m) or 0 */
    for (Py_ssize_t i = 0; not_below && i < n; i++) /* refused: the inputs are not used, only named */
        if (borrow_of_minus_m(c, digits, values + i * c->size) == 0) {
            wipe(digits, sizeof digits);
            PyErr_Format(PyExc_ValueError, "%s %zd is not below the modulus", what, i);
            return -1;
        }
    wipe(digits, sizeof digits);
    return 0;
}

static void load_values(ctx_t *c, mb8 *x, const uint8_t *values, Py_ssize_t start, int lanes)
{
    U64 digits[MAXD];
    for (int l = 0; l < LANES; l++) {
        memset(digits, 0, sizeof digits);
        if (l < lanes)
            to_digits(digits, c->d, values + (start + l) * c->size, c->size);
        set_lane(x, c->d, l, digits);
    }
    wipe(digits, sizeof digits);
}

/* y (below 2m) reduced below m, and its first `lanes` lanes written out as values start, start + 1, ... */
static void store_lanes(ctx_t *c, uint8_t *out, Py_ssize_t start, int lanes, mb8 *y)
{
    reduce_once(c, y);
    for (int l = 0; l < lanes; l++)
        from_digits(out + (start + l) * c->size, c->size, y, c->d, l);
}

static void free_wiped(void *mem, size_t size)
{
    if (mem) {
        wipe(mem, size);
        PyMem_Free(mem);
    }
}

/* a zeroed, 64-byte aligned context for modulus m followed by `scratch` mb8 values (in *mem, of
 * *mem_size bytes, for free_wiped), or NULL with an exception set */
static ctx_t *new_ctx(const Py_buffer *modulus, unsigned long long k0, int scratch, void **mem, size_t *mem_size)
{
    *mem_size = sizeof(ctx_t) + (size_t)scratch * sizeof(mb8) + 64;
    *mem = PyMem_Calloc(1, *mem_size);
    if (!*mem) {
        PyErr_NoMemory();
        return NULL;
    }
    ctx_t *c = (ctx_t *)(((uintptr_t)*mem + 63) & ~(uintptr_t)63);
    return init_ctx(c, modulus, k0) < 0 ? NULL : c;
}

static PyObject *py_powmod(PyObject *self, PyObject *args)
{
    Py_buffer modulus, r2, bases, exps;
    unsigned long long k0;
    Py_ssize_t exp_bits;
    if (!PyArg_ParseTuple(args, "y*Ky*y*y*n", &modulus, &k0, &r2, &bases, &exps, &exp_bits))
        return NULL;
    PyObject *result = NULL;
    void *mem = NULL;
    size_t mem_size = 0;
    ctx_t *c = new_ctx(&modulus, k0, 4 + (1 << WIN), &mem, &mem_size);
    if (!c)
        goto done;
    if (exp_bits < 1 || exp_bits > 8 * (Py_ssize_t)c->size) {
        PyErr_SetString(PyExc_ValueError, "powmod: exp_bits must be 1 to the modulus' size in bits");
        goto done;
    }
    Py_ssize_t ebytes = (exp_bits + 7) / 8 + 2;
    if (r2.len != (Py_ssize_t)c->size
        || bases.len % (Py_ssize_t)c->size || exps.len != bases.len / (Py_ssize_t)c->size * ebytes) {
        PyErr_SetString(PyExc_ValueError, "powmod: r2, bases or exponents of the wrong size");
        goto done;
    }
    Py_ssize_t n = bases.len / (Py_ssize_t)c->size;
    if (values_below_m(c, r2.buf, 1, "r2") < 0 || values_below_m(c, bases.buf, n, "base") < 0)
        goto done;
    result = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)c->size);
    if (!result)
        goto done;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    mb8 *one = (mb8 *)(c + 1), *rr = one + 1, *y = one + 2, *b = one + 3, *table = one + 4;
    const uint8_t *eb = exps.buf;
    int d = c->d, windows = (int)((exp_bits + WIN - 1) / WIN);
    U64 idx[LANES];

    Py_BEGIN_ALLOW_THREADS
    U64 digits[MAXD] = {0};
    digits[0] = 1;
    for (int l = 0; l < LANES; l++)
        set_lane(one, d, l, digits);
    to_digits(digits, d, r2.buf, c->size);
    for (int l = 0; l < LANES; l++)
        set_lane(rr, d, l, digits);
    for (Py_ssize_t start = 0; start < n; start += LANES) {
        int lanes = n - start < LANES ? (int)(n - start) : LANES;
        load_values(c, b, bases.buf, start, lanes);
        /* table[j] = base^j * R mod m */
        mont_mul(c, &table[0], one, rr);
        mont_mul(c, &table[1], b, rr);
        for (int j = 2; j < (1 << WIN); j++)
            mont_mul(c, &table[j], &table[j - 1], &table[1]);
        for (int w = windows - 1; w >= 0; w--) {
            /* the top window holds only the bits below exp_bits: any above are not the exponent's */
            int width = exp_bits - (Py_ssize_t)w * WIN < WIN ? (int)(exp_bits - (Py_ssize_t)w * WIN) : WIN;
            for (int l = 0; l < LANES; l++)
                idx[l] = l < lanes ? bits_at(eb + (start + l) * ebytes, (size_t)w * WIN, width) : 0;
            if (w == windows - 1) {
                select_lanes(y, d, table, 1 << WIN, idx);
                continue;
            }
            for (int s = 0; s < WIN; s++)
                c->ams(&y->v[0][0], &y->v[0][0], &c->m.v[0][0], c->k0);
            select_lanes(b, d, table, 1 << WIN, idx);
            mont_mul(c, y, y, b);
        }
        mont_mul(c, y, y, one); /* out of Montgomery form */
        store_lanes(c, out, start, lanes, y);
    }
    wipe(idx, sizeof idx);
    wipe(digits, sizeof digits);
    Py_END_ALLOW_THREADS
done:
    free_wiped(mem, mem_size);
    PyBuffer_Release(&modulus);
    PyBuffer_Release(&r2);
    PyBuffer_Release(&bases);
    PyBuffer_Release(&exps);
    return result;
}

static PyObject *py_rerandomise(PyObject *self, PyObject *args)
{
    Py_buffer modulus, tables, widths, values, rand;
    unsigned long long k0;
    if (!PyArg_ParseTuple(args, "y*Ky*y*y*y*", &modulus, &k0, &tables, &widths, &values, &rand))
        return NULL;
    PyObject *result = NULL;
    void *mem = NULL;
    size_t mem_size = 0;
    size_t offsets[MAX_TABLES];
    size_t bits = 0, entries = 0;
    const uint8_t *w = widths.buf;
    ctx_t *c = new_ctx(&modulus, k0, 3, &mem, &mem_size);
    if (!c)
        goto done;
    int ok = widths.len >= 1 && widths.len <= MAX_TABLES && values.len % (Py_ssize_t)c->size == 0;
    for (Py_ssize_t t = 0; ok && t < widths.len; t++) {
        ok = w[t] >= 1 && w[t] <= MAX_WIDTH;
        if (!ok)
            break;
        offsets[t] = entries;
        entries += (size_t)1 << w[t];
        bits += w[t];
    }
    /* the tables are read as 64-bit words: a buffer from bytes (digits()) is aligned */
    ok = ok && (uintptr_t)tables.buf % 8 == 0;
    Py_ssize_t n = values.len / (Py_ssize_t)c->size;
    size_t rand_bytes = (bits + 7) / 8 + 2;
    if (!ok || tables.len != (Py_ssize_t)(entries * (size_t)stride(c->d) * 8) || rand.len != n * (Py_ssize_t)rand_bytes) {
        PyErr_SetString(PyExc_ValueError,
                        "rerandomise: tables (aligned), widths, values or random bytes of the wrong size");
        goto done;
    }
    if (values_below_m(c, values.buf, n, "value") < 0)
        goto done;
    result = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)c->size);
    if (!result)
        goto done;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    mb8 *y = (mb8 *)(c + 1), *b = y + 1, *v = y + 2;
    const U64 *table = tables.buf;
    const uint8_t *r = rand.buf;
    int d = c->d;
    U64 idx[LANES];

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t start = 0; start < n; start += LANES) {
        int lanes = n - start < LANES ? (int)(n - start) : LANES;
        size_t pos = 0;
        for (Py_ssize_t t = 0; t < widths.len; t++) {
            for (int l = 0; l < LANES; l++)
                idx[l] = l < lanes ? bits_at(r + (start + l) * rand_bytes, pos, w[t]) : 0;
            pos += w[t];
            select_shared(t == 0 ? y : b, d, table + offsets[t] * (size_t)stride(d), 1 << w[t], idx);
            if (t > 0)
                mont_mul(c, y, y, b); /* (x R)(z R) R^-1 = x z R */
        }
        load_values(c, v, values.buf, start, lanes);
        mont_mul(c, y, v, y); /* v (Y R) R^-1 = v Y */
        store_lanes(c, out, start, lanes, y);
    }
    wipe(idx, sizeof idx);
    Py_END_ALLOW_THREADS
done:
    free_wiped(mem, mem_size);
    PyBuffer_Release(&modulus);
    PyBuffer_Release(&tables);
    PyBuffer_Release(&widths);
    PyBuffer_Release(&values);
    PyBuffer_Release(&rand);
    return result;
}

static PyObject *py_digits(PyObject *self, PyObject *args)
{
    Py_buffer in;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "y*n", &in, &size))
        return NULL;
    PyObject *result = NULL;
    int d = digits_for(size);
    if (!d || in.len % size) {
        PyErr_SetString(PyExc_ValueError, "digits: values of 128, 256, 384 or 512 bytes each");
        goto done;
    }
    Py_ssize_t n = in.len / size, st = stride(d);
    result = PyBytes_FromStringAndSize(NULL, n * st * 8);
    if (!result)
        goto done;
    U64 *out = (U64 *)PyBytes_AS_STRING(result);
    memset(out, 0, (size_t)(n * st * 8));
    for (Py_ssize_t i = 0; i < n; i++)
        to_digits(out + i * st, d, (const uint8_t *)in.buf + i * size, (size_t)size);
done:
    PyBuffer_Release(&in);
    return result;
}

static PyMethodDef methods[] = {
    {"powmod", py_powmod, METH_VARARGS,
     "powmod(modulus, k0, r2, bases, exps, exp_bits) -> base^exp mod modulus for each base, concatenated"},
    {"rerandomise", py_rerandomise, METH_VARARGS,
     "rerandomise(modulus, k0, tables, widths, values, rand) -> each value times its fixed-base product"},
    {"digits", py_digits, METH_VARARGS, "digits(values, size) -> each value as 52-bit digits (uint64, native order)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_paillier_ifma", NULL, -1, methods};

PyMODINIT_FUNC PyInit__paillier_ifma(void)
{
    return PyModule_Create(&module);
}
