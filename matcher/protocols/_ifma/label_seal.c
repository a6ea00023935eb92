/* Batch sealing of the ecdh setup's labels with OpenSSL's ChaCha20-Poly1305 (module _labels).
 *
 * seal(outputs, tokens, refs, size, nonces, ad_prefix) -> bytes
 *
 * For row i: key = outputs[64i+32 .. 64i+64] (the label key, the last 32 bytes of the
 * output hash of b*H(y_i)), nonce = nonces[12i .. 12i+12], plaintext = 2-byte big-endian
 * length of refs[i] || refs[i] || zeros up to `size`, associated data = ad_prefix ||
 * SHA-256(tokens[i]).  Returns the rows nonce || ciphertext || 16-byte tag, concatenated
 * (n * (12 + size + 16) bytes): byte for byte what matcher.protocols.ecdh seals with
 * `cryptography` for the same nonces (checked at load by matcher.protocols.label_backend).
 *
 * The label keys are secret: they are copied only into a buffer that is wiped, and
 * OpenSSL's ChaCha20-Poly1305 does not branch on key or data.  Nothing here logs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <openssl/evp.h>

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
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "y*OOny*y*", &outputs, &tokens, &refs, &size, &nonces, &prefix)) return NULL;
    PyObject *result = NULL, *tok = NULL, *ref = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    EVP_MD_CTX *md = NULL;
    uint8_t *plain = NULL, *ad = NULL;
    tok = PySequence_Fast(tokens, "tokens must be a sequence");
    ref = tok ? PySequence_Fast(refs, "refs must be a sequence") : NULL;
    if (!ref) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(tok);
    if (PySequence_Fast_GET_SIZE(ref) != n || outputs.len != OUT * n || nonces.len != NONCE * n || size < 2
        || size > (1 << 20) || prefix.len > 256) {
        PyErr_SetString(PyExc_ValueError, "seal: lengths do not agree");
        goto done;
    }
    Py_ssize_t row = NONCE + size + TAG;
    result = PyBytes_FromStringAndSize(NULL, row * n);
    plain = PyMem_RawMalloc((size_t)size);
    ad = PyMem_RawMalloc((size_t)prefix.len + 32);
    ctx = EVP_CIPHER_CTX_new();
    md = EVP_MD_CTX_new();
    if (!result || !plain || !ad || !ctx || !md) {
        Py_CLEAR(result);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    memcpy(ad, prefix.buf, (size_t)prefix.len);
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(result);
    const uint8_t *keys = outputs.buf, *nonce = nonces.buf;
    PyObject **toks = PySequence_Fast_ITEMS(tok), **rs = PySequence_Fast_ITEMS(ref);
    int ok = EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL) == 1;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        if (!PyBytes_Check(toks[i]) || !PyBytes_Check(rs[i])) {
            PyErr_SetString(PyExc_TypeError, "seal: tokens and refs must be bytes");
            Py_CLEAR(result);
            goto done;
        }
        Py_ssize_t rlen = PyBytes_GET_SIZE(rs[i]);
        if (rlen + 2 > size) {
            PyErr_SetString(PyExc_ValueError, "case reference longer than the label size");
            Py_CLEAR(result);
            goto done;
        }
        unsigned int dlen = 0;
        int len = 0;
        ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
             && EVP_DigestUpdate(md, PyBytes_AS_STRING(toks[i]), (size_t)PyBytes_GET_SIZE(toks[i])) == 1
             && EVP_DigestFinal_ex(md, ad + prefix.len, &dlen) == 1 && dlen == 32;
        plain[0] = (uint8_t)(rlen >> 8);
        plain[1] = (uint8_t)rlen;
        memcpy(plain + 2, PyBytes_AS_STRING(rs[i]), (size_t)rlen);
        memset(plain + 2 + rlen, 0, (size_t)(size - 2 - rlen));
        memcpy(dst, nonce + NONCE * i, NONCE);
        ok = ok && EVP_EncryptInit_ex(ctx, NULL, NULL, keys + OUT * i + 32, nonce + NONCE * i) == 1
             && EVP_EncryptUpdate(ctx, NULL, &len, ad, (int)(prefix.len + 32)) == 1
             && EVP_EncryptUpdate(ctx, dst + NONCE, &len, plain, (int)size) == 1 && len == size
             && EVP_EncryptFinal_ex(ctx, dst + NONCE + size, &len) == 1
             && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, dst + NONCE + size) == 1;
        dst += row;
    }
    if (!ok) {
        PyErr_SetString(PyExc_RuntimeError, "seal: OpenSSL ChaCha20-Poly1305 failed");
        Py_CLEAR(result);
    }
done:
    if (plain) { wipe(plain, (size_t)size); PyMem_RawFree(plain); }
    if (ad) PyMem_RawFree(ad);
    EVP_CIPHER_CTX_free(ctx);  /* clears the key schedule */
    EVP_MD_CTX_free(md);
    Py_XDECREF(tok);
    Py_XDECREF(ref);
    PyBuffer_Release(&outputs);
    PyBuffer_Release(&nonces);
    PyBuffer_Release(&prefix);
    return result;
}

static PyMethodDef methods[] = {
    {"seal", py_seal, METH_VARARGS,
     "seal(outputs, tokens, refs, size, nonces, ad_prefix) -> nonce||ChaCha20-Poly1305 rows, concatenated"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_labels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__labels(void) { return PyModule_Create(&module); }
