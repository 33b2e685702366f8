/* What one CPU core can do for the radiator's inner loop, outside Taichi.
 *
 * The reference case of `slingbag bench forward` is ~6.6 G sample evaluations (600,000
 * balls x 196 sensors x a mean window of 56 samples).  On 2 cores, forward <= 3 s needs
 * <= 0.91 ns per sample per core.  This program times, on one core, windows of 16-95
 * samples at random places in a 4,096-sample row (the shape of the real work):
 *
 *   1. the bare accumulation row[n] += coef * D with D stepped per sample (no wave);
 *   2. the gaussian wave D (exp(-D^2 h) - gc) with D computed per sample and expf.
 *
 *   gcc -O2 experiments/radiator_floor.c -o /tmp/floor -lm && /tmp/floor
 *   gcc -O3 -march=native -ffast-math experiments/radiator_floor.c -o /tmp/floor_simd -lm \
 *       && /tmp/floor_simd
 *
 * With -O3 -march=native -ffast-math gcc vectorises loop 2 (libmvec expf); Taichi's CPU
 * backend emits scalar code for the same loop (see BENCHMARKS.md).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void) {
    const int T = 4096, P = 5880000; /* pairs: half the 60,000-ball case on one core */
    float *row = calloc(T + 128, sizeof(float));
    int *lo = malloc(P * sizeof(int)), *len = malloc(P * sizeof(int));
    unsigned s = 1;
    double samples = 0;
    for (int i = 0; i < P; i++) {
        s = s * 1103515245u + 12345u;
        lo[i] = (s >> 8) % 3900;
        s = s * 1103515245u + 12345u;
        len[i] = 16 + (s >> 8) % 80;
        samples += len[i];
    }
    const float st = 0.0375f, h = 1.0f / (2 * 0.09f), gc = 0.011f;

    double t = now();
    for (int i = 0; i < P; i++) {
        float D = 0.003f * (i & 1023), c = 0.5f;
        float *o = row + lo[i];
        for (int n = 0; n < len[i]; n++) {
            o[n] += c * D;
            D -= st;
        }
    }
    double t1 = now() - t;

    t = now();
    for (int i = 0; i < P; i++) {
        const float D0 = 0.003f * (i & 1023), c = 0.5f;
        float *o = row + lo[i];
        const int L = len[i];
        for (int n = 0; n < L; n++) {
            const float D = D0 - n * st;
            o[n] += c * D * (expf(-D * D * h) - gc);
        }
    }
    double t2 = now() - t;

    printf("bare accumulation : %.3f ns per sample\n", t1 / samples * 1e9);
    printf("gaussian wave     : %.3f ns per sample\n", t2 / samples * 1e9);
    printf("(checksum %g)\n", row[100]);
    return 0;
}
