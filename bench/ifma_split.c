/*
 * Where the time of the IFMA ristretto255 kernels goes, measured inside C:
 * decode, point multiplication, encode, from-hash, per element (thread CPU time,
 * best of REPS runs over NV vectors of eight).  Not part of the package: it
 * includes the extension's source to time its static functions.
 *
 * Compile and run from the work tree (after make has built the extension):
 *   D=matcher/protocols/_ifma; PYINC=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
 *   PYLIB=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))")
 *   cc -O2 -fno-strict-aliasing -I$PYINC -I$D bench/ifma_split.c -o /tmp/ifma_split -L$D/build \
 *      -l:libcrypto_mb.so.13 -l:libcrypto.so.3 -L$PYLIB -lpython3.11 -Wl,-rpath,$PWD/$D/build:$PYLIB
 *   /tmp/ifma_split
 */
#include "ristretto255_ifma.c"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NV 512
#define REPS 7

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint8_t hashes[NV * LANES][64], encs[NV * LANES][32];
static ge pts[NV], outs[NV];

#define TIME(label, body) do { \
        double best = 1e9; \
        for (int r = 0; r < REPS; r++) { \
            double t0 = now(); \
            for (int v = 0; v < NV; v++) { body; } \
            double t = now() - t0; if (t < best) best = t; \
        } \
        printf("%-34s %7.3f us/element\n", label, best * 1e6 / (NV * LANES)); \
    } while (0)

__attribute__((target("avx512f,avx512ifma,avx512vl,avx512bw,avx512dq")))
static void run(void)
{
    uint8_t key[32];
    uint64_t khalf[4];
    const uint8_t *lane[LANES];
    static dstate st[NV];
    static mask zerom[NV];
    static uint8_t dbl[NV][LANES][32];
    uint8_t enc[LANES][32];
    for (int i = 0; i < NV * LANES; i++) for (int j = 0; j < 64; j++) hashes[i][j] = (uint8_t)rand();
    for (int j = 0; j < 32; j++) key[j] = (uint8_t)rand();
    for (int v = 0; v < NV; v++) {
        for (int j = 0; j < LANES; j++) lane[j] = hashes[v * LANES + j];
        from_hash8(&pts[v], lane);
        encode8((uint8_t (*)[32])encs[v * LANES], &pts[v]);
    }
    TIME("decode8 (1 inverse sqrt)", { for (int j = 0; j < LANES; j++) lane[j] = encs[v * LANES + j]; (void)decode8(&pts[v], lane); });
    halve_scalar(khalf, key);
    TIME("scalar_mul8 (point multiplication)", scalar_mul8(&outs[v], &pts[v], khalf));
    TIME("encode8 (1 inverse sqrt)", encode8(enc, &outs[v]));
    {   /* the kernels' encoding of 2*outs[v]: per chunk of CHUNK vectors, one shared inversion */
        double best = 1e9;
        for (int r = 0; r < REPS; r++) {
            double t0 = now();
            for (int c = 0; c < NV; c += CHUNK) {
                for (int v = 0; v < CHUNK; v++)
                    double_state(&st[c + v], &zerom[c + v], &outs[c + v], v ? st[c + v - 1].acc : NULL, v == 0);
                double_encode_batch(&dbl[c], &st[c], &zerom[c], CHUNK);
            }
            double t = now() - t0; if (t < best) best = t;
        }
        printf("%-34s %7.3f us/element\n", "double_encode_batch (of 2Q)", best * 1e6 / (NV * LANES));
    }
    TIME("from_hash8 (2 Elligator + add)", { for (int j = 0; j < LANES; j++) lane[j] = hashes[v * LANES + j]; from_hash8(&pts[v], lane); });
    {
        batch b;
        uint8_t *out = malloc(NV * LANES * 32);
        b.n = NV * LANES; b.in = &encs[0][0]; b.points = out; b.digests = NULL; b.key = key;
        b.out_domain = NULL; b.out_domain_len = 0;
        double best = 1e9;
        for (int r = 0; r < REPS; r++) { double t0 = now(); run_batch(&b, OP_DECODE | OP_MUL); double t = now() - t0; if (t < best) best = t; }
        printf("%-34s %7.3f us/element (bad=%zd)\n", "run_batch multiply (all of it)", best * 1e6 / (NV * LANES), b.bad);
        best = 1e9;
        b.in = &hashes[0][0];
        for (int r = 0; r < REPS; r++) { double t0 = now(); run_batch(&b, OP_H2G | OP_MUL); double t = now() - t0; if (t < best) best = t; }
        printf("%-34s %7.3f us/element (bad=%zd)\n", "run_batch blind (all of it)", best * 1e6 / (NV * LANES), b.bad);
        best = 1e9;
        for (int r = 0; r < REPS; r++) { double t0 = now(); run_batch(&b, OP_H2G); double t = now() - t0; if (t < best) best = t; }
        printf("%-34s %7.3f us/element (bad=%zd)\n", "run_batch hash to group", best * 1e6 / (NV * LANES), b.bad);
        free(out);
    }
}

int main(void)
{
    if (!cpu_ok()) { fprintf(stderr, "no AVX-512 IFMA here\n"); return 1; }
    run();
    return 0;
}
