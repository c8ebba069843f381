/* Optional C speedups for mint's WebSocket codec.
 *
 * mask(data, key) -> bytes: RFC 6455 5.3 masking (XOR with a repeating 4-byte key).
 * frame(b0, payload, pool, at) -> bytes: a whole masked client frame in one allocation.
 * scan(buf, pos, out, max_frame, max_message) -> int: the decoder's common case in one
 * call (whole, unfragmented, unmasked text and binary frames without RSV bits).
 * The pure-Python fallback in mint.websocket._frame is used when this module is
 * absent; both are covered by the same tests (MINT_NO_SPEEDUPS=1 forces the fallback).
 * The loop works on 8-byte words so the compiler can vectorise it; memcpy keeps the
 * unaligned loads and stores well-defined.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* XOR n bytes of src with the repeating key k into dst (dst may equal src). */
static void
xor_mask(const unsigned char *src, unsigned char *dst, Py_ssize_t n, const unsigned char *k)
{
    Py_ssize_t i = 0;
    uint32_t k32;
    memcpy(&k32, k, 4);
    uint64_t k64 = ((uint64_t)k32 << 32) | k32;
    for (; i + 32 <= n; i += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, src + i, 8);
        memcpy(&b, src + i + 8, 8);
        memcpy(&c, src + i + 16, 8);
        memcpy(&d, src + i + 24, 8);
        a ^= k64; b ^= k64; c ^= k64; d ^= k64;
        memcpy(dst + i, &a, 8);
        memcpy(dst + i + 8, &b, 8);
        memcpy(dst + i + 16, &c, 8);
        memcpy(dst + i + 24, &d, 8);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t a;
        memcpy(&a, src + i, 8);
        a ^= k64;
        memcpy(dst + i, &a, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ k[i & 3];
    }
}

/* Below this many bytes, releasing the GIL costs more than the XOR. */
#define NOGIL_MIN 65536

static PyObject *
mask(PyObject *self, PyObject *args)
{
    Py_buffer data, key;
    if (!PyArg_ParseTuple(args, "y*y*:mask", &data, &key)) {
        return NULL;
    }
    if (key.len != 4) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "mask key must be 4 bytes");
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&key);
        return NULL;
    }
    const unsigned char *src = (const unsigned char *)data.buf;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
    unsigned char k[4];
    memcpy(k, key.buf, 4);
    Py_ssize_t n = data.len;
    if (n >= NOGIL_MIN) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(src, dst, n, k);
        Py_END_ALLOW_THREADS
    } else {
        xor_mask(src, dst, n, k);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&key);
    return result;
}

/* frame(b0, payload, pool, at) -> bytes: one masked client frame (RFC 6455 5.2, 5.3),
 * header + key + masked payload in one allocation; the key is pool[at:at + 4]. */
static PyObject *
frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "frame(b0, payload, pool, at) takes 4 arguments");
        return NULL;
    }
    long b0 = PyLong_AsLong(args[0]);
    if (b0 == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *payload = args[1], *pool = args[2];
    if (!PyBytes_Check(payload) || !PyBytes_Check(pool)) {
        PyErr_SetString(PyExc_TypeError, "frame: payload and pool must be bytes");
        return NULL;
    }
    Py_ssize_t at = PyLong_AsSsize_t(args[3]);
    if (at == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (b0 < 0 || b0 > 255 || at < 0 || at > PyBytes_GET_SIZE(pool) - 4) {
        PyErr_SetString(PyExc_ValueError, "frame: bad first byte or key position");
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(payload);
    Py_ssize_t head = n < 126 ? 2 : (n < 65536 ? 4 : 10);
    PyObject *result = PyBytes_FromStringAndSize(NULL, head + 4 + n);
    if (result == NULL) {
        return NULL;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
    dst[0] = (unsigned char)b0;
    if (head == 2) {
        dst[1] = (unsigned char)(0x80 | n);
    } else if (head == 4) {
        dst[1] = 0x80 | 126;
        dst[2] = (unsigned char)(n >> 8);
        dst[3] = (unsigned char)n;
    } else {
        uint64_t len = (uint64_t)n;
        dst[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++) {
            dst[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        }
    }
    unsigned char k[4];
    memcpy(k, PyBytes_AS_STRING(pool) + at, 4);
    memcpy(dst + head, k, 4);
    const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(payload);
    if (n >= NOGIL_MIN) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(src, dst + head + 4, n, k);
        Py_END_ALLOW_THREADS
    } else {
        xor_mask(src, dst + head + 4, n, k);
    }
    return result;
}

/* The frame types scan() builds, and their ``data`` slot descriptors (set once by
 * setup(); the frames are frozen dataclasses, so the slot is set through its
 * descriptor, as mint.websocket._frame does in Python). */
static PyObject *binary_type, *binary_slot, *text_type, *text_slot;

static PyObject *
setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "setup(Binary, Binary.data, Text, Text.data)");
        return NULL;
    }
    for (int i = 0; i < 4; i += 2) {
        if (!PyType_Check(args[i]) || Py_TYPE(args[i + 1])->tp_descr_set == NULL) {
            PyErr_SetString(PyExc_TypeError, "setup: a type and its slot descriptor, twice");
            return NULL;
        }
    }
    PyObject *olds[4] = {binary_type, binary_slot, text_type, text_slot};
    Py_INCREF(args[0]);
    Py_INCREF(args[1]);
    Py_INCREF(args[2]);
    Py_INCREF(args[3]);
    binary_type = args[0];
    binary_slot = args[1];
    text_type = args[2];
    text_slot = args[3];
    for (int i = 0; i < 4; i++) {
        Py_XDECREF(olds[i]);
    }
    Py_RETURN_NONE;
}

/* A new instance of type with its data slot set to value (a new reference). */
static PyObject *
new_frame(PyObject *type, PyObject *slot, PyObject *value)
{
    PyTypeObject *tp = (PyTypeObject *)type;
    PyObject *obj = tp->tp_alloc(tp, 0);
    if (obj == NULL) {
        return NULL;
    }
    if (Py_TYPE(slot)->tp_descr_set(slot, obj, value) < 0) {
        Py_DECREF(obj);
        return NULL;
    }
    return obj;
}

/* scan(buf, pos, out, max_frame, max_message) -> int
 *
 * Decodes, from buf[pos:], the frames that need no state and no judgement: whole
 * FIN text or binary frames, RSV bits clear, unmasked, within the limits (-1: none),
 * text valid UTF-8. It appends Text/Binary to out and returns where it stopped: at
 * the end, at an incomplete frame, or at the first frame that is anything else
 * (control, fragment, RSV, a bad header, bad UTF-8, over a limit), which the Python
 * decoder then handles, errors included, exactly as without this function. The
 * caller only uses it with no message in progress and no extension that sees every
 * message. */
static PyObject *
scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "scan(buf, pos, out, max_frame, max_message)");
        return NULL;
    }
    PyObject *bufobj = args[0], *out = args[2];
    if (!PyBytes_Check(bufobj) || !PyList_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "scan: buf must be bytes and out a list");
        return NULL;
    }
    if (binary_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "scan: setup() was not called");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* the smaller limit, as an unsigned bound; -1 (or one past 2**63: no frame is
     * that long) means none */
    uint64_t limit = UINT64_MAX;
    for (int i = 3; i < 5; i++) {
        int overflow = 0;
        long long value = PyLong_AsLongLongAndOverflow(args[i], &overflow);
        if (value == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (!overflow && value >= 0 && (uint64_t)value < limit) {
            limit = (uint64_t)value;
        }
    }
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(bufobj);
    Py_ssize_t n = PyBytes_GET_SIZE(bufobj);
    if (pos < 0 || pos > n) {
        PyErr_SetString(PyExc_ValueError, "scan: pos out of range");
        return NULL;
    }
    while (n - pos >= 2) {
        unsigned char b0 = buf[pos], b1 = buf[pos + 1];
        if ((b0 != 0x81 && b0 != 0x82) || (b1 & 0x80)) {
            break;
        }
        uint64_t len = b1 & 0x7F;
        Py_ssize_t start;
        if (len < 126) {
            start = pos + 2;
        } else if (len == 126) {
            if (n - pos < 4) {
                break;
            }
            len = ((uint64_t)buf[pos + 2] << 8) | buf[pos + 3];
            if (len < 126) {
                break;
            }
            start = pos + 4;
        } else {
            if (n - pos < 10) {
                break;
            }
            len = 0;
            for (int i = 0; i < 8; i++) {
                len = (len << 8) | buf[pos + 2 + i];
            }
            if (len < 65536 || (len >> 63)) {
                break;
            }
            start = pos + 10;
        }
        if (len > limit || len > (uint64_t)(n - start)) {
            break;
        }
        PyObject *value, *item;
        if (b0 == 0x82) {
            value = PyBytes_FromStringAndSize((const char *)buf + start, (Py_ssize_t)len);
            if (value == NULL) {
                return NULL;
            }
            item = new_frame(binary_type, binary_slot, value);
        } else {
            value = PyUnicode_DecodeUTF8((const char *)buf + start, (Py_ssize_t)len, NULL);
            if (value == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    return NULL;
                }
                PyErr_Clear();
                break; /* the Python decoder reports it */
            }
            item = new_frame(text_type, text_slot, value);
        }
        Py_DECREF(value);
        if (item == NULL) {
            return NULL;
        }
        int failed = PyList_Append(out, item);
        Py_DECREF(item);
        if (failed) {
            return NULL;
        }
        pos = start + (Py_ssize_t)len;
    }
    return PyLong_FromSsize_t(pos);
}

static PyMethodDef methods[] = {
    {"mask", mask, METH_VARARGS, "XOR data with a repeating 4-byte key (RFC 6455 5.3)."},
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL,
     "frame(b0, payload, pool, at): a masked client frame, key pool[at:at + 4]."},
    {"setup", (PyCFunction)(void (*)(void))setup, METH_FASTCALL,
     "setup(Binary, Binary.data, Text, Text.data): the frame types scan() builds."},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(buf, pos, out, max_frame, max_message) -> pos: decode the simple frames."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mint._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
