/* Batch sealing of the ecdh setup's labels with OpenSSL's ChaCha20-Poly1305 (module _labels).
 *
 * seal(outputs, tokens, refs, size, nonces, ad_prefix[, tag_len]) -> bytes
 *
 * For row i: key = outputs[64i+32 .. 64i+64] (the label key, the last 32 bytes of the
 * output hash of b*H(y_i)), nonce = nonces[12i .. 12i+12], plaintext = 2-byte big-endian
 * length of refs[i] || refs[i] || zeros up to `size`, associated data = ad_prefix ||
 * SHA-256(tokens[i]).  Returns the rows nonce || ciphertext || 16-byte tag, concatenated
 * (n * (12 + size + 16) bytes): byte for byte what matcher.protocols.ecdh seals with
 * `cryptography` for the same nonces (checked at load by matcher.protocols.label_backend).
 * With tag_len (0..32), each row is preceded by its tag, outputs[64i .. 64i+tag_len]: the
 * setup's rows tag || label in one buffer.  The sealing runs without the GIL (the tokens
 * and references are held in a tuple of their own meanwhile), so threads can share a batch.
 *
 * The label keys are secret: they are copied only into a buffer that is wiped, and
 * OpenSSL's ChaCha20-Poly1305 does not branch on key or data.  Nothing here logs.
 */
#define _GNU_SOURCE /* qsort_r */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <openssl/evp.h>

/* SHA-256 fetched once, at import: EVP_DigestInit_ex with EVP_sha256() fetches the
 * algorithm again on every call (0.27 us a 40-byte hash here against 0.08 us), once per
 * label. EVP_sha256() if the fetch failed. */
static EVP_MD *sha256_fetched;
#define sha256 (sha256_fetched ? (const EVP_MD *)sha256_fetched : EVP_sha256())

#define NONCE 12
#define TAG 16
#define OUT 64

static void wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--) *v++ = 0;
}

static PyObject *py_seal(PyObject *self, PyObject *args)
{
    Py_buffer outputs, nonces, prefix;
    PyObject *tokens, *refs;
    Py_ssize_t size, tag_len = -1;
    if (!PyArg_ParseTuple(args, "y*OOny*y*|n", &outputs, &tokens, &refs, &size, &nonces, &prefix, &tag_len))
        return NULL;
    PyObject *result = NULL, *tok = NULL, *ref = NULL;
    const uint8_t **tp = NULL, **rp = NULL;
    Py_ssize_t *tl = NULL, *rl = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    EVP_MD_CTX *md = NULL;
    uint8_t *plain = NULL, *ad = NULL;
    tok = PySequence_Tuple(tokens);  /* a tuple of our own: the items stay alive without the GIL */
    ref = tok ? PySequence_Tuple(refs) : NULL;
    if (!ref) goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(tok);
    if (PyTuple_GET_SIZE(ref) != n || outputs.len != OUT * n || nonces.len != NONCE * n || size < 2
        || size > (1 << 20) || prefix.len > 256 || tag_len < -1 || tag_len > 32) {
        PyErr_SetString(PyExc_ValueError, "seal: lengths do not agree");
        goto done;
    }
    Py_ssize_t lead = tag_len < 0 ? 0 : tag_len;
    Py_ssize_t row = lead + NONCE + size + TAG;
    result = PyBytes_FromStringAndSize(NULL, row * n);
    plain = PyMem_RawMalloc((size_t)size);
    ad = PyMem_RawMalloc((size_t)prefix.len + 32);
    tp = PyMem_RawMalloc(sizeof(*tp) * (size_t)(n + 1));
    rp = PyMem_RawMalloc(sizeof(*rp) * (size_t)(n + 1));
    tl = PyMem_RawMalloc(sizeof(*tl) * (size_t)(n + 1));
    rl = PyMem_RawMalloc(sizeof(*rl) * (size_t)(n + 1));
    ctx = EVP_CIPHER_CTX_new();
    md = EVP_MD_CTX_new();
    if (!result || !plain || !ad || !tp || !rp || !tl || !rl || !ctx || !md) {
        Py_CLEAR(result);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyTuple_GET_ITEM(tok, i), *r = PyTuple_GET_ITEM(ref, i);
        if (!PyBytes_Check(t) || !PyBytes_Check(r)) {
            PyErr_SetString(PyExc_TypeError, "seal: tokens and refs must be bytes");
            Py_CLEAR(result);
            goto done;
        }
        rl[i] = PyBytes_GET_SIZE(r);
        if (rl[i] + 2 > size) {
            PyErr_SetString(PyExc_ValueError, "case reference longer than the label size");
            Py_CLEAR(result);
            goto done;
        }
        tp[i] = (const uint8_t *)PyBytes_AS_STRING(t);
        tl[i] = PyBytes_GET_SIZE(t);
        rp[i] = (const uint8_t *)PyBytes_AS_STRING(r);
    }
    memcpy(ad, prefix.buf, (size_t)prefix.len);
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(result);
    const uint8_t *keys = outputs.buf, *nonce = nonces.buf;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL) == 1;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        Py_ssize_t rlen = rl[i];
        unsigned int dlen = 0;
        int len = 0;
        ok = EVP_DigestInit_ex(md, sha256, NULL) == 1
             && EVP_DigestUpdate(md, tp[i], (size_t)tl[i]) == 1
             && EVP_DigestFinal_ex(md, ad + prefix.len, &dlen) == 1 && dlen == 32;
        plain[0] = (uint8_t)(rlen >> 8);
        plain[1] = (uint8_t)rlen;
        memcpy(plain + 2, rp[i], (size_t)rlen);
        memset(plain + 2 + rlen, 0, (size_t)(size - 2 - rlen));
        memcpy(dst, keys + OUT * i, (size_t)lead);
        dst += lead;
        memcpy(dst, nonce + NONCE * i, NONCE);
        ok = ok && EVP_EncryptInit_ex(ctx, NULL, NULL, keys + OUT * i + 32, nonce + NONCE * i) == 1
             && EVP_EncryptUpdate(ctx, NULL, &len, ad, (int)(prefix.len + 32)) == 1
             && EVP_EncryptUpdate(ctx, dst + NONCE, &len, plain, (int)size) == 1 && len == size
             && EVP_EncryptFinal_ex(ctx, dst + NONCE + size, &len) == 1
             && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, dst + NONCE + size) == 1;
        dst += row - lead;
    }
    Py_END_ALLOW_THREADS
    if (!ok) {
        PyErr_SetString(PyExc_RuntimeError, "seal: OpenSSL ChaCha20-Poly1305 failed");
        Py_CLEAR(result);
    }
done:
    if (plain) { wipe(plain, (size_t)size); PyMem_RawFree(plain); }
    if (ad) PyMem_RawFree(ad);
    PyMem_RawFree(tp);
    PyMem_RawFree(rp);
    PyMem_RawFree(tl);
    PyMem_RawFree(rl);
    EVP_CIPHER_CTX_free(ctx);  /* clears the key schedule */
    EVP_MD_CTX_free(md);
    Py_XDECREF(tok);
    Py_XDECREF(ref);
    PyBuffer_Release(&outputs);
    PyBuffer_Release(&nonces);
    PyBuffer_Release(&prefix);
    return result;
}

static int row_cmp(const void *a, const void *b, void *width)
{
    return memcmp(a, b, *(const size_t *)width);
}

/* sort_rows(rows, width) -> bytes: the fixed-width rows of `rows` in byte order (the order of
 * Python's sorted() on the rows as bytes), without a Python object per row and without the GIL. */
static PyObject *py_sort_rows(PyObject *self, PyObject *args)
{
    Py_buffer rows;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*n", &rows, &width)) return NULL;
    PyObject *result = NULL;
    if (width <= 0 || rows.len % width) {
        PyErr_SetString(PyExc_ValueError, "sort_rows: the rows are not of the width given");
        goto done;
    }
    result = PyBytes_FromStringAndSize(rows.buf, rows.len);
    if (!result) goto done;
    size_t w = (size_t)width, n = (size_t)(rows.len / width);
    char *dst = PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    qsort_r(dst, n, w, row_cmp, &w);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&rows);
    return result;
}

typedef struct {
    uint64_t key;  /* 8 bytes of the token after the prefix all tokens share, big-endian, zero-padded */
    const uint8_t *t, *r;
    size_t tl, rl;
} pair_ref;

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Byte order of (token, reference). The keys decide most comparisons without touching the
 * tokens (watchlist tokens share a long prefix such as "matcher/v1/n2/document/DEU/", and
 * each token lives elsewhere in memory): keys that differ order the tokens as the bytes do,
 * since a token that ends inside its key is padded with zeros (a prefix of a longer token
 * sorts first; equal keys fall back to the full comparison). */
static int pair_cmp(const void *x, const void *y)
{
    const pair_ref *a = x, *b = y;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    int c = bytes_cmp(a->t, a->tl, b->t, b->tl);
    return c ? c : bytes_cmp(a->r, a->rl, b->r, b->rl);
}

static void put_len(uint8_t *dst, size_t n)
{
    dst[0] = (uint8_t)(n >> 24);
    dst[1] = (uint8_t)(n >> 16);
    dst[2] = (uint8_t)(n >> 8);
    dst[3] = (uint8_t)n;
}

/* pairs_sorted(pairs) -> bytes: the (token, ref) pairs of bytes sorted as Python sorts the tuples,
 * each written as 4-byte big-endian length || token || 4-byte length || ref (the watchlist digest's
 * input, matcher.storage.setup_cache.entries_digest); sorted without the GIL. */
static PyObject *py_pairs_sorted(PyObject *self, PyObject *arg)
{
    PyObject *items = PySequence_Tuple(arg);  /* our own references: the items stay alive */
    if (!items) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    pair_ref *refs = PyMem_RawMalloc(sizeof(*refs) * (size_t)(n + 1));
    if (!refs) {
        PyErr_NoMemory();
        goto done;
    }
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyTuple_GET_ITEM(items, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(p, 0))
            || !PyBytes_Check(PyTuple_GET_ITEM(p, 1))) {
            PyErr_SetString(PyExc_TypeError, "pairs_sorted: pairs must be (bytes, bytes) tuples");
            goto done;
        }
        PyObject *t = PyTuple_GET_ITEM(p, 0), *r = PyTuple_GET_ITEM(p, 1);
        refs[i].t = (const uint8_t *)PyBytes_AS_STRING(t);
        refs[i].tl = (size_t)PyBytes_GET_SIZE(t);
        refs[i].r = (const uint8_t *)PyBytes_AS_STRING(r);
        refs[i].rl = (size_t)PyBytes_GET_SIZE(r);
        if (refs[i].tl > 0xffffffffu || refs[i].rl > 0xffffffffu) {
            PyErr_SetString(PyExc_ValueError, "pairs_sorted: a token or reference longer than 2^32 - 1 bytes");
            goto done;
        }
        total += 8 + refs[i].tl + refs[i].rl;
    }
    if (total > (size_t)PY_SSIZE_T_MAX) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (!result) goto done;
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    size_t skip = n ? refs[0].tl : 0;  /* the prefix every token shares */
    for (Py_ssize_t i = 1; i < n && skip; i++) {
        size_t k = 0, lim = refs[i].tl < skip ? refs[i].tl : skip;
        while (k < lim && refs[i].t[k] == refs[0].t[k]) k++;
        skip = k;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t key = 0;
        for (size_t j = skip; j < skip + 8; j++) key = (key << 8) | (j < refs[i].tl ? refs[i].t[j] : 0);
        refs[i].key = key;
    }
    qsort(refs, (size_t)n, sizeof(*refs), pair_cmp);
    for (Py_ssize_t i = 0; i < n; i++) {
        put_len(dst, refs[i].tl);
        memcpy(dst + 4, refs[i].t, refs[i].tl);
        dst += 4 + refs[i].tl;
        put_len(dst, refs[i].rl);
        memcpy(dst + 4, refs[i].r, refs[i].rl);
        dst += 4 + refs[i].rl;
    }
    Py_END_ALLOW_THREADS
done:
    PyMem_RawFree(refs);
    Py_DECREF(items);
    return result;
}

/* open_labels(outputs, labels, tokens, ad_prefix) -> list: for each i, the case reference in
 * labels[i] opened with the label key outputs[i][32:64] (each output a 64-byte output hash) and
 * the associated data ad_prefix || SHA-256(tokens[i]), or None when the label does not
 * authenticate or its length prefix exceeds its plaintext: what matcher.protocols.ecdh._open_with
 * returns for each (checked at load by matcher.protocols.label_backend).  A label shorter than
 * nonce || tag is refused with ValueError (the caller opens those in Python).  The opening runs
 * without the GIL; the plaintexts are written to a buffer that is wiped before it is freed. */
static PyObject *py_open_labels(PyObject *self, PyObject *args)
{
    PyObject *outputs, *labels, *tokens;
    Py_buffer prefix;
    if (!PyArg_ParseTuple(args, "OOOy*", &outputs, &labels, &tokens, &prefix)) return NULL;
    PyObject *result = NULL, *out = NULL, *lab = NULL, *tok = NULL;
    const uint8_t **op = NULL, **lp = NULL, **tp = NULL;
    Py_ssize_t *ll = NULL, *tl = NULL, *pos = NULL, *got = NULL;
    uint8_t *plain = NULL, *ad = NULL;
    size_t plain_len = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    EVP_MD_CTX *md = NULL;
    out = PySequence_Tuple(outputs);  /* tuples of our own: the items stay alive without the GIL */
    lab = out ? PySequence_Tuple(labels) : NULL;
    tok = lab ? PySequence_Tuple(tokens) : NULL;
    if (!tok) goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(out);
    if (PyTuple_GET_SIZE(lab) != n || PyTuple_GET_SIZE(tok) != n || prefix.len > 256) {
        PyErr_SetString(PyExc_ValueError, "open_labels: lengths do not agree");
        goto done;
    }
    op = PyMem_RawMalloc(sizeof(*op) * (size_t)(n + 1));
    lp = PyMem_RawMalloc(sizeof(*lp) * (size_t)(n + 1));
    tp = PyMem_RawMalloc(sizeof(*tp) * (size_t)(n + 1));
    ll = PyMem_RawMalloc(sizeof(*ll) * (size_t)(n + 1));
    tl = PyMem_RawMalloc(sizeof(*tl) * (size_t)(n + 1));
    pos = PyMem_RawMalloc(sizeof(*pos) * (size_t)(n + 1));
    got = PyMem_RawMalloc(sizeof(*got) * (size_t)(n + 1));
    ad = PyMem_RawMalloc((size_t)prefix.len + 32);
    ctx = EVP_CIPHER_CTX_new();
    md = EVP_MD_CTX_new();
    if (!op || !lp || !tp || !ll || !tl || !pos || !got || !ad || !ctx || !md) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyTuple_GET_ITEM(out, i), *l = PyTuple_GET_ITEM(lab, i), *t = PyTuple_GET_ITEM(tok, i);
        if (!PyBytes_Check(o) || !PyBytes_Check(l) || !PyBytes_Check(t)) {
            PyErr_SetString(PyExc_TypeError, "open_labels: outputs, labels and tokens must be bytes");
            goto done;
        }
        if (PyBytes_GET_SIZE(o) != OUT || PyBytes_GET_SIZE(l) < NONCE + TAG || PyBytes_GET_SIZE(l) > (1 << 20) + NONCE + TAG) {
            PyErr_SetString(PyExc_ValueError, "open_labels: an output is not 64 bytes or a label is too short or long");
            goto done;
        }
        op[i] = (const uint8_t *)PyBytes_AS_STRING(o);
        lp[i] = (const uint8_t *)PyBytes_AS_STRING(l);
        ll[i] = PyBytes_GET_SIZE(l);
        tp[i] = (const uint8_t *)PyBytes_AS_STRING(t);
        tl[i] = PyBytes_GET_SIZE(t);
        pos[i] = (Py_ssize_t)plain_len;
        plain_len += (size_t)(ll[i] - NONCE - TAG);
    }
    plain = PyMem_RawMalloc(plain_len + 1);
    if (!plain) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(ad, prefix.buf, (size_t)prefix.len);
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = EVP_DecryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL) == 1;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        Py_ssize_t clen = ll[i] - NONCE - TAG;
        uint8_t *dst = plain + pos[i];
        unsigned int dlen = 0;
        int len = 0;
        ok = EVP_DigestInit_ex(md, sha256, NULL) == 1
             && EVP_DigestUpdate(md, tp[i], (size_t)tl[i]) == 1
             && EVP_DigestFinal_ex(md, ad + prefix.len, &dlen) == 1 && dlen == 32;
        got[i] = -1;
        if (!ok) break;
        if (EVP_DecryptInit_ex(ctx, NULL, NULL, op[i] + 32, lp[i]) == 1
            && EVP_DecryptUpdate(ctx, NULL, &len, ad, (int)(prefix.len + 32)) == 1
            && EVP_DecryptUpdate(ctx, dst, &len, lp[i] + NONCE, (int)clen) == 1 && len == clen
            && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG, (void *)(lp[i] + NONCE + clen)) == 1
            && EVP_DecryptFinal_ex(ctx, dst + clen, &len) == 1 && clen >= 2) {
            Py_ssize_t m = ((Py_ssize_t)dst[0] << 8) | dst[1];
            if (m + 2 <= clen) got[i] = m;
        }
    }
    Py_END_ALLOW_THREADS
    if (!ok) {
        PyErr_SetString(PyExc_RuntimeError, "open_labels: OpenSSL failed");
        goto done;
    }
    result = PyList_New(n);
    for (Py_ssize_t i = 0; result && i < n; i++) {
        PyObject *v;
        if (got[i] < 0) {
            v = Py_NewRef(Py_None);
        } else if (!(v = PyBytes_FromStringAndSize((const char *)plain + pos[i] + 2, got[i]))) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, v);
    }
done:
    if (plain) { wipe(plain, plain_len); PyMem_RawFree(plain); }
    PyMem_RawFree(ad);
    PyMem_RawFree(op);
    PyMem_RawFree(lp);
    PyMem_RawFree(tp);
    PyMem_RawFree(ll);
    PyMem_RawFree(tl);
    PyMem_RawFree(pos);
    PyMem_RawFree(got);
    EVP_CIPHER_CTX_free(ctx);  /* clears the key schedule */
    EVP_MD_CTX_free(md);
    Py_XDECREF(out);
    Py_XDECREF(lab);
    Py_XDECREF(tok);
    PyBuffer_Release(&prefix);
    return result;
}

static PyMethodDef methods[] = {
    {"open_labels", py_open_labels, METH_VARARGS,
     "open_labels(outputs, labels, tokens, ad_prefix) -> [case reference or None for each label]"},
    {"pairs_sorted", py_pairs_sorted, METH_O,
     "pairs_sorted(pairs) -> the (token, ref) pairs sorted, each as len||token||len||ref, concatenated"},
    {"sort_rows", py_sort_rows, METH_VARARGS, "sort_rows(rows, width) -> the fixed-width rows sorted, concatenated"},
    {"seal", py_seal, METH_VARARGS,
     "seal(outputs, tokens, refs, size, nonces, ad_prefix[, tag_len]) -> [tag||]nonce||ChaCha20-Poly1305 rows, concatenated"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_labels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__labels(void)
{
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    return PyModule_Create(&module);
}
